"""Stage 04: the frozen embeddings of every model stage 03 trained, UMAP maps, free text.

For each joint model ``train/<name>`` (the main one and each control) stage 04 writes
``embeddings/<name>.npz`` (:class:`~zslkit.evaluate.embeddings.Embeddings`): every track with a mel and
every tag of the split, X then Y; for the classifier, ``embeddings/classifier.npz``
(:class:`~zslkit.evaluate.embeddings.ClassifierScores`). Segments, standardisation and averaging follow
:mod:`zslkit.model.inference`, with the ``segment_frames`` and constants stored in each checkpoint.
Any text with a side-information vector (a word or phrase that is in no dataset) is embedded the
same way as a tag (:class:`TextEncoder`).
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..data.sideinfo import load_table, text_vectors
from ..errors import DataError
from ..layout import RunLayout
from ..model.checkpoints import check_fits, load_checkpoint
from ..model.frozen import supervised_record, track_store
from ..model.inference import classifier_logits, embed_tag_vectors, resolve_device, track_embeddings
from ..plan import RunPlan, base_kind
from ..registry import SIDEINFO
from .embeddings import ClassifierScores, Embeddings
from .projection import umap_coords
from .tagspace import group_labels, nearest_seen


def load_model(run_dir: str | os.PathLike, name: str, split, device="cpu", params: Mapping[str, Any] | None = None):
    """The best checkpoint of ``train/<name>``, checked against the split's seen tags and, when
    ``params`` are given, against the model-shaping parameters (:func:`zslkit.model.checkpoints.check_fits`).

    Returns ``(model, info)`` (see :func:`zslkit.model.checkpoints.load_checkpoint`).
    """
    layout = RunLayout.at(run_dir)
    path = layout.checkpoint(name)
    model, info = load_checkpoint(path, device)
    if params is not None:
        plan = RunPlan.from_params(params)
        check_fits(path, info["arch"], params, plan[name].sideinfo if name in plan else None, layout.params)
    if info["seen"] != list(split.seen):
        raise DataError(f"{path} was trained on other seen tags than split {split.name!r}; rerun notebook 03")
    return model, info


def _tracks(ds, model, info, params, device, progress) -> tuple[list[str], np.ndarray]:
    e = params["embed"]
    store = track_store(ds, info["arch"])  # the mels, or a frozen backbone's cached features
    ids = [t for t in ds.tracks.track_id if t in store]
    emb = track_embeddings(model.audio, store, ids, info["mean"], info["std"], info["arch"]["segment_frames"],
                           e["batch_segments"], e["normalize_segments"], device, progress)
    return ids, emb


def embed_joint(ds, split, params: Mapping[str, Any], run_dir: str | os.PathLike, name: str = "joint",
                progress: bool = False) -> Embeddings:
    """Embed every track and every tag of the split with the joint model ``train/<name>``; save to
    ``embeddings/<name>.npz``. Tags are the split's seen tags then its unseen tags; tracks are in
    the dataset's order."""
    device = resolve_device(params["train"]["device"])
    model, info = load_model(run_dir, name, split, device, params)
    kind = info["arch"]["sideinfo"]
    table = load_table(ds, split.name, kind)
    ids, tracks = _tracks(ds, model, info, params, device, progress)
    tags = list(split.seen) + list(split.unseen)
    row = {t: i for i, t in enumerate(table.tags)}
    side = np.full((len(tags), table.dim), np.nan, dtype=np.float32)
    for i, t in enumerate(tags):
        if t in row:
            side[i] = table.vectors[row[t]]
    emb = Embeddings(ids, tracks, tags, embed_tag_vectors(model, side, device),
                     np.arange(len(tags)) < len(split.seen), side,
                     {"sideinfo": kind, "model": name, "split": split.name, "checkpoint_epoch": info["epoch"],
                      "segment_frames": info["arch"]["segment_frames"],
                      "normalize_segments": params["embed"]["normalize_segments"],
                      "encoder": info["arch"]["encoder"], "control": SIDEINFO[base_kind(kind)].control,
                      # a frozen backbone: what it is and was supervised on (stage 05's leakage, transfer)
                      **({"backbone": record} if (record := supervised_record(info["arch"])) else {}),
                      # the named columns of the side information (a table's attributes), for transfer
                      **({"side_columns": list(table.meta["columns"])} if "columns" in table.meta else {})})
    emb.save(RunLayout.at(run_dir).embeddings(name))
    return emb


def embed_classifier(ds, split, params: Mapping[str, Any], run_dir: str | os.PathLike,
                     progress: bool = False) -> ClassifierScores:
    """The classifier's logits over the seen tags for every track; saved to ``embeddings/classifier.npz``."""
    device = resolve_device(params["train"]["device"])
    model, info = load_model(run_dir, "classifier", split, device, params)
    ids, tracks = _tracks(ds, model, info, params, device, progress)
    out = ClassifierScores(ids, list(info["seen"]), classifier_logits(model, tracks, device),
                           {"model": "classifier", "split": split.name, "checkpoint_epoch": info["epoch"]})
    out.save(RunLayout.at(run_dir).embeddings("classifier"))
    return out


def embed_run(ds, split, params: Mapping[str, Any], run_dir: str | os.PathLike,
              progress: bool = False) -> dict[str, Embeddings | ClassifierScores]:
    """Stage 04: embed every model of the run's plan (:class:`zslkit.plan.RunPlan`) that stage 03 trained.

    Returns ``{name: Embeddings}`` for joint models and ``{"classifier": ClassifierScores}``.
    """
    out: dict[str, Embeddings | ClassifierScores] = {}
    for m in RunPlan.of_run(params):  # less the models whose side information stage 02 could not build
        if m.is_joint:
            out[m.name] = embed_joint(ds, split, params, run_dir, m.name, progress)
        else:
            out[m.name] = embed_classifier(ds, split, params, run_dir, progress)
    return out


# ----------------------------------------------------------------------------- free text

class TextEncoder:
    """Free text -> the joint space, through a model's side information and tag branch.

    >>> encode = TextEncoder(model, "glove", params["sideinfo"])   # doctest: +SKIP
    >>> encode(["baroque harpsichord"]).shape                       # doctest: +SKIP
    (1, 100)
    """

    def __init__(self, model, kind: str, sideinfo_params: Mapping[str, Any], device="cpu"):
        self.model, self.kind, self.params, self.device = model, kind, sideinfo_params, device

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        side = text_vectors(texts, self.kind, self.params)
        unknown = [t for t, v in zip(texts, side) if np.isnan(v).any()]
        if unknown:
            raise DataError(f"no {self.kind} vector for {unknown[0]!r}: none of its words is in the "
                            "vocabulary")
        return embed_tag_vectors(self.model, side, self.device)


def text_encoder(run_dir: str | os.PathLike, split, params: Mapping[str, Any],
                 name: str = "joint") -> TextEncoder | None:
    """A :class:`TextEncoder` for the model ``train/<name>``, or None when its side information
    cannot read free text (attribute or random vectors)."""
    device = resolve_device(params["train"]["device"])
    model, info = load_model(run_dir, name, split, device, params)
    kind = info["arch"]["sideinfo"]
    if not SIDEINFO[base_kind(kind)].free_text:
        return None
    return TextEncoder(model, kind, params["sideinfo"], device)


# ----------------------------------------------------------------------------- maps

#: the fewest tags a UMAP map is drawn for
MIN_MAP_TAGS = 4


def map_skip_reason(emb: Embeddings, embed_params: Mapping[str, Any]) -> str | None:
    """Why notebook 04 draws no map for ``emb``, or None when it draws them.

    Parameters
    ----------
    emb : Embeddings
    embed_params : mapping
        The resolved ``embed`` section (``maps``).
    """
    if not embed_params["maps"]:
        return "embed.maps is false"
    n = int(emb.scorable.sum())
    if n < MIN_MAP_TAGS:
        return f"{n} tag(s) with side information; a UMAP map needs at least {MIN_MAP_TAGS}"
    return None


def umap_maps(emb: Embeddings, ds, umap_params: Mapping[str, Any], seed: int,
              colour_group: str) -> dict[str, pd.DataFrame]:
    """UMAP coordinates of the side-information space, the learned tag space, and the joint space.

    Only tags with side information are mapped. The joint map holds those tags and up to
    ``umap_params['max_tracks']`` tracks drawn with ``seed``, all L2-normalised, in one fit.

    Returns ``{"side", "tags", "joint"}``: tables with ``kind ('tag' or 'track'), id, group,
    split, x, y`` (the joint table also has ``colour``, the track's tag in ``colour_group``).
    """
    u = dict(n_neighbors=umap_params["n_neighbors"], min_dist=umap_params["min_dist"],
             metric=umap_params["metric"], seed=seed)
    ok = emb.scorable
    tags = [t for t, s in zip(emb.tags, ok) if s]
    group_of = dict(zip(ds.tags.tag, ds.tags.group))
    base = pd.DataFrame({"kind": "tag", "id": tags, "group": [group_of.get(t, "") for t in tags],
                         "split": np.where(emb.seen[ok], "X", "Y")})
    out = {"side": base.assign(**dict(zip("xy", umap_coords(emb.side[ok], **u).T))),
           "tags": base.assign(**dict(zip("xy", umap_coords(emb.tag_emb[ok], **u).T)))}
    rng = np.random.default_rng(seed)
    n = min(umap_params["max_tracks"], len(emb.track_ids))
    pick = np.sort(rng.choice(len(emb.track_ids), size=n, replace=False))
    ids = [emb.track_ids[i] for i in pick]
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    xy = umap_coords(np.vstack([unit(emb.tag_emb[ok]), unit(emb.tracks[pick])]), **u)
    colour = group_labels(ds, ids, colour_group, ds.complete_truth())
    tracks = pd.DataFrame({"kind": "track", "id": ids, "group": "", "split": "", "colour": colour})
    out["joint"] = pd.concat([base.assign(colour=""), tracks], ignore_index=True).assign(x=xy[:, 0], y=xy[:, 1])
    return out


def model_tag_maps(embedded: Mapping[str, Embeddings | ClassifierScores], maps: Mapping[str, pd.DataFrame],
                   umap_params: Mapping[str, Any], seed: int, main: str = "joint",
                   k: int = 3) -> dict[str, pd.DataFrame]:
    """The side-information and learned tag maps of every joint model, for the linked interactive maps.

    ``maps`` are :func:`umap_maps`' tables of the main model (reused, not refitted). Returns
    ``{model: table}`` with one row per tag of the main map (``id, group, split``), its coordinates in
    both maps (``side_x, side_y, x, y``; NaN where the model has no vector for the tag) and its ``k``
    nearest seen tags in each space (``near_side``, ``near_learned``: comma-separated, by cosine).
    """
    u = dict(n_neighbors=umap_params["n_neighbors"], min_dist=umap_params["min_dist"],
             metric=umap_params["metric"], seed=seed)
    out = {}
    for name, emb in embedded.items():
        if not isinstance(emb, Embeddings):
            continue
        ok = emb.scorable
        tags = [t for t, s in zip(emb.tags, ok) if s]
        if name == main:
            side_xy, learned_xy = maps["side"][["x", "y"]].to_numpy(), maps["tags"][["x", "y"]].to_numpy()
        else:
            side_xy, learned_xy = umap_coords(emb.side[ok], **u), umap_coords(emb.tag_emb[ok], **u)
        seen = emb.seen[ok]
        near = {space: [", ".join(tags[j] for j in r) for r in nearest_seen(vectors, seen, k)]
                for space, vectors in (("side", emb.side[ok]), ("learned", emb.tag_emb[ok]))}
        table = pd.DataFrame({"id": tags, "side_x": side_xy[:, 0], "side_y": side_xy[:, 1], "x": learned_xy[:, 0],
                              "y": learned_xy[:, 1], "near_side": near["side"], "near_learned": near["learned"]})
        base = maps["side"][["id", "group", "split"]]
        out[name] = base.merge(table, on="id", how="left").fillna({"near_side": "", "near_learned": ""})
    return out


def results_rows(embedded: Mapping[str, Embeddings | ClassifierScores], plan: RunPlan,
                 no_maps: str | None = None, colour_note: str | None = None) -> list[dict]:
    """Stage 04's counts for ``results.csv``, per model of ``plan`` (the ``model`` column is its label); what
    notebook 04 adapted to the data, the reason in ``test_setting``: maps skipped (``no_maps``,
    :func:`map_skip_reason`; task ``maps``, metric ``skipped``) and a colour group the dataset lacks
    (``colour_note``, :func:`zslkit.evaluate.tagspace.fitted_colour_group`; metric ``color_group``)."""
    rows = [{"model": plan.main.label, "task": "maps", "metric": metric, "test_setting": why}
            for metric, why in (("skipped", no_maps), ("color_group", colour_note)) if why]
    for name, emb in embedded.items():
        model = plan[name].label
        if isinstance(emb, ClassifierScores):
            rows.append({"model": model, "task": "embeddings", "metric": "n_tracks", "value": len(emb.track_ids)})
            continue
        ok = emb.scorable
        rows += [{"model": model, "task": "embeddings", "metric": "n_tracks", "value": len(emb.track_ids)},
                 {"model": model, "task": "embeddings", "metric": "n_tags_X", "value": int((ok & emb.seen).sum()),
                  "n_excluded": int((~ok & emb.seen).sum())},
                 {"model": model, "task": "embeddings", "metric": "n_tags_Y", "value": int((ok & ~emb.seen).sum()),
                  "n_excluded": int((~ok & ~emb.seen).sum())}]
    return rows

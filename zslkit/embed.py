"""Track and tag embeddings (paper_spec §4.8).

A track's embedding is the mean of its segment embeddings: non-overlapping 130-frame segments,
``floor(n_frames / 130)`` of them (clips shorter than one segment are tiled), standardised like
the training input. By default the raw segment embeddings are averaged, as the original code;
``normalize_segments=True`` averages L2-normalised ones instead.

A tag's embedding is the tag branch applied to its side-information vector; any text with a
side-information vector (a word or phrase that is in no dataset) is embedded the same way
(:class:`TextEncoder`). Scores are cosine similarities, as in training.
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .audio import MelStore
from .errors import DataError, ParamError
from .io import read_npz, save_npz
from .model import EMBED_DIM
from .train import SEGMENT, standardise


def segments(mel: np.ndarray, length: int = SEGMENT) -> np.ndarray:
    """Non-overlapping segments of a (frames, mels) array: ``(floor(frames / length), length, mels)``."""
    mel = np.asarray(mel, dtype=np.float32)
    if len(mel) < length:
        mel = np.tile(mel, (int(np.ceil(length / len(mel))), 1))
    n = len(mel) // length
    return mel[: n * length].reshape(n, length, mel.shape[1])


@torch.no_grad()
def track_embeddings(encoder: torch.nn.Module, store: MelStore, track_ids: Sequence[str], mean: float,
                     std: float, batch_segments: int = 512, normalize_segments: bool = False,
                     device: str | torch.device = "cpu", progress: bool = False) -> np.ndarray:
    """Embeddings of ``track_ids``: ``(n_tracks, dim)`` float32."""
    from tqdm.auto import tqdm
    encoder.eval()
    out, pending, owners = [], [], []

    def flush():
        x = standardise(torch.from_numpy(np.concatenate(pending)).to(device), mean, std)
        emb = encoder(x)
        if normalize_segments:
            emb = torch.nn.functional.normalize(emb, dim=1)
        out.append((np.concatenate(owners), emb.cpu().numpy()))
        pending.clear()
        owners.clear()

    count = 0
    for i, t in enumerate(tqdm(track_ids, desc="embed", unit="track", disable=not progress)):
        seg = segments(store[t])
        pending.append(seg)
        owners.append(np.full(len(seg), i))
        count += len(seg)
        if count >= batch_segments:
            flush()
            count = 0
    if pending:
        flush()
    owner = np.concatenate([o for o, _ in out])
    emb = np.concatenate([e for _, e in out])
    sums = np.zeros((len(track_ids), emb.shape[1]), dtype=np.float64)
    np.add.at(sums, owner, emb)
    return (sums / np.bincount(owner, minlength=len(track_ids))[:, None]).astype(np.float32)


def cosine_scores(track_emb: np.ndarray, tag_emb: np.ndarray) -> np.ndarray:
    """(n_tracks, n_tags) cosine similarity; NaN columns for NaN tag rows."""
    a = track_emb / np.linalg.norm(track_emb, axis=1, keepdims=True)
    b = tag_emb / np.linalg.norm(tag_emb, axis=1, keepdims=True)
    return a @ b.T


# ----------------------------------------------------------------------------- a run's embeddings

@dataclass
class Embeddings:
    """The joint space of one run: every track with a mel and every tag of the split (X, then Y).

    Attributes
    ----------
    track_ids : list of str, ``n_tracks``
    tracks : (n_tracks, d) float32, segment-averaged audio embeddings
    tags : list of str, ``n_tags``: the seen tags X in split order, then the unseen tags Y
    tag_emb : (n_tags, d) float32, the tag branch applied to the side information; NaN rows for
        tags that have no side-information vector (they cannot be scored)
    seen : (n_tags,) bool
    side : (n_tags, side_dim) float32, the side information itself (before training)
    meta : dict, provenance (side-information kind, checkpoint epoch, split, averaging)
    """

    track_ids: list[str]
    tracks: np.ndarray
    tags: list[str]
    tag_emb: np.ndarray
    seen: np.ndarray
    side: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.track_row = {t: i for i, t in enumerate(self.track_ids)}
        self.tag_row = {t: i for i, t in enumerate(self.tags)}

    @property
    def scorable(self) -> np.ndarray:
        """Tags with a side-information vector (and hence an embedding)."""
        return ~np.isnan(self.tag_emb).any(axis=1)

    def tag_vector(self, tag: str) -> np.ndarray:
        if tag not in self.tag_row:
            raise DataError(f"tag {tag!r} is not in this run's split ({len(self.tags)} tags)")
        vec = self.tag_emb[self.tag_row[tag]]
        if np.isnan(vec).any():
            raise DataError(f"tag {tag!r} has no side-information vector ({self.meta.get('sideinfo')})")
        return vec

    def scores(self, track_ids: Sequence[str] | None = None, tags: Sequence[str] | None = None) -> np.ndarray:
        """Cosine scores ``(len(track_ids), len(tags))`` (default: all tracks, all tags)."""
        rows = slice(None) if track_ids is None else [self._track(t) for t in track_ids]
        cols = slice(None) if tags is None else [self._tag(t) for t in tags]
        return cosine_scores(self.tracks[rows], self.tag_emb[cols])

    def _track(self, t: str) -> int:
        if t not in self.track_row:
            raise DataError(f"track {t!r} has no embedding in this run")
        return self.track_row[t]

    def _tag(self, t: str) -> int:
        if t not in self.tag_row:
            raise DataError(f"tag {t!r} is not in this run's split")
        return self.tag_row[t]

    def save(self, path: str | os.PathLike) -> Path:
        save_npz(path, track_ids=np.array(self.track_ids, dtype=str), tracks=self.tracks,
                 tags=np.array(self.tags, dtype=str), tag_emb=self.tag_emb, seen=self.seen,
                 side=self.side, meta=np.array(json.dumps(self.meta)))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Embeddings":
        z = read_npz(path, "embeddings not found; run notebook 04 first")
        return cls(z["track_ids"].tolist(), z["tracks"], z["tags"].tolist(), z["tag_emb"],
                   z["seen"], z["side"], json.loads(str(z["meta"])))


def embeddings_path(run_dir: str | os.PathLike, name: str = "joint") -> Path:
    return Path(run_dir) / "embeddings" / f"{name}.npz"


def load_joint(run_dir: str | os.PathLike, ds, split, params: Mapping[str, Any], device="cpu",
               name: str = "joint", sideinfo: str | None = None):
    """The run's best joint model ``train/<name>/best.pt`` and the side-information table it reads
    (``sideinfo``, default ``model.sideinfo``).

    Returns ``(model, checkpoint_info, table)``; ``checkpoint_info`` has ``seen, mean, std, epoch``.
    """
    from .sideinfo import load_table
    from .train import load_checkpoint
    table = load_table(ds, split.name, sideinfo or params["model"]["sideinfo"])
    model, info = load_checkpoint(Path(run_dir) / "train" / name / "best.pt", params["model"],
                                  side_dim=table.dim, n_mels=ds.mels[ds.mels.track_ids[0]].shape[1],
                                  device=device)
    if info["seen"] != list(split.seen):
        raise DataError(f"{run_dir}/train/{name}/best.pt was trained on other seen tags than split "
                        f"{split.name!r}; rerun notebook 03")
    return model, info, table


@torch.no_grad()
def embed_tag_vectors(model, vectors: np.ndarray, device="cpu") -> np.ndarray:
    """The tag branch on side-information rows ``(n, side_dim)``; NaN rows stay NaN."""
    vectors = np.asarray(vectors, dtype=np.float32)
    ok = ~np.isnan(vectors).any(axis=1)
    out = np.full((len(vectors), EMBED_DIM), np.nan, dtype=np.float32)
    if ok.any():
        model.eval()
        out[ok] = model.embed_tags(torch.as_tensor(vectors[ok], device=device)).cpu().numpy()
    return out


def embed_run(ds, split, params: Mapping[str, Any], run_dir: str | os.PathLike,
              progress: bool = False, name: str = "joint", sideinfo: str | None = None) -> Embeddings:
    """Stage 04: embed every track with a mel and every tag of the split with the model
    ``train/<name>``; save to ``embeddings/<name>.npz`` in the run.

    The tag order is the split's seen tags then its unseen tags; the track order is the dataset's.
    """
    from .train import resolve_device
    device = resolve_device(params["train"]["device"])
    model, info, table = load_joint(run_dir, ds, split, params, device, name, sideinfo)
    e = params["embed"]
    ids = [t for t in ds.tracks.track_id if t in ds.mels]
    tracks = track_embeddings(model.audio, ds.mels, ids, info["mean"], info["std"], e["batch_segments"],
                              e["normalize_segments"], device, progress)
    tags = list(split.seen) + list(split.unseen)
    row = {t: i for i, t in enumerate(table.tags)}
    side = np.full((len(tags), table.dim), np.nan, dtype=np.float32)
    for i, t in enumerate(tags):
        if t in row:
            side[i] = table.vectors[row[t]]
    emb = Embeddings(ids, tracks, tags, embed_tag_vectors(model, side, device),
                     np.arange(len(tags)) < len(split.seen), side,
                     {"sideinfo": table.kind, "split": split.name, "checkpoint_epoch": info["epoch"],
                      "normalize_segments": e["normalize_segments"], "encoder": params["model"]["encoder"]})
    emb.save(embeddings_path(run_dir, name))
    return emb


# ----------------------------------------------------------------------------- free text

def text_side_info(texts: Sequence[str], kind: str, sideinfo_params: Mapping[str, Any]) -> np.ndarray:
    """Side information for arbitrary texts, built as the tags' own (``(n, dim)``, NaN if unknown).

    Word vectors average the text's known words (with the same negation rule as tags); sentence
    vectors encode the text with the same template. Attribute and random vectors exist only for
    the dataset's tags, so free text cannot be embedded with them.
    """
    from . import sideinfo as si
    if kind == "glove":
        g = sideinfo_params["glove"]
        wv = _word_vectors(g["path"], g["format"])
        return si.word_vector_table(list(texts), wv, g["negation"], oov="drop").vectors
    if kind == "sentence":
        s = sideinfo_params["sentence"]
        return si.sentence_table(list(texts), s["template"], s["batch_size"]).vectors
    raise ParamError(f"model.sideinfo: {kind!r} vectors exist only for the dataset's tags; free-text "
                     "queries need 'glove' or 'sentence' side information")


@functools.lru_cache(maxsize=2)
def _word_vectors(path, fmt):
    from .sideinfo import WordVectors
    return WordVectors.bundled() if path is None else WordVectors.from_file(path, fmt)


class TextEncoder:
    """Free text -> the joint space, through a run's side information and tag branch.

    >>> encode = TextEncoder(model, "glove", params["sideinfo"])   # doctest: +SKIP
    >>> encode(["baroque harpsichord"]).shape                       # doctest: +SKIP
    (1, 100)
    """

    def __init__(self, model, kind: str, sideinfo_params: Mapping[str, Any], device="cpu"):
        self.model, self.kind, self.params, self.device = model, kind, sideinfo_params, device

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        side = text_side_info(texts, self.kind, self.params)
        unknown = [t for t, v in zip(texts, side) if np.isnan(v).any()]
        if unknown:
            raise DataError(f"no {self.kind} vector for {unknown[0]!r}: none of its words is in the "
                            "vocabulary")
        return embed_tag_vectors(self.model, side, self.device)


# ----------------------------------------------------------------------------- maps

def umap_maps(emb: Embeddings, ds, umap_params: Mapping[str, Any], seed: int,
              colour_group: str) -> dict[str, pd.DataFrame]:
    """UMAP coordinates of the side-information space, the learned tag space, and the joint space.

    Only tags with side information are mapped. The joint map holds those tags and up to
    ``umap_params['max_tracks']`` tracks drawn with ``seed``, all L2-normalised, in one fit.

    Returns ``{"side", "tags", "joint"}``: tables with ``kind ('tag' or 'track'), id, group,
    split, x, y`` (the joint table also has ``colour``, the track's tag in ``colour_group``).
    """
    from .explore import group_labels
    from .viz import umap_coords
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


def text_encoder(run_dir: str | os.PathLike, ds, split, params: Mapping[str, Any]) -> TextEncoder | None:
    """A :class:`TextEncoder` for the run's model, or None when its side information cannot read
    free text (attribute or random vectors)."""
    from .train import resolve_device
    kind = params["model"]["sideinfo"]
    if kind not in ("glove", "sentence"):
        return None
    device = resolve_device(params["train"]["device"])
    model, _, _ = load_joint(run_dir, ds, split, params, device)
    return TextEncoder(model, kind, params["sideinfo"], device)


def results_rows(emb: Embeddings) -> list[dict]:
    """Stage 04's counts for ``results.csv``."""
    ok = emb.scorable
    return [{"task": "embeddings", "metric": "n_tracks", "value": len(emb.track_ids)},
            {"task": "embeddings", "metric": "n_tags_X", "value": int((ok & emb.seen).sum()),
             "n_excluded": int((~ok & emb.seen).sum())},
            {"task": "embeddings", "metric": "n_tags_Y", "value": int((ok & ~emb.seen).sum()),
             "n_excluded": int((~ok & ~emb.seen).sum())}]

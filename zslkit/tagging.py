"""Tagging audio files with a trained run (``zslkit tag RUN FILE_OR_FOLDER``), and reading a run as a source.

- The *source* is a finished run folder (``reports/<run>``: ``params.yaml``, ``train/<model>/best.pt``,
  ``embeddings/<model>.npz``); :mod:`zslkit.transfer` reads it with the same two functions.
- Each file is decoded and turned into log-mels with the source's mel settings (or, for a run on a frozen
  backbone, into the backbone's features), embedded by the source's audio branch, and scored against the
  source's tags (or free-text tags, or one query).
- Apart from :mod:`zslkit.transfer`, whose evaluation brings the metric suite and its libraries (SciPy's
  statistics, scikit-learn), so that ``zslkit tag`` spends its time on the files, not on imports.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import yaml

from .data import audio
from .data.features import FeatureStore, compute_features
from .data.melstore import MelStore
from .data.preprocess import preprocess
from .data.sideinfo import text_vectors
from .errors import DataError, ParamError
from .evaluate.embeddings import Embeddings
from .layout import RunLayout
from .model.checkpoints import load_checkpoint
from .model.frozen import backbone_spec, frozen_arch
from .model.inference import cosine_scores, embed_tag_vectors, resolve_device, track_embeddings
from .plan import base_kind
from .registry import SIDEINFO


def source_params(run_dir: str | os.PathLike, what: str = "transfer.source") -> dict[str, Any]:
    """The resolved parameters a finished run recorded (``params.yaml``).

    ``what`` is how messages name the run folder: the parameter (``transfer.source``) or, from the command
    line, the argument the user typed (``zslkit tag`` passes ``source``).
    """
    path = RunLayout.at(run_dir).params
    if not path.is_file():
        raise ParamError(f"{what}: {run_dir} is not a run folder (no params.yaml)")
    return yaml.safe_load(path.read_text())


def trained_models(run_dir: str | os.PathLike) -> list[str]:
    """The models of a run folder with a ``train/<name>/best.pt``, sorted."""
    return sorted(p.parent.name for p in (Path(run_dir) / "train").glob("*/best.pt"))


def load_source_model(run_dir: str | os.PathLike, name: str = "joint", device="cpu", what: str = "transfer.models"):
    """``(model, info)`` of ``train/<name>/best.pt`` in the source run.

    ``what`` is how messages name the choice of model: the parameter (``transfer.models``) or the option the
    user typed (``zslkit tag`` passes ``--model``).
    """
    path = RunLayout.at(run_dir).checkpoint(name)
    if not path.is_file():
        raise ParamError(f"{what}: {name!r}: {path} not found; the source run has {trained_models(run_dir)}")
    return load_checkpoint(path, device)


def audio_files(path: str | os.PathLike) -> list[Path]:
    """``path`` itself, or every audio file under the folder ``path`` (sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder")
    found = sorted(p for p in path.rglob("*") if p.suffix.lower() in audio.AUDIO_EXTENSIONS and p.is_file())
    if not found:
        raise DataError(f"{path}: no audio file ({', '.join(audio.AUDIO_EXTENSIONS)}) in the folder")
    return found


def tag_files(run_dir: str | os.PathLike, path: str | os.PathLike, tags: Sequence[str] | None = None,
              query: str | None = None, top: int = 10, model_name: str = "joint",
              device: str = "auto") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tag audio files with a trained run.

    Returns
    -------
    scores : DataFrame ``file, rank, tag, score, seen_by_source`` (top ``top`` per file), or with
        ``query``: ``file, rank, query, score`` (files ranked by the query)
    skipped : DataFrame ``file, reason`` for files that could not be used (the reasons of stage 01)

    Files are named as the user gave them: relative to the folder ``path`` (``sub/a.wav``), or ``path``
    itself for one file. Messages name the command's arguments (``source``, ``--model``).
    """
    src = source_params(run_dir, what="source")
    device = resolve_device(device)
    model, info = load_source_model(run_dir, model_name, device, what="--model")
    joint = Path(run_dir) / "embeddings" / f"{model_name}.npz"
    if info["kind"] != "joint":
        joints = [m for m in trained_models(run_dir) if m.startswith("joint")]
        raise ParamError(f"--model: {model_name!r} is a {info['kind']}, not a joint model; the run's joint models: "
                         f"{joints}")
    if tags is None and query is None and not joint.is_file():
        raise DataError(f"--model: {model_name!r}: {joint} not found (stage 04 embeds the run's tags); run "
                        f"`zslkit run <params> --from 04`, or give --tags or --query")
    kind = info["arch"]["sideinfo"]
    files = audio_files(path)
    given = Path(path)
    a = src["audio"]
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(f"f{i}", str(f)) for i, f in enumerate(files)]
        if frozen_arch(info["arch"]):  # a frozen backbone's features of each file, then the run's projection
            table = compute_features(jobs, tmp, backbone_spec(info["arch"]), max_duration=a["max_duration"],
                                     min_duration=a["min_duration"], workers=1, progress=False)
            store = FeatureStore.from_dir(tmp)
        else:
            table = preprocess(jobs, tmp, audio.MelSpec.from_params(a), max_duration=a["max_duration"],
                               min_duration=a["min_duration"], workers=1, progress=False)
            store = MelStore.from_dir(tmp)
        ids = [t for t, _ in jobs if t in store]
        emb = track_embeddings(model.audio, store, ids, info["mean"], info["std"], info["arch"]["segment_frames"],
                               src["embed"]["batch_segments"], src["embed"]["normalize_segments"], device, False)
    name = {t: (Path(f).relative_to(given).as_posix() if given.is_dir() else str(path)) for t, f in jobs}
    skipped = pd.DataFrame({"file": [name[t] for t in table.track_id[table.status == "error"]],
                            "reason": table.reason[table.status == "error"].tolist()})
    free = SIDEINFO[base_kind(kind)].free_text
    if query is not None or tags is not None:
        texts = [query] if query is not None else list(tags)
        option = "--query" if query is not None else "--tags"
        if not free:
            raise ParamError(f"{option}: the run's side information {kind!r} has no vectors for free text; "
                             f"leave it out to use the run's own tags")
        side = text_vectors(texts, base_kind(kind), src["sideinfo"])
        unknown = [t for t, v in zip(texts, side) if np.isnan(v).any()]
        if unknown:
            raise DataError(f"{option}: no {kind} vector for {unknown[0]!r}: none of its words is in the vocabulary")
        tag_emb, seen = embed_tag_vectors(model, side.astype(np.float32), device), np.isin(texts, info["seen"])
    else:
        vocab = Embeddings.load(joint)
        ok = vocab.scorable
        texts, tag_emb, seen = [t for t, k in zip(vocab.tags, ok) if k], vocab.tag_emb[ok], vocab.seen[ok]
    scores = cosine_scores(emb, tag_emb) if len(ids) else np.zeros((0, len(texts)))
    if query is not None:
        order = np.argsort(-scores[:, 0], kind="stable")
        out = pd.DataFrame({"file": [name[ids[i]] for i in order], "rank": np.arange(1, len(order) + 1),
                            "query": query, "score": scores[order, 0]})
        return out, skipped
    rows = []
    for i, t in enumerate(ids):
        for r, j in enumerate(np.argsort(-scores[i], kind="stable")[:top]):
            rows.append((name[t], r + 1, texts[j], float(scores[i, j]), bool(seen[j])))
    return pd.DataFrame(rows, columns=["file", "rank", "tag", "score", "seen_by_source"]), skipped

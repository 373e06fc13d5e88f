"""Frozen pretrained backbones: audio -> one vector per clip, computed once per dataset and cached.

A *backbone* is an encoder registered with ``frozen=True`` (``model.encoder: musicnn``, ``hear``, or yours;
docs/extending.md). It is built as ``cls(**section)`` from its section ``model.<name>`` and keeps this contract
(:class:`Backbone` gives the defaults):

- ``sample_rate`` (Hz): the rate its :meth:`~Backbone.embed` expects; the audio is decoded and resampled to it
  with zslkit's own decoder (:func:`zslkit.data.audio.load_audio`, soxr ``HQ``);
- ``dim``: the size of its vectors;
- ``embed(clips)``: a list of mono float32 waveforms at ``sample_rate`` (lengths may differ) ->
  ``np.ndarray [shape=(n_clips, dim), dtype=float32]``, one fixed vector per clip;
- ``supervised_on`` (:class:`SupervisedOn`): the tag vocabulary and the datasets it was trained on, so that
  stage 02 can mark unseen tags it was taught as leaky and stage 01 can warn on its own corpus
  (:mod:`zslkit.data.leakage`);
- ``key``: a file-name-safe name of what it computes (``musicnn-MTT_musicnn-bn_dense``): its features are cached
  under ``<dataset>/features/<key>/`` (:meth:`zslkit.layout.DatasetLayout.features`).

:class:`HearBackbone` (``model.encoder: hear``) wraps any installed module following the HEAR 2021 API
(``load_model``, ``get_scene_embeddings``; ``sample_rate`` and ``scene_embedding_size`` on the model or the
module). The musicnn port is :class:`zslkit.model.backbones.musicnn_backbone.Musicnn`.

The cache (:func:`compute_features`), like the mel job (:mod:`zslkit.data.preprocess`):

- the work is cut into tasks of ``chunk`` tracks run in a local process pool or on a Dask cluster
  (:mod:`zslkit.data.scheduler`, ``audio.scheduler``); each task builds the backbone once per process
  (:class:`BackboneSpec`), decodes its files, embeds them and writes one part ``parts/<digest>.npz`` atomically;
- a killed job leaves whole parts only; the next call computes the tracks no part holds yet;
- missing, empty, unreadable, too short, non-finite or silent audio is skipped with the mel job's reasons, and a
  backbone output that is not finite too; ``errors.csv`` lists them;
- at the end the parts are merged into ``features.npz`` (``track_ids``, ``vectors``) and removed, and
  ``meta.json`` records the backbone (:meth:`Backbone.describe`) and the seconds each clip took.

:class:`FeatureStore` reads the cache with the interface of :class:`zslkit.data.melstore.MelStore` (one
``(1, dim)`` "frame" per track), so that training's batch plans and stage 04's averaging need no second path.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..config import project_root
from ..errors import DataError, ParamError
from ..io import read_json, read_npz, save_npz, write_csv, write_json
from ..registry import ENCODERS, load_plugins
from .audio import EMPTY, file_issue, load_audio
from .melstore import shard_name
from .preprocess import _check_signal, track_ids
from .scheduler import run_tasks

#: files of a feature folder
FEATURES_FILE, META_FILE, ERRORS_FILE, PARTS_DIR = "features.npz", "meta.json", "errors.csv", "parts"
#: the columns of :func:`compute_features`' table
FEATURE_COLUMNS = ("track_id", "path", "status", "reason", "duration", "seconds", "cpu_seconds")


def is_frozen(encoder: str) -> bool:
    """True when the registered encoder ``encoder`` is a frozen backbone (``frozen=True``)."""
    return bool(ENCODERS[encoder].flags.get("frozen"))


@dataclass(frozen=True)
class SupervisedOn:
    """What a pretrained backbone was trained on: its tag vocabulary and its datasets.

    Attributes
    ----------
    tags : tuple of str
        The tags its training supervised (musicnn MTT: MagnaTagATune's 50).
    datasets : tuple of str
        The datasets it was trained on, named as ``data.source`` names them (``mtat``; ``msd`` for the Million
        Song Dataset, which ``data.source: seed`` imports).
    """

    tags: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()

    @classmethod
    def of(cls, value: Any) -> "SupervisedOn":
        """A :class:`SupervisedOn` from itself, None (nothing declared) or a mapping ``{tags, datasets}``."""
        if value is None:
            return cls()
        if isinstance(value, SupervisedOn):
            return value
        if not isinstance(value, Mapping) or set(value) - {"tags", "datasets"}:
            raise ParamError(f"supervised_on: expected {{tags: [...], datasets: [...]}}, got {value!r}")
        return cls(tuple(str(t) for t in value.get("tags", ())), tuple(str(d) for d in value.get("datasets", ())))

    def as_dict(self) -> dict[str, list[str]]:
        return {"tags": list(self.tags), "datasets": list(self.datasets)}

    def __bool__(self) -> bool:
        return bool(self.tags or self.datasets)


def _digest(obj: Any, n: int = 10) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


class Backbone:
    """The contract of a frozen backbone (module doc), with defaults.

    A subclass sets ``sample_rate`` and ``supervised_on`` and implements :attr:`dim` and :meth:`embed`;
    :func:`backbone_of` sets ``encoder`` (its registry name) and ``params`` (its section).
    """

    encoder: str = ""
    params: dict = {}
    sample_rate: int = 16000
    supervised_on: SupervisedOn = SupervisedOn()

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def load(self) -> None:
        """Load the weights now (a task calls it before timing its clips); by default nothing."""

    def embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """``(n_clips, dim)`` float32 vectors of mono waveforms at :attr:`sample_rate`."""
        raise NotImplementedError

    @property
    def key(self) -> str:
        """The cache folder's name: the encoder and a digest of its section (subclasses name it more plainly)."""
        return f"{self.encoder}-{_digest(self.params)}"

    def describe(self) -> dict[str, Any]:
        """What checkpoints, embeddings and the feature cache record: ``encoder``, ``params``, ``key``, ``dim``,
        ``sample_rate``, ``supervised_on``."""
        return {"encoder": self.encoder, "params": dict(self.params), "key": self.key, "dim": int(self.dim),
                "sample_rate": int(self.sample_rate), "supervised_on": SupervisedOn.of(self.supervised_on).as_dict()}


def backbone_of(encoder: str, params: Mapping[str, Any] | None = None) -> Backbone:
    """The registered frozen backbone ``encoder`` built with its section ``params`` (default: its defaults)."""
    entry = ENCODERS[encoder]
    if not entry.flags.get("frozen"):
        raise ParamError(f"model.encoder: {encoder!r} is not a frozen backbone (registered without frozen=True)")
    params = {k: f.default for k, f in entry.params.items()} if params is None else dict(params)
    bb = entry.obj(**params)
    for attr in ("sample_rate", "embed", "dim", "supervised_on"):
        if not hasattr(type(bb), attr) and not hasattr(bb, attr):
            raise ParamError(f"model.encoder: backbone {encoder!r} lacks {attr!r}, which every backbone must have")
    bb.encoder, bb.params = encoder, params
    return bb


#: backbones built in this process, by spec (a task builds its backbone once per worker)
_BUILT: dict[str, Backbone] = {}


@dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone in any process (picklable; sent with every task of :func:`compute_features`).

    Attributes
    ----------
    encoder : str
        Its registry name.
    params : dict
        Its section.
    plugins : tuple of str
        ``run.plugins``, imported first (a backbone of yours on a Dask worker).
    root : str
        The project root the plugins' relative paths are taken from.
    """

    encoder: str
    params: dict = field(default_factory=dict)
    plugins: tuple[str, ...] = ()
    root: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "BackboneSpec":
        """The backbone of resolved parameters (``model.encoder``, its section, ``run.plugins``)."""
        name = params["model"]["encoder"]
        return cls(name, dict(params["model"].get(name) or {}), tuple(params["run"].get("plugins") or ()),
                   str(project_root()))

    @classmethod
    def from_record(cls, record: Mapping[str, Any], plugins: Sequence[str] = ()) -> "BackboneSpec":
        """The backbone a checkpoint or an embedding recorded (:meth:`Backbone.describe`)."""
        return cls(record["encoder"], dict(record["params"]), tuple(plugins), str(project_root()))

    def build(self) -> Backbone:
        """The backbone, built once per process."""
        code = json.dumps([self.encoder, self.params], sort_keys=True, default=str)
        if code not in _BUILT:
            if self.plugins:
                load_plugins(list(self.plugins), self.root or None)
            _BUILT[code] = backbone_of(self.encoder, self.params)
        return _BUILT[code]


# ----------------------------------------------------------------------------------------------------- HEAR in

class HearBackbone(Backbone):
    """Any installed module following the HEAR 2021 API as a frozen backbone (``model.encoder: hear``).

    Parameters
    ----------
    module : str
        Its import name. It must have ``load_model`` and ``get_scene_embeddings(audio, model)``; ``sample_rate`` and
        ``scene_embedding_size`` are read from the loaded model (HEAR) or else the module.
    weights : str
        Passed to ``load_model``: a path (taken from the project root when relative and there), or what the
        module understands; ``""`` calls ``load_model()``.
    supervised_on : mapping, optional
        ``{tags, datasets}``; when empty, the model's or the module's own ``supervised_on`` attribute, if any.
    batch : int
        Sounds per ``get_scene_embeddings`` call (sounds of one length are batched together).
    """

    def __init__(self, module: str | None = None, weights: str = "", supervised_on: Mapping | None = None,
                 batch: int = 16):
        if not module:
            raise ParamError("model.hear.module: name the HEAR module to import (e.g. "
                             "zslkit.model.backbones.hear_musicnn, or zslkit.hear with weights: reports/<run>)")
        self.module_name, self.weights, self.batch = module, weights or "", max(1, int(batch))
        self.declared = dict(supervised_on or {})
        self._module = self._model = None

    @property
    def module(self):
        if self._module is None:
            try:
                self._module = importlib.import_module(self.module_name)
            except ImportError as exc:
                raise ParamError(f"model.hear.module: cannot import {self.module_name!r}: {exc}") from exc
            missing = [f for f in ("load_model", "get_scene_embeddings") if not hasattr(self._module, f)]
            if missing:
                raise ParamError(f"model.hear.module: {self.module_name!r} does not follow the HEAR API: no "
                                 f"{missing[0]}()")
        return self._module

    def weights_path(self) -> str:
        """``weights`` as given, or made absolute from the project root when it names a file or folder there."""
        if not self.weights:
            return ""
        path = Path(os.path.expanduser(self.weights))
        if not path.is_absolute() and (project_root() / path).exists():
            return str(project_root() / path)
        return str(path) if path.exists() else self.weights

    @property
    def model(self):
        if self._model is None:
            weights = self.weights_path()
            self._model = self.module.load_model(weights) if weights else self.module.load_model()
        return self._model

    def _attr(self, name: str):
        for owner in (self.model, self.module):
            if hasattr(owner, name):
                return getattr(owner, name)
        raise ParamError(f"model.hear.module: {self.module_name!r} gives no {name} (on its model or the module)")

    @property
    def sample_rate(self) -> int:  # type: ignore[override]
        return int(self._attr("sample_rate"))

    @property
    def dim(self) -> int:
        return int(self._attr("scene_embedding_size"))

    @property
    def supervised_on(self) -> SupervisedOn:  # type: ignore[override]
        if self.declared:
            return SupervisedOn.of(self.declared)
        for owner in (self.module, self.model):
            if getattr(owner, "supervised_on", None):
                return SupervisedOn.of(owner.supervised_on)
        return SupervisedOn()

    @property
    def key(self) -> str:
        if not self.weights:
            return f"hear-{self.module_name}"
        path = Path(self.weights_path())
        stat = [path.stat().st_size, path.stat().st_mtime_ns] if path.is_file() else []
        return f"hear-{self.module_name}-{_digest([str(path), stat], 8)}"

    def load(self) -> None:
        _ = self.model

    def embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        import torch  # the HEAR API speaks torch tensors

        out = np.zeros((len(clips), self.dim), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for i, y in enumerate(clips):
            by_length.setdefault(len(y), []).append(i)
        with torch.no_grad():
            for rows in by_length.values():
                for a in range(0, len(rows), self.batch):
                    part = rows[a:a + self.batch]
                    audio = torch.from_numpy(np.stack([np.asarray(clips[i], dtype=np.float32) for i in part]))
                    emb = self.module.get_scene_embeddings(audio, self.model)
                    emb = emb.detach().float().cpu().numpy() if hasattr(emb, "detach") else np.asarray(emb, np.float32)
                    if emb.shape != (len(part), self.dim):
                        raise DataError(f"{self.module_name}.get_scene_embeddings gave shape {emb.shape} for "
                                        f"{len(part)} sounds; expected ({len(part)}, {self.dim})")
                    out[part] = emb
        return out


# ----------------------------------------------------------------------------------------------------- the cache

def _embed_task(task: tuple[Sequence[tuple], str, BackboneSpec]) -> list[tuple]:
    """One task of :func:`compute_features`: decode, embed and store a chunk of tracks (one part file).

    ``task`` is ``(jobs, folder, spec)``, ``jobs`` one ``(track_id, path, max_duration, min_duration, offset)``
    per track. Returns one row per job (:data:`FEATURE_COLUMNS`).
    """
    jobs, folder, spec = task
    bb = spec.build()
    bb.load()
    rate = bb.sample_rate
    t0, c0 = time.perf_counter(), time.process_time()
    rows, clips, ok = [], [], []
    for track_id, path, max_duration, min_duration, offset in jobs:
        issue = file_issue(path)
        if issue:
            rows.append([track_id, path, "error", issue if issue == EMPTY else f"unreadable: {issue}", 0.0, np.nan,
                         np.nan])
            continue
        try:
            y = load_audio(path, rate, max_duration, offset)
        except DataError as exc:
            rows.append([track_id, path, "error", f"unreadable: {exc.__cause__ or exc}", 0.0, np.nan, np.nan])
            continue
        reason = _check_signal(y, rate, min_duration)
        rows.append([track_id, path, "error" if reason else "ok", reason or "", len(y) / rate, np.nan, np.nan])
        if not reason:
            clips.append(y)
            ok.append(len(rows) - 1)
    if clips:
        vectors = np.asarray(bb.embed(clips), dtype=np.float32)
        if vectors.shape != (len(clips), bb.dim):
            raise DataError(f"backbone {bb.key}: embed gave shape {vectors.shape} for {len(clips)} clips, expected "
                            f"({len(clips)}, {bb.dim})")
        finite = np.isfinite(vectors).all(axis=1)
        each, cpu = (time.perf_counter() - t0) / len(clips), (time.process_time() - c0) / len(clips)
        for r, good in zip(ok, finite):
            rows[r][5:7] = [each, cpu]
            if not good:
                rows[r][2:4] = ["error", "corrupt: the backbone gave non-finite values"]
        ids = [rows[r][0] for r, good in zip(ok, finite) if good]
        if ids:
            save_npz(Path(folder) / PARTS_DIR / f"{shard_name(ids)}.npz", track_ids=np.array(ids),
                     vectors=vectors[finite])
    return [tuple(r) for r in rows]


def _stored(folder: Path) -> dict[str, np.ndarray]:
    """Every vector already in ``folder``: the merged file, then the parts of an interrupted job."""
    found: dict[str, np.ndarray] = {}
    files = ([folder / FEATURES_FILE] if (folder / FEATURES_FILE).is_file() else []) \
        + sorted((folder / PARTS_DIR).glob("*.npz"))
    for path in files:
        try:
            z = read_npz(path, "")
        except (OSError, ValueError, KeyError):  # not whole: cannot happen with atomic writes, but never trust it
            path.unlink(missing_ok=True)
            continue
        found.update(zip(z["track_ids"].tolist(), z["vectors"]))
    return found


def compute_features(tracks: Sequence[tuple[str, str]], folder: str | os.PathLike, spec: BackboneSpec,
                     max_duration: float | None = None, min_duration: float = 1.0, workers: int = 0,
                     progress: bool = True, windows: Mapping[str, tuple[float, float | None]] | None = None,
                     scheduler: str = "local", chunk: int = 16) -> pd.DataFrame:
    """A backbone's vector for every track, in parallel and resumably (module doc).

    Parameters
    ----------
    tracks : sequence of (track_id, audio_path)
        Unique ids.
    folder : path
        The cache folder (:meth:`zslkit.layout.DatasetLayout.features`); created when missing.
    spec : BackboneSpec
    max_duration : float or None
        Seconds of each file used at most (``audio.max_duration``).
    min_duration : float
        Shorter signals are skipped (``'too short'``).
    workers : int
        Local processes; 0 = all cores, 1 = in this process (``scheduler='local'``).
    progress : bool
        A tqdm bar.
    windows : mapping of track_id to (start, duration), optional
        The part of a long file to use, as the mel job (:func:`zslkit.data.prepare.track_windows`).
    scheduler : str
        ``'local'`` or a Dask scheduler address (``audio.scheduler``).
    chunk : int
        Tracks per task (and per part file): what a killed job can lose per worker.

    Returns
    -------
    table : pd.DataFrame
        One row per track, in the order of ``tracks``: ``track_id, path, status ('ok' | 'cached' | 'error'),
        reason, duration`` (seconds decoded; NaN when cached), ``seconds`` and ``cpu_seconds`` (decoding and
        embedding wall and CPU time per clip in this call, in its worker; NaN when cached or skipped).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids = track_ids(tracks)
    found = _stored(folder)
    rows, jobs = [], []
    for track_id, path in tracks:
        track_id = str(track_id)
        if track_id in found:
            rows.append((track_id, str(path), "cached", "", np.nan, np.nan, np.nan))
        else:
            start, length = (windows or {}).get(track_id, (0.0, None))
            cap = length if max_duration is None else min(max_duration, length or max_duration)
            jobs.append((track_id, str(path), cap, min_duration, start))
    bb = spec.build()
    if jobs:
        size = max(1, int(chunk))
        tasks = [(jobs[a:a + size], str(folder), spec) for a in range(0, len(jobs), size)]
        with tqdm(total=len(jobs), desc=f"features {bb.key}", unit="track", disable=not progress) as bar:
            for task, result in run_tasks(_embed_task, tasks, scheduler, workers):
                rows += result
                bar.update(len(task[0]))
    table = pd.DataFrame(rows, columns=list(FEATURE_COLUMNS))
    order = {t: i for i, t in enumerate(ids)}
    table = table.sort_values("track_id", key=lambda s: s.map(order)).reset_index(drop=True)
    if jobs or not (folder / FEATURES_FILE).is_file():
        _merge(folder, bb, table)
    return table


def _merge(folder: Path, bb: Backbone, table: pd.DataFrame) -> None:
    """The parts and the merged file into one ``features.npz`` (the tracks of ``table`` that have a vector, in its
    order), ``meta.json`` and ``errors.csv``; the parts are removed once the merged file is written."""
    found = _stored(folder)
    keep = [t for t in table.track_id if t in found]
    dim = int(bb.dim)
    vectors = np.stack([found[t] for t in keep]).astype(np.float32) if keep else np.zeros((0, dim), np.float32)
    save_npz(folder / FEATURES_FILE, track_ids=np.array(keep, dtype=str), vectors=vectors)
    for part in (folder / PARTS_DIR).glob("*.npz"):
        part.unlink()
    old = read_json(folder / META_FILE) if (folder / META_FILE).is_file() else {}
    timed = table.dropna(subset=["seconds"])
    seconds = {"seconds_per_clip": float(timed.seconds.mean()), "cpu_seconds_per_clip": float(timed.cpu_seconds.mean()),
               "clips_timed": int(len(timed))} if len(timed) else \
        {k: old[k] for k in ("seconds_per_clip", "cpu_seconds_per_clip", "clips_timed") if k in old}
    write_json(folder / META_FILE, {**bb.describe(), "n_tracks": len(keep), **seconds})
    write_csv(folder / ERRORS_FILE, table.loc[table.status == "error", ["track_id", "path", "reason"]])


class FeatureStore:
    """A backbone's cached vectors by track id, read like a :class:`~zslkit.data.melstore.MelStore`: each track one
    ``(1, dim)`` "frame" (module doc).

    >>> store = FeatureStore.from_dir(DatasetLayout.from_params(P).features(key))    # doctest: +SKIP
    >>> store["t1"].shape, store.matrix(["t1", "t2"]).shape                          # doctest: +SKIP
    ((1, 200), (2, 200))
    """

    def __init__(self, track_ids: Sequence[str], vectors: np.ndarray, meta: Mapping[str, Any] | None = None):
        self._ids = [str(t) for t in track_ids]
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.meta = dict(meta or {})
        self._row = {t: i for i, t in enumerate(self._ids)}

    @classmethod
    def from_dir(cls, folder: str | os.PathLike) -> "FeatureStore":
        folder = Path(folder)
        z = read_npz(folder / FEATURES_FILE, "no backbone features here: stage 01 computes them (model.encoder is "
                                             "a frozen backbone), or rerun it")
        meta = read_json(folder / META_FILE) if (folder / META_FILE).is_file() else {}
        return cls(z["track_ids"].tolist(), z["vectors"], meta)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, track_id: str) -> bool:
        return str(track_id) in self._row

    @property
    def track_ids(self) -> list[str]:
        return list(self._ids)

    def __getitem__(self, track_id: str) -> np.ndarray:
        try:
            return self.vectors[self._row[str(track_id)]][None, :]
        except KeyError:
            raise DataError(f"no backbone features for track {track_id!r}") from None

    def n_frames(self, track_ids: Sequence[str]) -> np.ndarray:
        """One "frame" per track (the interface of :meth:`MelStore.n_frames`)."""
        return np.ones(len(track_ids), dtype=np.int64)

    def matrix(self, track_ids: Sequence[str]) -> np.ndarray:
        """``(len(track_ids), dim)`` float32: the tracks' vectors in that order."""
        try:
            return self.vectors[[self._row[str(t)] for t in track_ids]]
        except KeyError as exc:
            raise DataError(f"no backbone features for track {exc.args[0]!r}") from None

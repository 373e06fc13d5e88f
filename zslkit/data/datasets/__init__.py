"""The on-disk dataset format shared by every importer and builder.

A dataset is a folder of plain files::

    dataset.json       name, source, normalisation constants, notes (licences, build report)
    tracks.csv         track_id, path (audio, relative to the folder or absolute), metadata columns
    tags.csv           tag_id (0..n-1, the column of the annotation matrix), tag (text), group
    annotations.npz    scipy.sparse CSR matrix, tracks x tags, 1 = positive
    mels/              index.csv, errors.csv and the float16 log-mels, (n_frames, n_mels) per track:
                       shards/<name>.npy of many tracks each, with <name>.index.npz (audio.layout
                       shards, the default), or <track_id>.npy per track (layout files); zslkit.data.melstore

Row ``i`` of the annotation matrix is row ``i`` of ``tracks.csv``. No pickles of our own.

Importers
---------
Importers are registered in :data:`zslkit.registry.DATASETS` (selected by ``data.source``, with
their own section ``data.<name>``). An importer is a function
``importer(out_dir, params, run, name) -> (Dataset, report)``:

- ``out_dir``: the dataset folder to write (``run.data_dir / data.name``), with
  :func:`write_dataset`; rerunning it should reuse what is already there;
- ``params``: its own resolved section; ``run``: the ``run`` section (``seed``, ``workers``,
  ``progress``, ``data_dir``); ``name``: ``data.name``;
- ``report``: a JSON-able dict of what was left out and why (shown in notebook 01).

Stage 01 then computes the log-mels of every track's audio (``tracks.csv`` ``path``), unless the
importer indexed ready-made mels itself (``dataset.json`` ``"mels": "original"``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ...errors import DataError
from ...io import atomic_path, read_json, write_csv, write_json
from ...layout import DatasetLayout
from ..melstore import MelStore

REQUIRED = ("dataset.json", "tracks.csv", "tags.csv", "annotations.npz")

#: what a build did before it recorded a key: m21's table was flat before data.m21.knowledge
BUILT_BEFORE_KEY: dict[tuple[str, str], Any] = {("m21", "knowledge"): "flat"}
#: what rerunning notebook 01 does for a key, where it is less than a rebuild
REBUILD_HINT = {("m21", "knowledge"): "with the clips already rendered it rewrites only the tables"}
_UNRECORDED = object()  # a key the build did not record


def build_params_differ(built: Mapping[str, Any] | None, wanted: Mapping[str, Any],
                        source: str) -> tuple[str, Any, Any] | None:
    """The first key of ``wanted`` (a run's ``data.<source>``) whose value the build recorded otherwise, as
    ``(key, built value, wanted value)``; None when they agree or the build recorded none. Values are
    compared as JSON holds them (a tuple equals a list)."""
    if built is None:
        return None
    for key, want in wanted.items():
        have = built.get(key, BUILT_BEFORE_KEY.get((source, key), _UNRECORDED))
        if have is not _UNRECORDED and json.loads(json.dumps(have)) != json.loads(json.dumps(want)):
            return key, have, want
    return None


@dataclass
class Dataset:
    """A dataset folder loaded into memory (mels stay on disk, memory-mapped)."""

    root: Path
    meta: dict[str, Any]
    tracks: pd.DataFrame
    tags: pd.DataFrame
    annotations: sp.csr_matrix = field(repr=False)

    @classmethod
    def of_run(cls, params: Mapping[str, Any]) -> "Dataset":
        """The dataset that resolved parameters name (``run.data_dir / data.name``).

        A build that recorded its parameters (``dataset.json`` ``params``: m21) is refused when one of them
        differs from the run's ``data.<source>``: the stages after 01 would read data of other parameters
        than the run's. A key the build did not record (a build older than the key) is not checked, but for
        the few whose earlier behaviour is known (:data:`BUILT_BEFORE_KEY`).
        """
        ds = cls.load(DatasetLayout.from_params(params).root)
        source = params["data"]["source"]
        if ds.meta.get("source") == source:
            differs = build_params_differ(ds.meta.get("params"), params["data"].get(source) or {}, source)
            if differs:
                key, built, wanted = differs
                raise DataError(f"{ds.root / 'dataset.json'}: this build has data.{source}.{key} = {built!r}, the "
                                f"run has {wanted!r}: rerun notebook 01 with the run's parameters "
                                f"({REBUILD_HINT.get((source, key), 'it brings the build up to them')}), or "
                                "set the key back")
        return ds

    @classmethod
    def load(cls, root: str | os.PathLike) -> "Dataset":
        root = Path(root)
        missing = [f for f in REQUIRED if not (root / f).is_file()]
        if missing:
            raise DataError(f"{root}: not a zslkit dataset (missing {', '.join(missing)})")
        tracks = pd.read_csv(root / "tracks.csv", dtype={"track_id": str, "path": str},
                             keep_default_na=False)
        tags = pd.read_csv(root / "tags.csv", dtype={"tag": str, "group": str},
                           keep_default_na=False)
        annotations = sp.load_npz(root / "annotations.npz").tocsr()
        ds = cls(root, read_json(root / "dataset.json"), tracks, tags, annotations)
        ds.validate()
        return ds

    def validate(self) -> None:
        """Raise :class:`DataError` if the parts do not fit together."""
        where = str(self.root)
        if self.annotations.shape != (len(self.tracks), len(self.tags)):
            raise DataError(f"{where}: annotations.npz has shape {self.annotations.shape}, expected "
                            f"(tracks, tags) = ({len(self.tracks)}, {len(self.tags)})")
        for name, col in (("tracks.csv", self.tracks.track_id), ("tags.csv", self.tags.tag)):
            dup = col[col.duplicated()]
            if len(dup):
                raise DataError(f"{where}/{name}: duplicate entry {dup.iloc[0]!r}")
        if not np.array_equal(self.tags.tag_id.to_numpy(), np.arange(len(self.tags))):
            raise DataError(f"{where}/tags.csv: tag_id must be 0..{len(self.tags) - 1} in order")

    # -- views ---------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.meta.get("name", self.root.name)

    @property
    def n_tracks(self) -> int:
        return len(self.tracks)

    @property
    def n_tags(self) -> int:
        return len(self.tags)

    @property
    def tag_texts(self) -> list[str]:
        return self.tags.tag.tolist()

    @cached_property
    def mels(self) -> MelStore:
        return MelStore.from_dir(self.root / "mels")

    def has_mels(self) -> bool:
        return (self.root / "mels" / "index.csv").is_file()

    @cached_property
    def _paths(self) -> dict[str, str]:
        return dict(zip(self.tracks.track_id, self.tracks.path))

    def audio_path(self, track_id: str) -> Path:
        """The audio file of a track (relative paths are taken from the dataset folder)."""
        try:
            path = Path(self._paths[str(track_id)])
        except KeyError:
            raise DataError(f"{self.root}: no track {track_id!r}") from None
        return path if path.is_absolute() else self.root / path

    def labels(self, track_ids: Sequence[str], tags: Sequence[str]) -> np.ndarray:
        """Boolean (len(track_ids), len(tags)) slice of the annotations, in the given orders."""
        row = {t: i for i, t in enumerate(self.tracks.track_id)}
        col = {t: j for j, t in enumerate(self.tags.tag)}
        return self.annotations[[row[t] for t in track_ids]][:, [col[t] for t in tags]].toarray().astype(bool)

    def complete_truth(self) -> dict[str, set] | None:
        """The full truth as ``{track_id: set of tags}`` when ``tracks.csv`` has a ``tags_full``
        column (m21, whose annotation is partial by design); None otherwise."""
        if "tags_full" not in self.tracks.columns:
            return None
        return {t: set(str(f).split(";")) - {""} for t, f in zip(self.tracks.track_id, self.tracks.tags_full)}

    def complete_labels(self, track_ids: Sequence[str], tags: Sequence[str]) -> np.ndarray | None:
        """Like :meth:`labels`, from the full truth; None when the dataset has none."""
        truth = self.complete_truth()
        if truth is None:
            return None
        out = np.array([[t in truth[i] for t in tags] for i in track_ids], dtype=bool)
        return out.reshape(len(track_ids), len(tags))

    def label_matrix(self) -> np.ndarray:
        """Dense boolean (tracks, tags) matrix."""
        return self.annotations.toarray().astype(bool)

    def tag_counts(self) -> pd.DataFrame:
        """Positive tracks per tag with its group, most frequent first."""
        counts = np.asarray(self.annotations.sum(axis=0)).ravel().astype(int)
        out = self.tags.assign(count=counts)
        return out.sort_values(["group", "count"], ascending=[True, False]).reset_index(drop=True)

    def summary(self) -> dict[str, Any]:
        per_track = np.asarray(self.annotations.sum(axis=1)).ravel()
        return {"tracks": self.n_tracks, "tags": self.n_tags,
                "groups": int(self.tags.group.nunique()),
                "labels": int(self.annotations.nnz),
                "tags_per_track_mean": float(per_track.mean()) if len(per_track) else 0.0,
                "tracks_without_tags": int((per_track == 0).sum())}


def write_dataset(root: str | os.PathLike, tracks: pd.DataFrame, tags: pd.DataFrame,
                  annotations: sp.spmatrix, meta: Mapping[str, Any]) -> Dataset:
    """Write a dataset folder (each file atomically) and return it loaded.

    ``tags`` needs columns ``tag`` and ``group``; ``tag_id`` is assigned from the row order.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tags = tags.reset_index(drop=True)
    tags = pd.DataFrame({"tag_id": np.arange(len(tags)), "tag": tags["tag"].astype(str),
                         "group": tags["group"].astype(str)})
    ds = Dataset(root, dict(meta), tracks.reset_index(drop=True), tags,
                 sp.csr_matrix(annotations, dtype=np.uint8))
    ds.validate()
    write_csv(root / "tracks.csv", ds.tracks)
    write_csv(root / "tags.csv", ds.tags)
    with atomic_path(root / "annotations.npz", suffix=".npz") as tmp:
        sp.save_npz(tmp, ds.annotations)
    write_json(root / "dataset.json", ds.meta)
    return ds


def annotations_from_lists(tag_lists: list[list[str]], tag_order: list[str]) -> sp.csr_matrix:
    """Sparse (tracks, tags) matrix from each track's list of tag texts."""
    col = {t: j for j, t in enumerate(tag_order)}
    rows, cols = [], []
    for i, tags in enumerate(tag_lists):
        for t in dict.fromkeys(tags):
            if t in col:
                rows.append(i)
                cols.append(col[t])
    data = np.ones(len(rows), dtype=np.uint8)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(tag_lists), len(tag_order)))

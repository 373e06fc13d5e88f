"""The side-information table: one tag -> vector mapping of one kind, and where it is kept.

A table is saved per tag split, as ``<dataset>/splits/<split>/sideinfo/<kind>.npz`` (attribute
vectors depend on the split's training tracks), with ``tags`` (texts), ``vectors`` (n_tags, dim)
float32 with NaN rows for tags that have no vector, and ``meta`` (JSON); a per-tag report, when
the kind writes one, goes beside it as ``<kind>_report.csv``. A control kind built in several
draws (``sideinfo.random.draws``) keeps draw ``d >= 1`` as the kind ``<kind>@<d>``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...io import read_npz, save_npz, write_csv
from ...layout import DatasetLayout


@dataclass
class SideInfo:
    """A tag -> vector table. Rows of tags without a vector are NaN."""

    kind: str
    tags: list[str]
    vectors: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    report: pd.DataFrame | None = None

    @property
    def present(self) -> np.ndarray:
        return ~np.isnan(self.vectors).any(axis=1)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def missing(self) -> list[str]:
        return [t for t, ok in zip(self.tags, self.present) if not ok]

    def save(self, path: str | os.PathLike) -> Path:
        save_npz(path, tags=np.array(self.tags, dtype=str), vectors=self.vectors.astype(np.float32),
                 meta=np.array(json.dumps({"kind": self.kind, **self.meta})))
        if self.report is not None:
            write_csv(Path(path).with_name(f"{self.kind}_report.csv"), self.report)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SideInfo":
        z = read_npz(path, "side-information table not found; run notebook 02 first")
        meta = json.loads(str(z["meta"])) if "meta" in z else {}
        return cls(meta.pop("kind", Path(path).stem), z["tags"].tolist(), z["vectors"], meta)

    def cosine(self) -> np.ndarray:
        """(n_tags, n_tags) cosine similarity; NaN for tags without a vector."""
        v = self.vectors / np.linalg.norm(self.vectors, axis=1, keepdims=True)
        return v @ v.T


def load_table(ds, split_name: str, kind: str) -> SideInfo:
    """The saved table of ``kind`` for a split (written by notebook 02)."""
    return SideInfo.load(DatasetLayout.at(ds.root).sideinfo(split_name, kind))


@dataclass
class Context:
    """What a side-information builder may read.

    Attributes
    ----------
    texts : list of str, the tags (or free-text queries) to give vectors, in order
    tags : DataFrame ``tag, group`` of the dataset (None for free text)
    labels : bool (n_tracks, n_tags) annotation of the dataset (None for free text)
    train_rows : rows of ``labels`` that are training tracks (A-train and B-train)
    dataset_root : the dataset folder (None for free text)
    built : tables of the kinds built before this one in the same call
    free_text : True when ``texts`` are queries rather than the dataset's tags
    columns : for kinds whose vectors have named columns (``table``), the columns a trained model
        expects, by kind: the kind aligns its vectors to them by name (a missing column is zero, an
        extra one is dropped; both are listed in the table's ``meta``). Empty: the kind's own columns.
        Set when a trained run's side information is built for another dataset (:mod:`zslkit.transfer`).
    unavailable : kinds of the same call that cannot be built for this dataset, and why
        (:class:`zslkit.errors.SideInfoUnavailable`; a kind that reads another one checks it here)
    """

    texts: list[str]
    tags: pd.DataFrame | None = None
    labels: np.ndarray | None = None
    train_rows: np.ndarray | None = None
    dataset_root: Path | None = None
    built: dict[str, SideInfo] = field(default_factory=dict)
    free_text: bool = False
    columns: dict[str, list[str]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

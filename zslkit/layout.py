"""Where things lie on disk: a dataset folder and a run folder, each owned by one class.

Every path a stage reads or writes is a property or method here, so a layout is changed in one
place and a reader finds the whole folder tree on one page. Both are plain value objects: making
one touches no disk.

Dataset folder (``run.data_dir / data.name``)::

    dataset.json  tracks.csv  tags.csv  annotations.npz
    mels/                      index.csv, errors.csv, shards/ (or <track_id>.npy), packs/
    features/<backbone>/       a frozen backbone's vectors: features.npz, meta.json, errors.csv (parts/ while computing)
    splits/<split>/            tag_split.json, track_split_trs<seed>.json (or _dataset), original/ (the .p files)
    splits/<split>/sideinfo/   <kind>.npz (one table per side-information kind and draw), or
                               <kind>.unavailable.json (the kind cannot be built for this dataset, and why)
    splits/<split>/leakage/    <backbone>.json: the unseen tags a frozen backbone was supervised on

Run folder (``run.reports_dir / run.name``)::

    params.yaml  env.json  results.csv  progress.json  index.html
    figures/  html/  NN_<stage>.ipynb
    train/<model>/             best.pt, last.pt, curves.csv (and launch.yaml for torchrun)
    embeddings/<model>.npz     track and tag embeddings of each model, umap_*.csv
    evaluation/                per-track and per-tag tables
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping


@dataclass(frozen=True)
class DatasetLayout:
    """The files of one dataset folder."""

    root: Path

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "DatasetLayout":
        """``run.data_dir / data.name`` of resolved parameters."""
        return cls(Path(params["run"]["data_dir"]) / params["data"]["name"])

    @classmethod
    def unlabelled(cls, params: Mapping[str, Any]) -> "DatasetLayout":
        """The real audio without labels that stage 01 prepares for ``train.adapt`` (``data.unlabelled``):
        ``run.data_dir / unlabelled``."""
        return cls(Path(params["run"]["data_dir"]) / "unlabelled")

    @classmethod
    def at(cls, root: str | os.PathLike) -> "DatasetLayout":
        return cls(Path(root))

    @property
    def meta(self) -> Path:
        return self.root / "dataset.json"

    @property
    def tracks(self) -> Path:
        return self.root / "tracks.csv"

    @property
    def tags(self) -> Path:
        return self.root / "tags.csv"

    @property
    def annotations(self) -> Path:
        return self.root / "annotations.npz"

    @property
    def mels(self) -> Path:
        return self.root / "mels"

    @property
    def packs(self) -> Path:
        """Training packs of the mels (:mod:`zslkit.data.melpack`)."""
        return self.mels / "packs"

    def features(self, backbone: str) -> Path:
        """The folder of a frozen backbone's cached vectors (:mod:`zslkit.data.features`); ``backbone`` is its key
        (``musicnn-MTT_musicnn-bn_dense``): one folder per encoder, variant and layer."""
        return self.root / "features" / backbone

    def split(self, name: str) -> Path:
        """The folder of tag split ``name``."""
        return self.root / "splits" / name

    def tag_split(self, name: str) -> Path:
        return self.split(name) / "tag_split.json"

    def track_split(self, name: str, track_seed: int, tracks: str = "random") -> Path:
        """The train/valid parts of tag split ``name``: one file per ``split.track_seed`` for a seeded cut,
        one file for the dataset's own parts (``split.tracks: dataset``), so either can be made beside the other."""
        part = "dataset" if tracks == "dataset" else f"trs{track_seed}"
        return self.split(name) / f"track_split_{part}.json"

    def original_split(self, name: str) -> Path:
        """The split in the original project's ``.p`` layout."""
        return self.split(name) / "original"

    def sideinfo(self, split: str, kind: str) -> Path:
        """The table of side-information ``kind`` (``random@1`` for a draw) for tag split ``split``."""
        return self.split(split) / "sideinfo" / f"{kind}.npz"

    def leakage(self, split: str, backbone: str) -> Path:
        """Stage 02's record of the unseen tags of tag split ``split`` that backbone ``backbone`` (its key) was
        supervised on (:mod:`zslkit.data.leakage`)."""
        return self.split(split) / "leakage" / f"{backbone}.json"

    def sideinfo_unavailable(self, split: str, kind: str) -> Path:
        """Stage 02's record that side-information ``kind`` cannot be built for this dataset (``reason``)."""
        return self.split(split) / "sideinfo" / f"{kind}.unavailable.json"


@dataclass(frozen=True)
class RunLayout:
    """The files of one run folder."""

    root: Path

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "RunLayout":
        """``run.reports_dir / run.name`` of resolved parameters."""
        return cls(Path(params["run"]["reports_dir"]) / params["run"]["name"])

    @classmethod
    def at(cls, root: str | os.PathLike) -> "RunLayout":
        return cls(Path(root))

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def params(self) -> Path:
        """The resolved parameters of the run."""
        return self.root / "params.yaml"

    @property
    def env(self) -> Path:
        return self.root / "env.json"

    @property
    def results(self) -> Path:
        return self.root / "results.csv"

    @property
    def progress(self) -> Path:
        return self.root / "progress.json"

    @property
    def index(self) -> Path:
        return self.root / "index.html"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    def figure(self, name: str, suffix: str = ".png") -> Path:
        return self.figures / f"{name}{suffix}"

    @property
    def html(self) -> Path:
        return self.root / "html"

    @property
    def real_check(self) -> Path:
        """The run folder of the run's real-recordings check (``run.real_check``), or its ``skipped.json``'s."""
        return self.root / "real"

    def train(self, model: str) -> Path:
        """The training folder of ``model`` (checkpoints, curves)."""
        return self.root / "train" / model

    def checkpoint(self, model: str) -> Path:
        """The checkpoint of ``model`` chosen by its validation loss."""
        return self.train(model) / "best.pt"

    @property
    def launch_params(self) -> Path:
        """The parameters handed to the processes of a ``torchrun`` launch."""
        return self.root / "train" / "launch.yaml"

    @property
    def embeddings_dir(self) -> Path:
        return self.root / "embeddings"

    def embeddings(self, model: str = "joint") -> Path:
        """Stage 04's embeddings of ``model``."""
        return self.embeddings_dir / f"{model}.npz"

    @property
    def evaluation(self) -> Path:
        return self.root / "evaluation"

"""Stage 01: build or import the dataset named in the params (registry ``DATASETS``), compute its log-mels, and,
when ``model.encoder`` is a frozen backbone, its features (:mod:`zslkit.data.features`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .. import config
from ..errors import DataError
from ..io import read_json, write_json
from ..layout import DatasetLayout
from ..registry import DATASETS
from . import audio, leakage, splits
from .datasets import Dataset
from .datasets.realmusic import import_unlabelled
from .features import BackboneSpec, compute_features, is_frozen
from .melstore import mel_statistics
from .preprocess import preprocess

#: the audio parameters a dataset's mels depend on (``Field(recorded_in="mels")``: recorded in dataset.json;
#: later runs must agree)
MEL_SETTINGS = config.keys("audio", recorded_in="mels")


def prepare_dataset(params: Mapping[str, Any]) -> tuple[Dataset, dict[str, Any]]:
    """Build or import the dataset with the importer ``data.source`` (cached and resumable).

    Returns the dataset and a report of what was left out or merged and why, also written to the
    dataset's ``build_report.json`` (:func:`report_table` lists it).
    """
    data = params["data"]
    entry = DATASETS[data["source"]]
    ds, report = entry.obj(DatasetLayout.from_params(params).root, data[entry.name], params["run"], data["name"])
    write_json(ds.root / "build_report.json", report)
    return ds, report


def check_set_packages(params: Mapping[str, Any]) -> list[str]:
    """The packages of the run's real-recordings check (``run.real_check``'s ``data.realmusic.packages``); empty
    without a check or when its target is not ``realmusic``."""
    path = params["run"].get("real_check")
    if not path:
        return []
    target = config.resolve(config.load_yaml(path), root=config.project_root(), source=str(path))
    return list(target["data"]["realmusic"]["packages"]) if target["data"]["source"] == "realmusic" else []


def unlabelled_audio(params: Mapping[str, Any]) -> Dataset | None:
    """Stage 01's real audio without labels for ``train.adapt``: the clips of ``data.unlabelled``'s packages
    (cut as ``data.realmusic`` says) imported into :meth:`DatasetLayout.unlabelled` with their log-mels, computed with
    the run's audio settings (resumable, as the dataset's). None when ``data.unlabelled`` is empty.

    Raises
    ------
    ParamError
        A package of the list is one of the real-recordings check's (the two stay package-disjoint), or unknown.
    DataError
        None of the packages is installed.
    """
    packages = list(params["data"]["unlabelled"])
    if not packages:
        return None
    rm = params["data"]["realmusic"]
    root = DatasetLayout.unlabelled(params).root
    ds, report = import_unlabelled(root, packages, rm["share_root"], rm["clips_per_track"], rm["clip_seconds"],
                                   exclude=check_set_packages(params), name=root.name)
    write_json(ds.root / "build_report.json", report)
    compute_mels(ds, params)
    return Dataset.load(ds.root)


#: lists of a build report that are not files of the dataset (m21's scores that music21 cannot parse)
NOT_FILES = ("failures",)


def report_table(report: Mapping[str, Any]) -> pd.DataFrame:
    """Every file or track a build report lists with its reason, one row each.

    Parameters
    ----------
    report : mapping
        An importer's report: lists of ``{"issue": ..., "track_id" and/or "path"}`` under keys such as
        ``left_out`` (missing, empty or unlisted files, untagged tracks) and ``merged`` (a copy not read
        beside the one that is), and scalars.

    Returns
    -------
    table : DataFrame ``list, track_id, path, issue`` (``list``: the report key; further keys as columns)
    """
    rows = [{"list": key, **entry} for key, value in report.items() if isinstance(value, list)
            and key not in NOT_FILES for entry in value if isinstance(entry, Mapping) and "issue" in entry]
    columns = ["list", "track_id", "path", "issue"]
    table = pd.DataFrame(rows, columns=columns + sorted({k for r in rows for k in r} - set(columns)))
    return table.fillna("")


def report_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """The rest of a build report beside :func:`report_table`: counts and scalars (a list of entries with
    an ``issue`` becomes its length; :data:`NOT_FILES` lists are left out, their counts stay)."""
    out = {}
    for key, value in report.items():
        if key in NOT_FILES:
            continue
        listed = isinstance(value, list) and value and all(isinstance(v, Mapping) and "issue" in v for v in value)
        out[key] = len(value) if listed else value
    return out


def compute_mels(ds: Dataset, params: Mapping[str, Any]) -> pd.DataFrame:
    """Log-mels for every track (skipping finished ones); records normalisation in dataset.json.

    Returns the per-track table of :func:`zslkit.data.preprocess.preprocess` (status, reason, frames), or,
    for the original project's mels, the table of missing ones.
    """
    a, run = params["audio"], params["run"]
    if ds.meta.get("mels") == "original":
        errors = pd.read_csv(ds.root / "mels" / "errors.csv", dtype=str, keep_default_na=False)
        paths = dict(zip(ds.tracks.track_id, ds.tracks.path))
        return pd.DataFrame({"track_id": errors.track_id, "path": errors.track_id.map(paths).fillna(""),
                             "status": "error", "reason": errors.reason, "n_frames": 0})
    spec = {k: a[k] for k in MEL_SETTINGS}
    if ds.meta.get("mel_spec", spec) != spec:
        changed = sorted(k for k in spec if ds.meta["mel_spec"].get(k) != spec[k])
        old = ds.meta["mel_spec"].get(changed[0])
        raise DataError(f"{ds.root}/mels were computed with audio.{changed[0]} = {old!r}, not {spec[changed[0]]!r}: "
                        f"delete {ds.root / 'mels'} or import under another data.name")
    if "mel_spec" not in ds.meta:
        ds.meta["mel_spec"] = spec
        write_json(ds.root / "dataset.json", ds.meta)
    tracks = [(t, str(ds.audio_path(t))) for t in ds.tracks.track_id]
    table = preprocess(tracks, ds.root / "mels", audio.MelSpec.from_params(a),
                       max_duration=a["max_duration"], min_duration=a["min_duration"],
                       workers=run["workers"], progress=run["progress"], windows=track_windows(ds),
                       layout=a["layout"], scheduler=a["scheduler"], shard_tracks=a["shard_tracks"])
    ds.__dict__.pop("mels", None)  # re-open the store with the new index
    if "normalisation" not in ds.meta or ds.meta["normalisation"].get("n_tracks") != len(ds.mels):
        mean, std = mel_statistics(ds.mels)
        ds.meta["normalisation"] = {"mean": mean, "std": std, "from": "all tracks of this dataset",
                                    "n_tracks": len(ds.mels)}
        write_json(ds.root / "dataset.json", ds.meta)
    return table


@dataclass
class BackboneFeatures:
    """What stage 01 computed for a frozen backbone (:func:`backbone_features`).

    Attributes
    ----------
    backbone : dict
        :meth:`zslkit.data.features.Backbone.describe`.
    folder : Path
        The cache (``<dataset>/features/<key>/``).
    table : DataFrame
        :func:`zslkit.data.features.compute_features`' per-track table (status, reason, seconds).
    seconds_per_clip, cpu_seconds_per_clip : float or None
        Decoding and embedding seconds (wall, and CPU) per clip in a worker, as measured when the features were
        computed (on a busy machine the wall time is the larger).
    warnings : list of str
        The dataset is (or overlaps) the backbone's training corpus (:func:`zslkit.data.leakage.corpus_warnings`).
    """

    backbone: dict[str, Any]
    folder: Path
    table: pd.DataFrame
    seconds_per_clip: float | None
    cpu_seconds_per_clip: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.backbone["key"]

    def summary(self) -> pd.DataFrame:
        """Tracks by status (``ok``: computed now, ``cached``, ``error``)."""
        return self.table.status.value_counts().rename("tracks").to_frame()

    def results_rows(self) -> list[dict]:
        """Stage 01's rows for ``results.csv`` (``model``: the backbone's key)."""
        common = {"model": self.key, "task": "features"}
        n_err = int((self.table.status == "error").sum())
        rows = [{**common, "metric": "n_tracks_with_features", "value": len(self.table) - n_err,
                 "n": len(self.table)},
                {**common, "metric": "n_feature_errors", "value": n_err},
                {**common, "metric": "feature_dim", "value": self.backbone["dim"]}]
        for metric in ("seconds_per_clip", "cpu_seconds_per_clip"):
            if getattr(self, metric) is not None:
                rows.append({**common, "metric": metric, "value": getattr(self, metric)})
        return rows + [{"model": self.key, "task": "leakage", "metric": "warning", "test_setting": w, "value": 1}
                       for w in self.warnings]


def backbone_features(ds: Dataset, params: Mapping[str, Any]) -> BackboneFeatures | None:
    """A frozen backbone's features of every track (``model.encoder``), computed once per dataset, backbone and
    layer, resumably (:func:`zslkit.data.features.compute_features`); None when the encoder is not frozen.

    Records the backbone in ``dataset.json`` (``features``), and warns when the dataset is, or overlaps, the
    backbone's training corpus (:attr:`BackboneFeatures.warnings`).

    Raises
    ------
    DataError
        No track's audio could be turned into features (a dataset of mels without audio, ``data.source: seed``
        without ``dir_audio``).
    """
    if not is_frozen(params["model"]["encoder"]):
        return None
    a, run = params["audio"], params["run"]
    spec = BackboneSpec.from_params(params)
    bb = spec.build()
    folder = DatasetLayout.at(ds.root).features(bb.key)
    table = compute_features([(t, str(ds.audio_path(t))) for t in ds.tracks.track_id], folder, spec,
                             max_duration=a["max_duration"], min_duration=a["min_duration"], workers=run["workers"],
                             progress=run["progress"], windows=track_windows(ds), scheduler=a["scheduler"])
    if len(table) and (table.status == "error").all():
        raise DataError(f"{ds.root}: no track's audio could be turned into {bb.key} features (first: "
                        f"{table.reason.iloc[0]}); a frozen backbone needs the audio files, not only mels")
    described = bb.describe()
    meta = json_of(folder / "meta.json")
    record = {k: described[k] for k in ("encoder", "params", "dim", "sample_rate")}
    record.update(n_tracks=int((table.status != "error").sum()), n_errors=int((table.status == "error").sum()),
                  seconds_per_clip=meta.get("seconds_per_clip"), cpu_seconds_per_clip=meta.get("cpu_seconds_per_clip"))
    if ds.meta.get("features", {}).get(bb.key) != record:
        ds.meta.setdefault("features", {})[bb.key] = record
        write_json(ds.root / "dataset.json", ds.meta)
    return BackboneFeatures(described, folder, table, meta.get("seconds_per_clip"), meta.get("cpu_seconds_per_clip"),
                            leakage.corpus_warnings(params, bb.supervised_on, bb.key))


def json_of(path: Path) -> dict[str, Any]:
    """A JSON file's mapping, or ``{}`` when it is not there."""
    return read_json(path) if path.is_file() else {}


def track_windows(ds: Dataset) -> dict[str, tuple[float, float]] | None:
    """``{track_id: (start, duration)}`` when ``tracks.csv`` has ``start`` and ``duration`` columns
    (importers of full-length tracks write them); None otherwise."""
    if not {"start", "duration"} <= set(ds.tracks.columns):
        return None
    start = pd.to_numeric(ds.tracks.start, errors="coerce").fillna(0.0)
    length = pd.to_numeric(ds.tracks.duration, errors="coerce")
    return {t: (float(s), None if np.isnan(d) else float(d))
            for t, s, d in zip(ds.tracks.track_id, start, length)}


def split_preview(ds: Dataset, split: Mapping[str, Any], n_seeds: int = 5) -> pd.DataFrame:
    """A/B/C counts and shares the default tag split would give, for ``n_seeds`` split seeds."""
    labels = ds.label_matrix()
    rows = []
    for seed in range(split["seed"], split["seed"] + n_seeds):
        seen, unseen = splits.split_tags(ds.tags, split["ratio"], seed, split["stratify"])
        rows.append({"split_seed": seed, "X": len(seen), "Y": len(unseen),
                     **splits.subset_shares(labels, ds.tag_texts, unseen)})
    return pd.DataFrame(rows)


def results_rows(ds: Dataset, mel_table: pd.DataFrame, preview: pd.DataFrame,
                 features: BackboneFeatures | None = None) -> list[dict]:
    """Stage 01's numbers for ``results.csv`` (with ``features``, a frozen backbone's:
    :meth:`BackboneFeatures.results_rows`)."""
    counts = np.asarray(ds.annotations.sum(axis=0)).ravel()
    n_err = int((mel_table.status == "error").sum()) if len(mel_table) else 0
    rows = [{"metric": "n_tracks", "value": ds.n_tracks}, {"metric": "n_tags", "value": ds.n_tags},
            {"metric": "n_labels", "value": int(ds.annotations.nnz)},
            {"metric": "min_tag_count", "value": int(counts.min()) if len(counts) else 0},
            {"metric": "n_mel_errors", "value": n_err, "n": len(mel_table)}]
    for _, r in preview.iterrows():  # one row per candidate split seed, no pooling
        for k in "ABC":
            rows.append({"test_setting": f"tag split seed {int(r.split_seed)}", "metric": f"share_{k}",
                         "value": float(r[f"share_{k}"]), "n": int(r[k])})
    return rows + (features.results_rows() if features is not None else [])

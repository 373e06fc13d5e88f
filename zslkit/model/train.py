"""Stage 03: train every model the run needs.

- ``joint``: the joint embedding model on ``model.sideinfo`` (audio encoder + the learned tag
  branch), into ``train/joint/``;
- ``joint-<kind>`` for each kind in ``train.also``: the same joint model on other side
  information, to compare kinds in one run;
- ``classifier``: the supervised classifier on the seen tags when ``train.baseline`` is true, into
  ``train/classifier/``;
- one control per kind in ``train.controls`` (e.g. ``random``): the same joint model and training
  on that side information, into ``train/joint-<kind>/``; a control with several draws
  (``sideinfo.random.draws``) trains once per draw, into ``train/joint-<kind>@<d>/``.

Every model trains on the setting's training tracks (A, B or A+B train) with seen tags only, and
its validation loss picks its checkpoint. Nothing here evaluates: stage 04 embeds the trained
models and stage 05 scores them.

With ``train.nproc`` > 1 the models train in that many processes on this node (``torchrun``,
:mod:`zslkit.model.distributed`), started from here; the notebook then reads what they wrote. The same
entry point runs under a ``torchrun`` started by hand, on one node or several::

    torchrun --nproc-per-node 4 -m zslkit.model.train reports/<run>/params.yaml
    zslkit train params/msd_glove.yaml --nproc 4
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .. import config
from ..data.datasets import Dataset
from ..data.sideinfo import load_table
from ..data.splits import Split
from ..errors import DataError, ZslkitError
from ..io import write_text
from ..layout import RunLayout
from ..plan import RunPlan, train_setting_name
from . import distributed
from .frozen import backbone_spec, check_encoder, dataset_features
from .networks import count_parameters
from .trainer import Trainer


def seen_vectors(ds, split, kind: str) -> np.ndarray:
    """Side-information rows of the seen tags, in ``split.seen`` order."""
    table = load_table(ds, split.name, kind)
    row = {t: i for i, t in enumerate(table.tags)}
    missing = [t for t in split.seen if t not in row]
    if missing:
        raise DataError(f"side information {kind!r} has no row for seen tag {missing[0]!r}")
    return table.vectors[[row[t] for t in split.seen]]


def empty_part_message(split, setting: str, part: str, split_params: Mapping[str, Any]) -> str:
    """Why a training setting has no ``part`` ("train" or "valid") tracks, and which setting to change.

    Parameters
    ----------
    split : Split
    setting : str
        ``train.setting`` (``"A"``, ``"B"`` or ``"AB"``).
    part : str
        ``"train"`` or ``"valid"``.
    split_params : mapping
        The resolved ``split`` section.
    """
    whole = split.track_set("A+B" if setting == "AB" else setting)
    n, ratio = len(whole), split_params["train_ratio"]
    msg = (f"setting {train_setting_name(setting)}: no {part} tracks in split {split.name!r} "
           f"({n} track(s) in {'A+B' if setting == 'AB' else setting})")
    if split_params["tracks"] == "dataset":
        msg += (f"; split.tracks is 'dataset' and the dataset's own split puts none of them in {part}: "
                "use split.tracks: random")
    elif n < 2:
        msg += "; a setting needs at least 2 tracks, one to train and one to validate"
    else:
        works = [r / 100 for r in range(5, 100) if 1 <= math.floor(r / 100 * n) <= n - 1]
        msg += (f"; split.train_ratio {ratio} puts floor({ratio} x {n}) = {math.floor(ratio * n)} of them in training: "
                f"use split.train_ratio between {works[0]} and {works[-1]}")
    usable = [s for s in ("A", "B", "AB") if s != setting and split.train_tracks(s) and split.valid_tracks(s)]
    if usable:
        msg += f", or train.setting {' or '.join(repr(s) for s in usable)} (it has train and valid tracks)"
    return msg


def train_stage(ds, split, params: Mapping[str, Any], run_dir: str | os.PathLike,
                progress: bool = True) -> dict[str, Any]:
    """Stage 03: train (or resume) every model of the run's plan; keep the best checkpoints.

    Parameters
    ----------
    ds : Dataset
    split : Split
    params : mapping
        Resolved parameters.
    run_dir : path
        The run folder; model ``m`` trains into ``train/<m>/``.
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        ``{model name: {"trainer", "curves", "label"}}`` in the plan's order.
    """
    plan, layout = RunPlan.of_run(params), RunLayout.at(run_dir)  # less what stage 02 could not build
    for part, tracks in (("train", split.train_tracks(plan.setting)), ("valid", split.valid_tracks(plan.setting))):
        if not tracks:
            raise DataError(empty_part_message(split, plan.setting, part, params["split"]))
    missing = [k for k in plan.sideinfo_kinds() if k not in params["sideinfo"]["kinds"]]
    if missing:
        raise DataError(f"side information {missing[0]!r} is trained on but not built: add it to sideinfo.kinds "
                        "and rerun notebook 02")
    if check_encoder(params):  # a frozen backbone: stage 01 cached its features; computed here if it did not
        dataset_features(ds, backbone_spec(params), params, compute=True, progress=progress)
    launched = params["train"]["nproc"] > 1 and not distributed.context().active
    if launched:  # the processes train and write the checkpoints; this one reads them back
        write_text(layout.launch_params, config.dump(params))
        distributed.launch(layout.launch_params, run_dir, params["train"]["nproc"], params["train"]["device"])
    out = {}
    for m in plan:
        vectors = seen_vectors(ds, split, m.sideinfo) if m.is_joint else None
        trainer = Trainer(ds, split, vectors, params, layout.train(m.name), m.seed, m.kind, m.sideinfo)
        if launched:
            trainer.load_last()
            curves = trainer.curves()
        else:
            curves = trainer.fit(progress=progress)
        out[m.name] = {"trainer": trainer, "curves": curves, "label": m.label}
    return out


def results_rows(result: Mapping[str, Any], setting: str, plan: RunPlan | None = None) -> list[dict]:
    """Stage 03's numbers for ``results.csv``: how each model trained (``setting``: ``train.setting``); with
    the run's ``plan``, a row ``metric = "skipped"`` per model it left out, the reason in ``test_setting``."""
    rows = [{"model": m.label, "train_setting": train_setting_name(setting), "test_setting": why,
             "task": "training", "metric": "skipped"} for m, why in (plan.left_out if plan else ())]
    for r in result.values():
        tr, c = r["trainer"], r["curves"]
        common = {"model": r["label"], "train_setting": train_setting_name(setting), "task": "training"}
        rows += [{**common, "metric": "parameters", "value": count_parameters(tr.net)},
                 {**common, "metric": "batch_size", "value": tr.batch_size},
                 {**common, "metric": "epochs", "value": len(c)},
                 {**common, "metric": "best_epoch", "value": tr.state["best_epoch"]},
                 {**common, "metric": "best_valid_loss", "value": tr.state["best"]},
                 {**common, "metric": "seconds_per_epoch", "value": float(c.seconds.mean()) if len(c) else np.nan},
                 {**common, "metric": "data_wait_share", "value": float(c.data_wait.mean()) if len(c) else np.nan}]
    return rows


def adaptations(result: Mapping[str, Any], plan: RunPlan | None = None) -> list[str]:
    """What stage 03 adapted to the data, one sentence each: the models of ``plan`` left out (side information
    stage 02 could not build), a batch fitted to few tracks."""
    out = plan.notes() if plan else []
    for name, r in result.items():
        tr = r["trainer"]
        if tr.batch_size < tr.p["batch_size"]:
            out.append(f"{name}: train.batch_size {tr.p['batch_size']} is more than the setting's "
                       f"{len(tr.train_set)} training tracks: batches of {tr.batch_size}, the largest they fill")
    return out


def curves_table(result: Mapping[str, Any]) -> pd.DataFrame:
    """Every model's learning curve in one long table (``model`` column)."""
    return pd.concat([r["curves"].assign(model=name) for name, r in result.items()], ignore_index=True)


def last_epochs(curves: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The last ``n`` rows of a learning curve for display: losses to 4 decimals, the learning rate in
    scientific notation (a decayed rate of 8e-6 would otherwise print as 0.0)."""
    out = curves.tail(n).round(4)
    if "lr" in curves:
        out["lr"] = curves.lr.tail(n).map("{:.2e}".format)
    return out.set_index("epoch") if "epoch" in out else out


def train_from_file(params_file: str | os.PathLike, run_dir: str | os.PathLike | None = None,
                    nproc: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Stage 03 of the run a parameter file describes (its dataset and split must exist: stages 01-02).

    ``nproc`` overrides ``train.nproc``. Returns what :func:`train_stage` returns."""
    params = config.load(params_file)
    if nproc is not None:
        params["train"]["nproc"] = nproc
    ds = Dataset.of_run(params)
    split = Split.of_run(ds.root, params)
    return train_stage(ds, split, params, run_dir or RunLayout.from_params(params).root, progress=progress)


def main(argv: list[str] | None = None) -> int:
    """``python -m zslkit.model.train PARAMS [--run-dir DIR]``: stage 03, in every process ``torchrun`` starts."""
    ap = argparse.ArgumentParser(prog="python -m zslkit.model.train", description=main.__doc__)
    ap.add_argument("params", help="YAML parameter file (a run's params.yaml, or yours)")
    ap.add_argument("--run-dir", help="the run folder (default: run.reports_dir / run.name)")
    args = ap.parse_args(argv)
    try:
        train_from_file(args.params, args.run_dir, progress=distributed.context().main)
    except ZslkitError as exc:
        print(f"zslkit.model.train (rank {distributed.context().rank}): error: {exc}", file=sys.stderr)
        return 1
    finally:
        distributed.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())

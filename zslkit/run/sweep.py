"""Sweeps: a grid of runs from one base parameter file, and the comparison of runs.

A sweep file is YAML::

    name: sweep-demo                  # prefix of every run name; the summary goes to reports/<name>/
    base: params/demo.yaml            # the parameters every run starts from
    stages: "01-05"                   # notebooks each run executes (06 runs once, on the sweep)
    grid:                             # every combination is one run
      model.sideinfo: [glove, sentence, attributes, random]
      train.setting: [A, B, AB]
      train.seed: [0, 1, 2]
      split: [{name: s0, seed: 0}, {name: s1, seed: 1}]   # a mapping is merged into its section

Run names join the values of the keys that vary (``sweep-demo-glove-A-0-s0``; a list value by its
items, ``train.augment: [[], [specaugment, mixup]]`` gives ``none`` and ``specaugment_mixup``); a key with one
value is a plain override. A grid of single values is one run, a variant of the base named like the
sweep, in ``reports/<name>/``, with no comparison (``params/probe_insegment.yaml``). A sweep resumes:
a run whose stages all have rows in its ``results.csv`` is skipped, a partial one restarts at its
first missing stage (training resumes from its last checkpoint). A run whose parameters set ``run.real_check``
is then scored on real recordings too (:func:`zslkit.run.runner.real_check`), once. Runs are headless: no
explorer widget (``embed.widget: false``) and, unless the sweep sets ``embed.interactive``, no interactive maps.
"""
from __future__ import annotations

import copy
import fnmatch
import itertools
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from .. import config
from ..errors import ParamError, RunError
from ..io import write_csv, write_text
from ..layout import RunLayout
from ..show.style import model_colour, model_hatch
from . import runner
from .report import read_results

STAGE_NAMES = {"01": "01_preprocess", "02": "02_splits", "03": "03_train", "04": "04_embeddings",
               "05": "05_evaluate"}


def load_sweep(path: str | os.PathLike, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Read and check a sweep file; errors name the file and the key."""
    path = Path(path)
    data = config.load_yaml(path)
    root = Path(root or config.project_root())
    unknown = set(data) - {"name", "base", "stages", "grid"}
    if unknown:
        raise ParamError(f"{path}: unknown key {sorted(unknown)[0]!r}; known: name, base, stages, grid")
    for key in ("name", "base", "grid"):
        if key not in data:
            raise ParamError(f"{path}: missing key {key!r}")
    if not isinstance(data["grid"], Mapping) or not data["grid"]:
        raise ParamError(f"{path}: grid must be a non-empty mapping of 'section.key' -> list of values")
    for key, values in data["grid"].items():
        if not isinstance(values, list) or not values:
            raise ParamError(f"{path}: grid.{key} must be a non-empty list, got {values!r}")
        section = key.split(".")[0]
        if section not in config.schema():
            raise ParamError(f"{path}: grid.{key}: unknown section {section!r}")
    base = Path(data["base"])
    base = base if base.is_absolute() else root / base
    first, _, last = str(data.get("stages", "01-05")).partition("-")
    stages = [s for s in STAGE_NAMES if first.zfill(2) <= s <= (last or first).zfill(2)]
    if not stages:
        raise ParamError(f"{path}: stages {data.get('stages')!r} selects no notebook of 01-05")
    return {"name": str(data["name"]), "base": base, "stages": stages, "grid": dict(data["grid"]),
            "file": path}


def _label(value) -> str:
    """A grid value in a run name: a mapping by its ``name`` (else its values), a list by its items joined
    with ``_`` (``[specaugment, {name: mixup, p: 0.5}]`` -> ``specaugment_mixup``; ``[]`` -> ``none``)."""
    if isinstance(value, Mapping):
        return str(value.get("name", "-".join(_label(v) for v in value.values())))
    if isinstance(value, (list, tuple)):
        return "_".join(_label(v) for v in value) or "none"
    return str(value)


def expand(sweep: Mapping[str, Any], root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Every combination of the grid: ``[{"name", "params" (resolved), "combo", "values" (the grid values)}]``; two
    combinations of one run name are refused."""
    base = config.load_yaml(sweep["base"])
    keys = list(sweep["grid"])
    out = []
    for values in itertools.product(*(sweep["grid"][k] for k in keys)):
        raw = copy.deepcopy(base)
        for key, value in zip(keys, values):
            section, _, field = key.partition(".")
            raw.setdefault(section, {})
            raw[section] = raw[section] or {}
            if field:
                raw[section][field] = value
            elif isinstance(value, Mapping):
                raw[section].update(value)
            else:
                raise ParamError(f"{sweep['file']}: grid.{key} names a section, so its values must be mappings")
        varied = [_label(v) for k, v in zip(keys, values) if len(sweep["grid"][k]) > 1]
        name = "-".join([sweep["name"], *varied])
        raw.setdefault("run", {})["name"] = name
        raw["run"]["progress"] = False
        raw.setdefault("embed", {})["widget"] = False
        raw["embed"].setdefault("interactive", False)  # per-run maps only when the sweep asks for them
        params = config.resolve(raw, root=root, source=str(sweep["file"]))
        twin = next((r for r in out if r["name"] == name), None)
        if twin is not None:  # two grid values with one label (two mixups of other p): their runs would collide
            raise ParamError(f"{sweep['file']}: grid values {twin['values']} and {list(values)} both give the run name "
                             f"{name!r}; give the values distinct names")
        out.append({"name": name, "params": params, "combo": dict(zip(keys, map(_label, values))),
                    "values": list(values)})
    return out


def done_stages(run_dir: Path) -> set[str]:
    """Stages with rows in the run's ``results.csv``."""
    if not (run_dir / "results.csv").is_file():
        return set()
    return set(read_results(run_dir).stage.dropna())


def run_sweep(path: str | os.PathLike, root: str | os.PathLike | None = None, dry_run: bool = False,
              log=print) -> Path:
    """Run (or resume) every run of a sweep, then notebook 06 on all of them into
    ``reports/<name>/``. Returns that folder."""
    root = Path(root or config.project_root())
    sweep = load_sweep(path, root)
    runs = expand(sweep, root)
    reports = Path(runs[0]["params"]["run"]["reports_dir"])
    folder = reports / sweep["name"]
    log(f"[zslkit] sweep {sweep['name']}: {len(runs)} runs, stages {', '.join(sweep['stages'])}")
    for i, r in enumerate(runs, 1):
        params_file = folder / "params" / f"{r['name']}.yaml"
        text = config.dump(r["params"])
        if params_file.is_file() and params_file.read_text() != text:
            raise RunError(f"{params_file} differs from what {sweep['file']} now gives; use a new sweep name")
        run_dir = reports / r["name"]
        have = done_stages(run_dir)
        todo = [s for s in sweep["stages"] if STAGE_NAMES[s] not in have]
        if todo:
            log(f"[zslkit] {i}/{len(runs)} {r['name']}: stages {', '.join(todo)}")
        else:
            log(f"[zslkit] {i}/{len(runs)} {r['name']}: done, skipped")
        if dry_run:
            continue
        if todo:
            write_text(params_file, text)
            started = run_dir.exists() and any(run_dir.iterdir())
            runner.run(params_file, only=todo, force=started, root=root, log=log)
        checked = RunLayout.at(RunLayout.at(run_dir).real_check).results.is_file()
        if r["params"]["run"].get("real_check") and "05_evaluate" in done_stages(run_dir) and not checked:
            runner.real_check(RunLayout.at(run_dir), r["params"], root, log)  # each run on real recordings too
    if dry_run:
        return folder
    if [r["name"] for r in runs] == [sweep["name"]]:  # a grid of single values: one run, in the sweep's folder
        log(f"[zslkit] sweep {sweep['name']}: one run, so no comparison; its report is {folder}")
        return folder
    (folder / "params").mkdir(parents=True, exist_ok=True)
    base = config.load_yaml(sweep["base"])
    base["run"] = {**(base.get("run") or {}), "name": sweep["name"], "progress": False}
    base["compare"] = {**(base.get("compare") or {}), "runs": [r["name"] for r in runs]}
    compare_file = folder / "params" / "_compare.yaml"
    write_text(compare_file, config.dump(config.resolve(base, root=root)))
    runner.run(compare_file, only=["06"], force=True, root=root, log=log)
    return folder


# ----------------------------------------------------------------------------- comparing runs

def find_runs(reports_dir: str | os.PathLike, patterns: Sequence[str] = ()) -> list[Path]:
    """Run folders under ``reports_dir`` matching ``patterns`` (all when empty, lab folders ``*-lab`` only
    when a pattern names them) that have stage-05 results, in name order."""
    reports_dir = Path(reports_dir)
    found = []
    for p in sorted(reports_dir.iterdir()) if reports_dir.is_dir() else []:
        wanted = any(fnmatch.fnmatch(p.name, pat) for pat in patterns) if patterns else not p.name.endswith("-lab")
        if p.is_dir() and wanted:
            if "05_evaluate" in done_stages(p):
                found.append(p)
    return found


GRID_COLUMNS = {"dataset": ("data", "name"), "sideinfo": ("model", "sideinfo"),
                "setting": ("train", "setting"),
                "seed": ("train", "seed"), "split": ("split", "name"), "encoder": ("model", "encoder"),
                "loss": ("train", "loss")}


def collect(run_dirs: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Every run's stage-05 rows with its name and the parameters that tell runs apart."""
    frames = []
    for d in map(Path, run_dirs):
        r = read_results(d)
        r = r[r.stage == "05_evaluate"].copy()
        p = yaml.safe_load((d / "params.yaml").read_text())
        r.insert(0, "run", d.name)
        for col, (section, key) in GRID_COLUMNS.items():
            value = p.get(section, {}).get(key)
            if col == "seed" and value is None:
                value = p["run"]["seed"]
            r[col] = value
        frames.append(r)
    if not frames:
        raise RunError("no runs with stage-05 results to compare")
    return pd.concat(frames, ignore_index=True)


def summarise_runs(table: pd.DataFrame, metrics: Sequence[str], tests: Sequence[str],
                   labels: str = "annotation") -> pd.DataFrame:
    """Mean and spread over seeds and over splits, separately, for every model and setting.

    ``sd seeds`` is the standard deviation over seeds within a split, averaged over splits;
    ``sd splits`` is the standard deviation over splits of the per-split means over seeds.
    """
    t = table[table.metric.isin(metrics) & table.test_setting.isin(tests) & (table.labels == labels)]
    keys = ["dataset", "model", "encoder", "loss", "train_setting", "test_setting", "metric"]
    keys = [k for k in keys if k in t and t[k].notna().any()]
    per_split = t.groupby(keys + ["split"], dropna=False).value.agg(["mean", "std", "count"]).reset_index()
    out = per_split.groupby(keys, dropna=False).agg(
        mean=("mean", "mean"), sd_seeds=("std", "mean"), sd_splits=("mean", "std"),
        seeds=("count", "max"), splits=("split", "nunique")).reset_index()
    return out


def wide(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per model and setting, one column per metric: 'mean ± sd seeds (± sd splits)'."""
    def fmt(r):
        s = f"{r['mean']:.3f}"
        if pd.notna(r.sd_seeds):
            s += f" ± {r.sd_seeds:.3f}"
        if pd.notna(r.sd_splits):
            s += f" (± {r.sd_splits:.3f})"
        return s
    s = summary.assign(cell=summary.apply(fmt, axis=1))
    index = [c for c in s.columns if c not in ("metric", "mean", "sd_seeds", "sd_splits", "seeds", "splits", "cell")]
    return s.pivot_table(index=index, columns="metric", values="cell", aggfunc="first").reset_index()


def write_summary(folder: str | os.PathLike, table: pd.DataFrame, summary: pd.DataFrame) -> None:
    write_csv(Path(folder) / "sweep_results.csv", table)
    write_csv(Path(folder) / "sweep_summary.csv", summary)


def bars(summary: pd.DataFrame, metric: str, test: str):
    """Grouped bars of ``metric`` on ``test`` by model and training setting; error bars = sd over
    seeds (black) and over splits (grey)."""
    import matplotlib.pyplot as plt
    # one bar series per model, told apart by dataset, encoder or loss when the runs differ in them; a series
    # keeps its colour in every plot made from the same summary
    extra = [k for k in ("dataset", "encoder", "loss") if k in summary and summary[k].nunique() > 1]
    named = summary.assign(series=[" · ".join([r["model"]] + [str(r[k]) for k in extra])
                                   for _, r in summary.iterrows()])
    # one colour per model, the same as on every other page (zslkit.show.style); a head's bars hatched, and a
    # model met again under another dataset, encoder or loss hatched once more
    colour, hatch, met = {}, {}, {}
    for series, model in dict.fromkeys(zip(named.series, named.model)):
        colour[series] = model_colour(model)
        k = met[model] = met.get(model, -1) + 1
        hatch[series] = model_hatch(model) + ("", "oo", "**", "++", "||")[k % 5]
    s = named[(named.metric == metric) & (named.test_setting == test)]
    settings = list(dict.fromkeys(s.train_setting))
    models = list(dict.fromkeys(s.series))
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(settings) * max(1, len(models)) / 2), 3.4))
    width = 0.8 / max(len(models), 1)
    for j, m in enumerate(models):
        sub = s[s.series == m].set_index("train_setting").reindex(settings)
        x = np.arange(len(settings)) + (j - (len(models) - 1) / 2) * width
        ax.bar(x, sub["mean"], width, label=m, color=colour[m], hatch=hatch[m] or None, edgecolor="white",
               linewidth=0.4)
        ax.errorbar(x - width / 6, sub["mean"], yerr=sub.sd_seeds.fillna(0), fmt="none", ecolor="k", capsize=2)
        ax.errorbar(x + width / 6, sub["mean"], yerr=sub.sd_splits.fillna(0), fmt="none", ecolor="0.55", capsize=2)
    ax.axhline(0.5 if metric.startswith("AUC") else 0, color="0.5", ls="--", lw=0.8)
    ax.set_xticks(range(len(settings)), settings)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} on {test} (black: sd over seeds, grey: over splits)", fontsize=9)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
    fig.tight_layout()
    return fig

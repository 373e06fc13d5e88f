"""The run folder ``reports/<run>/``: params, environment, the tidy ``results.csv``, figures.

``results.csv`` holds every number a run produces, one row per value, with the columns
:data:`RESULT_COLUMNS` (empty where a column does not apply). Each stage replaces its own rows when
it runs again, so a rerun never duplicates numbers.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from .. import config
from ..io import atomic_path, write_csv, write_json, write_text
from ..layout import RunLayout

RESULT_COLUMNS = ["stage", "model", "train_setting", "test_setting", "task", "labels", "metric", "value",
                  "ci_low", "ci_high", "n", "n_excluded"]
PACKAGES = ["zslkit", "numpy", "scipy", "pandas", "torch", "librosa", "soundfile", "scikit-learn",
            "umap-learn", "matplotlib", "papermill", "nbconvert", "music21", "pretty_midi",
            "tinysoundfont", "pedalboard", "pyloudnorm", "sentence-transformers"]


def prepare_run_dir(params: Mapping[str, Any]) -> Path:
    """Create the run folder; write ``params.yaml`` and ``env.json`` if they are not there yet.

    The runner writes both before the first notebook; a notebook run alone writes them here.
    """
    layout = RunLayout.from_params(params)
    layout.figures.mkdir(parents=True, exist_ok=True)
    if not layout.params.is_file():
        write_text(layout.params, config.dump(params))
    if not layout.env.is_file():
        write_json(layout.env, environment())
    return layout.root


def shown_path(path: str | os.PathLike, base: str | os.PathLike | None = None) -> str:
    """``path`` as a report shows it: relative to ``base`` (e.g. the run folder) or to the project
    root, never absolute, so a page reads the same on every machine.

    A path outside both is shown from its parent folder (``tmpdir/run/x.npz`` -> ``run/x.npz``) when
    ``base`` is given, else by its name.
    """
    path = Path(path).resolve()
    bases = [Path(base).resolve()] if base is not None else []
    for b in bases + [config.project_root()]:
        if path.is_relative_to(b):
            return path.relative_to(b).as_posix() or "."
    if bases and path.is_relative_to(bases[0].parent):
        return path.relative_to(bases[0].parent).as_posix()
    return path.name


def environment() -> dict[str, Any]:
    """Python and package versions, git revision, CPU and GPU of this machine."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "python": sys.version.split()[0],
            "platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "gpu": _gpu(), "git": git_revision(),
            "packages": versions}


def git_revision(root: str | os.PathLike | None = None) -> dict[str, Any] | None:
    root = root or config.project_root()
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"revision": rev, "dirty": bool(dirty)}


def _gpu() -> dict[str, Any] | None:
    try:
        import torch  # only for the CUDA state: the runner process need not load torch otherwise
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return {"cuda": False}
    return {"cuda": True, "name": torch.cuda.get_device_name(0), "torch_cuda": torch.version.cuda}


def record(folder: str | os.PathLike, stage: str, rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Replace ``stage``'s rows of ``results.csv`` with ``rows``; return the whole table."""
    path = RunLayout.at(folder).results
    new = pd.DataFrame([{**{c: None for c in RESULT_COLUMNS}, **row, "stage": stage} for row in rows],
                       columns=RESULT_COLUMNS)
    unknown = {k for row in rows for k in row} - set(RESULT_COLUMNS)
    if unknown:
        raise ValueError(f"results.csv has no column {sorted(unknown)[0]!r}")
    old = read_results(folder) if path.is_file() else pd.DataFrame(columns=RESULT_COLUMNS)
    table = pd.concat([old[old.stage != stage], new], ignore_index=True) if len(old) else new
    write_csv(path, table)
    return table


TEXT_COLUMNS = ("stage", "model", "train_setting", "test_setting", "task", "labels", "metric")


def read_results(folder: str | os.PathLike) -> pd.DataFrame:
    """``results.csv`` with its text columns kept as text (a stage '01' stays '01')."""
    return pd.read_csv(RunLayout.at(folder).results, dtype={c: str for c in TEXT_COLUMNS})


def save_figure(fig, folder: str | os.PathLike, name: str, dpi: int = 110) -> None:
    """Save a matplotlib figure as ``figures/<name>.png`` in the run folder.

    Returns nothing, so that a notebook cell ending with it shows the figure and no path."""
    path = RunLayout.at(folder).figure(name)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")


def stamp(folder: str | os.PathLike) -> str:
    """Where a run's numbers come from: its params file, git revision (dirty or clean) and time,
    from ``env.json``, for quoting results outside the run folder."""
    env = json.loads(RunLayout.at(folder).env.read_text(encoding="utf-8"))
    git = env.get("git") or {}
    rev = f"{git.get('revision', 'unknown')[:7]}{' (uncommitted changes)' if git.get('dirty') else ''}"
    params = Path(env["params_file"]).name if env.get("params_file") else "params.yaml"
    return f"run `{Path(folder).name}`, `params/{params}`, revision {rev}, {env.get('time', '')}"


def markdown_table(results: pd.DataFrame, index: str, columns: str, digits: int = 3) -> str:
    """A pivot of ``results.csv`` rows as a markdown table: ``value [ci_low, ci_high]`` per cell."""
    def cell(r) -> str:
        if pd.isna(r.value):
            return ""
        low, high = getattr(r, "ci_low", float("nan")), getattr(r, "ci_high", float("nan"))
        ci = "" if pd.isna(low) else f" [{low:.{digits}f}, {high:.{digits}f}]"
        return f"{r.value:.{digits}f}{ci}"

    table = results.assign(cell=[cell(r) for r in results.itertuples()])
    wide = table.pivot_table(index=index, columns=columns, values="cell", aggfunc="first", sort=False).fillna("")
    head = f"| {index} | " + " | ".join(map(str, wide.columns)) + " |"
    rule = "|---" * (len(wide.columns) + 1) + "|"
    return "\n".join([head, rule] + [f"| {i} | " + " | ".join(row) + " |" for i, row in zip(wide.index, wide.values)])

"""Run the numbered notebooks with papermill into ``reports/<run>/``.

A run folder holds the resolved ``params.yaml``, ``env.json``, each executed notebook, an HTML
export of each with inputs hidden (``html/``), ``index.html`` linking them, ``results.csv`` and
``figures/``. An existing run folder is never overwritten without ``force``; with ``start``/``only``
and ``force`` only the named stages run again, and only if the parameters are unchanged. A run that
was interrupted (killed, out of memory, a lost machine) is resumed by the same command: ``progress.json``
records the stages it started and finished, and the first unfinished stage runs again (stage 01 skips
the mels already written, stage 03 resumes each model from its last epoch).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from .. import config
from ..errors import RunError
from ..io import write_json, write_text
from ..layout import RunLayout
from ..show.report_page import offline_html, offline_notebook, write_index
from .report import environment

#: the stages of each pipeline: a run (01-06) and a transfer (the target's 01, then 07)
PIPELINES = {"run": ("01", "02", "03", "04", "05", "06"), "transfer": ("01", "07")}


def changed_parameters(old: Mapping[str, Any], new: Mapping[str, Any],
                       new_keys: bool = True) -> dict[str, tuple[Any, Any, str]]:
    """``{"section.key": (old value, new value, first stage reading it)}`` for every key that differs and
    that a number depends on (the schema says which and where: :func:`zslkit.config.stage_of`,
    :func:`zslkit.config.is_neutral`).

    ``new_keys=False`` skips keys that ``old`` lacks (a run made before the key existed ran with its default)."""
    known = config.fields()
    out = {}
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section) or {}, new.get(section) or {}
        for key in sorted(set(a) | set(b)):
            name = f"{section}.{key}"
            if not new_keys and key not in a:
                continue
            if a.get(key) != b.get(key) and not config.is_neutral(name, known):
                out[name] = (a.get(key), b.get(key), config.stage_of(name, known))
    return out


#: a run folder's record of the stages a command started and those it finished
PROGRESS = "progress.json"


def unfinished(progress: Path, stages: Sequence[str], changed: Mapping[str, Any]) -> list[str] | None:
    """The stages still to run when ``progress`` shows that the same command (same ``stages``, no parameter
    ``changed``) was interrupted; None when there is nothing to resume."""
    if not progress.is_file() or changed:
        return None
    record = json.loads(progress.read_text(encoding="utf-8"))
    if record.get("stages") != list(stages):
        return None
    left = [n for n in stages if n not in record.get("done", [])]
    return left or None


def notebooks(root: str | os.PathLike | None = None, pipeline: str = "run") -> list[Path]:
    """The numbered notebooks ``notebooks/NN_*.ipynb`` of a pipeline (:data:`PIPELINES`), in order."""
    folder = Path(root or config.project_root()) / "notebooks"
    found = sorted(p for p in folder.glob("*.ipynb") if re.match(r"^\d\d_", p.name)
                   and p.name[:2] in PIPELINES[pipeline])
    if not found:
        raise RunError(f"{folder}: no numbered notebooks found")
    return found


def select(paths: Sequence[Path], start: str | None = None, only: Sequence[str] | None = None) -> list[Path]:
    """Notebooks from stage ``start`` on, or exactly the stages in ``only`` (two-digit numbers)."""
    numbers = {p.name[:2]: p for p in paths}
    for n in ([start] if start else []) + list(only or []):
        if n.zfill(2) not in numbers:
            raise RunError(f"no notebook numbered {n!r}; have {', '.join(numbers)}")
    if only:
        wanted = {n.zfill(2) for n in only}
        return [p for p in paths if p.name[:2] in wanted]
    if start:
        return [p for p in paths if p.name[:2] >= start.zfill(2)]
    return list(paths)


def run(params_path: str | os.PathLike, start: str | None = None, only: Sequence[str] | None = None,
        force: bool = False, root: str | os.PathLike | None = None, log=print,
        overrides: Mapping[str, Mapping[str, Any]] | None = None, pipeline: str = "run") -> Path:
    """Execute the selected notebooks; return the run folder.

    Raises
    ------
    RunError
        The run folder exists without ``force``; parameters changed for a partial rerun; or a
        notebook failed (the message names the notebook and the cell; the executed notebook is kept).
    """
    import papermill as pm

    root = Path(root or config.project_root())
    raw = config.load_yaml(params_path)
    for section, values in (overrides or {}).items():  # e.g. transfer.source from the command line
        raw[section] = {**(raw.get(section) or {}), **values}
    params = config.resolve(raw, root=root, source=str(params_path))
    folder = RunLayout.from_params(params).root
    saved = folder / "params.yaml"
    changed = (changed_parameters(yaml.safe_load(saved.read_text()), yaml.safe_load(config.dump(params)))
               if saved.is_file() else {})
    if start == "auto":  # from the first stage whose parameters changed
        if not saved.is_file():
            raise RunError(f"--from auto: {folder} has no params.yaml to compare with; run all stages")
        if not changed:
            log(f"[zslkit] {folder}: no parameter changed; nothing to rerun")
            return folder
        start = min(stage for *_, stage in changed.values())
        log(f"[zslkit] changed: {', '.join(changed)}; rerunning from stage {start}")
    chosen = select(notebooks(root, pipeline), start, only)
    partial = bool(start or only)  # an explicit stage selection keeps the rest of the run
    progress = folder / PROGRESS
    stages = [p.name for p in chosen]
    done: list[str] = []
    if folder.exists() and any(folder.iterdir()):
        left = unfinished(progress, stages, changed) if not force and not partial else None
        if left is not None:  # the same command after an interruption: go on where it stopped
            done = [n for n in stages if n not in left]
            log(f"[zslkit] {folder}: interrupted after {', '.join(done) or 'no stage'}; resuming with "
                f"{', '.join(left)}")
            chosen = [p for p in chosen if p.name in left]
            partial = True
        elif not force and not partial:
            raise RunError(f"{folder} exists; pass --force to overwrite it, or --from NN / --from auto to rerun "
                           "from a stage")
        if partial:
            first = chosen[0].name[:2] if chosen else "99"
            # a stage before the first rerun one, or (with --only) any stage, must not see other parameters
            stale = {k: v for k, v in changed.items() if only or v[2] < first}
            if stale:
                key, (a, b, stage) = next(iter(stale.items()))
                raise RunError(f"{saved}: {key} was {a!r} and is {b!r} in {params_path}; stage {stage} reads it, "
                               f"so rerun from stage {stage} (--from {stage}, or --from auto)" if not only else
                               f"{saved}: {key} was {a!r} and is {b!r} in {params_path}; --only needs the same "
                               f"parameters (use --from {stage} or --from auto)")
        else:
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "figures").mkdir(exist_ok=True)
    write_text(folder / "params.yaml", config.dump(params))
    write_json(folder / "env.json", {**environment(), "params_file": str(params_path),
                                     "stages": [p.name for p in chosen]})
    write_json(progress, {"stages": stages, "done": done})
    try:
        for nb in chosen:
            out = folder / nb.name
            log(f"[zslkit] {nb.name} ...")
            t0 = time.time()
            try:
                pm.execute_notebook(str(nb), str(out), cwd=str(root),
                                    parameters={**params, "params_file": str(params_path), "lab": False},
                                    kernel_name="python3", progress_bar=False, log_output=False)
            except pm.PapermillExecutionError as exc:
                export_html(out, folder)
                raise RunError(f"{nb.name} failed in cell {exc.cell_index} (execution count "
                               f"{exc.exec_count}): {exc.ename}: {exc.evalue}\n"
                               f"executed notebook kept at {out}") from None
            export_html(out, folder)
            done.append(nb.name)
            write_json(progress, {"stages": stages, "done": done})
            log(f"[zslkit] {nb.name} done in {time.time() - t0:.1f} s")
    finally:
        write_index(folder)
    return folder


def export_html(notebook: Path, folder: Path) -> Path:
    """HTML export of an executed notebook with inputs hidden, in ``folder/html/``, making no network
    request (:func:`zslkit.show.report_page.offline_html`)."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(offline_notebook(nbformat.read(notebook, as_version=4)))
    target = folder / "html" / (notebook.stem + ".html")
    write_text(target, offline_html(body))
    return target

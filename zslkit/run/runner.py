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
from ..data.datasets.realmusic import missing_packages
from ..errors import RunError
from ..io import write_json, write_text
from ..layout import RunLayout
from ..show.report_page import offline_html, offline_notebook, page_title, write_index
from . import kernel
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
            # a key the schema gained since the old run was saved: that run ran with its default
            was = _with_new_defaults(a[key] if key in a or name not in known else known[name].default, name, known)
            if was != b.get(key) and not config.is_neutral(name, known):
                out[name] = (was, b.get(key), config.stage_of(name, known))
    return out


def _with_new_defaults(value: Any, name: str, known: Mapping[str, config.Field]) -> Any:
    """An entry section (``model.paper_bn``) as saved by an older run, with the sub-keys added to the schema
    since at their defaults: the run ran with them."""
    if not isinstance(value, Mapping):
        return value
    added = {k[len(name) + 1:]: f.default for k, f in known.items()
             if k.startswith(f"{name}.") and "." not in k[len(name) + 1:] and k[len(name) + 1:] not in value}
    return {**value, **added} if added else value


def unfinished(progress: Path, stages: Sequence[str], changed: Mapping[str, Any]) -> list[str] | None:
    """The stages still to run when ``progress`` (a run folder's record of the stages a command started and
    those it finished) shows that the same command (same ``stages``, no parameter ``changed``) was
    interrupted; None when there is nothing to resume."""
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

    Parameters
    ----------
    params_path : path
        The YAML parameter file.
    start : str, optional
        Rerun from this stage (``"03"``), keeping the earlier stages' outputs; ``"auto"``: from the first
        stage whose parameters changed since the folder's ``params.yaml``.
    only : sequence of str, optional
        Run exactly these stages.
    force : bool
        Overwrite an existing run folder (with ``start``/``only``: rerun those stages of it).
    root : path, optional
        The project root (default :func:`zslkit.config.project_root`).
    log : callable
        Where progress lines go.
    overrides : mapping, optional
        ``{section: {key: value}}`` over the file's values (e.g. ``transfer.source`` from the command line).
    pipeline : str
        ``"run"`` or ``"transfer"`` (:data:`PIPELINES`).

    Raises
    ------
    RunError
        The run folder exists without ``force``; parameters changed for a partial rerun; or a
        notebook failed (the message names the notebook and the cell; the executed notebook is kept).
    """
    root = Path(root or config.project_root())
    params = resolve_params(params_path, root, overrides)
    layout = RunLayout.from_params(params)
    changed = saved_changes(layout, params)
    if start == "auto":
        start = auto_start(layout, changed, log)
        if start is None:
            return layout.root
    chosen = select(notebooks(root, pipeline), start, only)
    stages = [p.name for p in chosen]
    chosen, done = prepare_folder(layout, chosen, changed, params_path, bool(start or only), bool(only), force, log)
    write_run_files(layout, params, params_path, stages, [p.name for p in chosen], done)
    try:
        execute(chosen, layout, params, params_path, root, stages, done, log)
        last = PIPELINES["run"][-1]
        if pipeline == "run" and params["run"].get("real_check") and last in [p.name[:2] for p in chosen]:
            real_check(layout, params, root, log)
    finally:
        write_index(layout.root)
    return layout.root


def real_check(layout: RunLayout, params: Mapping[str, Any], root: Path, log=print) -> Path | None:
    """The real-recordings check of a finished run: its models applied to the target of ``run.real_check``
    (a transfer: the target's notebook 01, then 07) into ``<run>/real/``, with the run's mel settings.

    A ``realmusic`` target none of whose packages is installed is not an error: ``<run>/real/skipped.json`` says
    why (the report page repeats it) and None is returned."""
    check = Path(params["run"]["real_check"])
    target = resolve_params(check, root)
    out = RunLayout.at(layout.real_check)
    why = missing_packages(target["data"]["realmusic"]) if target["data"]["source"] == "realmusic" else None
    if why:
        out.root.mkdir(parents=True, exist_ok=True)
        write_json(out.root / "skipped.json", {"reason": why, "params": str(check)})
        log(f"[zslkit] real-recordings check skipped: {why}")
        return None
    (out.root / "skipped.json").unlink(missing_ok=True)
    log(f"[zslkit] real-recordings check: the run's models on {check} into {out.root}")
    overrides = {"transfer": {"source": str(layout.root.resolve())},
                 "audio": {k: params["audio"][k] for k in config.keys("audio", recorded_in="mels")},
                 "run": {"reports_dir": str(layout.root), "name": layout.real_check.name}}
    folder = run(check, force=True, root=root, log=log, overrides=overrides, pipeline="transfer")
    write_index(layout.root)  # the run's page with the check's lines
    return folder


def resolve_params(params_path: str | os.PathLike, root: Path,
                   overrides: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The parameter file resolved under ``root``, with ``overrides`` (``{section: {key: value}}``) over its values."""
    raw = config.load_yaml(params_path)
    for section, values in (overrides or {}).items():
        raw[section] = {**(raw.get(section) or {}), **values}
    return config.resolve(raw, root=root, source=str(params_path))


def saved_changes(layout: RunLayout, params: Mapping[str, Any]) -> dict[str, tuple[Any, Any, str]]:
    """:func:`changed_parameters` from the run folder's ``params.yaml`` to ``params`` (empty without one)."""
    if not layout.params.is_file():
        return {}
    return changed_parameters(yaml.safe_load(layout.params.read_text()), yaml.safe_load(config.dump(params)))


def auto_start(layout: RunLayout, changed: Mapping[str, tuple[Any, Any, str]], log=print) -> str | None:
    """``--from auto``: the first stage whose parameters ``changed`` or that an interrupted command left
    unfinished (``progress.json``), whichever comes first; None when neither (nothing to rerun)."""
    if not layout.params.is_file():
        raise RunError(f"--from auto: {layout.root} has no params.yaml to compare with; run all stages")
    record = json.loads(layout.progress.read_text(encoding="utf-8")) if layout.progress.is_file() else {}
    left = [n[:2] for n in record.get("stages", []) if n not in record.get("done", [])]
    starts = []
    if changed:
        starts.append(min(stage for *_, stage in changed.values()))
        log(f"[zslkit] changed: {', '.join(changed)}; rerunning from stage {starts[0]}")
    if left:
        log(f"[zslkit] {layout.root}: stage {left[0]} was left unfinished; running it again")
        starts.append(left[0])
    if not starts:
        log(f"[zslkit] {layout.root}: no parameter changed and every stage finished; nothing to rerun")
        return None
    return min(starts)


def prepare_folder(layout: RunLayout, chosen: list[Path], changed: Mapping[str, tuple[Any, Any, str]],
                   params_path: str | os.PathLike, partial: bool, only: bool, force: bool,
                   log=print) -> tuple[list[Path], list[str]]:
    """Decide what happens to an existing run folder; return the notebooks still to run and the stages done.

    An empty or missing folder runs ``chosen``. The same command after an interruption resumes where it
    stopped. Otherwise an explicit selection (``partial``: ``--from``/``--only``) keeps the folder if no
    stage it keeps reads a changed parameter (:func:`check_stale`); a full run needs ``force`` and starts
    from an empty folder.
    """
    folder = layout.root
    if not folder.exists() or not any(folder.iterdir()):
        return chosen, []
    stages = [p.name for p in chosen]
    left = unfinished(layout.progress, stages, changed) if not force and not partial else None
    if left is not None:  # the same command after an interruption: go on where it stopped
        done = [n for n in stages if n not in left]
        log(f"[zslkit] {folder}: interrupted after {', '.join(done) or 'no stage'}; resuming with {', '.join(left)}")
        return [p for p in chosen if p.name in left], done  # unchanged parameters: nothing is stale
    if not partial:
        if not force:
            raise RunError(f"{folder} exists; pass --force to overwrite it, or --from NN / --from auto to rerun "
                           "from a stage")
        shutil.rmtree(folder)
        return chosen, []
    check_stale(layout, chosen, changed, params_path, only)
    return chosen, []


def check_stale(layout: RunLayout, chosen: Sequence[Path], changed: Mapping[str, tuple[Any, Any, str]],
                params_path: str | os.PathLike, only: bool) -> None:
    """Refuse a partial rerun in which a kept stage (before the first rerun one, or with ``--only`` any
    stage) would see other parameters than those it ran with."""
    first = chosen[0].name[:2] if chosen else "99"
    stale = {k: v for k, v in changed.items() if only or v[2] < first}
    if not stale:
        return
    key, (a, b, stage) = next(iter(stale.items()))
    was = f"{layout.params}: {key} was {a!r} and is {b!r} in {params_path}"
    if only:
        raise RunError(f"{was}; --only needs the same parameters (use --from {stage} or --from auto)")
    raise RunError(f"{was}; stage {stage} reads it, so rerun from stage {stage} (--from {stage}, or --from auto)")


def write_run_files(layout: RunLayout, params: Mapping[str, Any], params_path: str | os.PathLike,
                    stages: Sequence[str], running: Sequence[str], done: Sequence[str]) -> None:
    """``params.yaml``, ``env.json`` (naming the notebooks ``running``) and ``progress.json`` of a command
    about to run ``stages``, of which ``done`` are finished."""
    layout.figures.mkdir(parents=True, exist_ok=True)
    write_text(layout.params, config.dump(params))
    write_json(layout.env, {**environment(), "params_file": str(params_path), "stages": list(running)})
    write_json(layout.progress, {"stages": list(stages), "done": list(done)})


def execute(chosen: Sequence[Path], layout: RunLayout, params: Mapping[str, Any], params_path: str | os.PathLike,
            root: Path, stages: Sequence[str], done: list[str], log=print) -> None:
    """Execute each notebook into the run folder with papermill, export its HTML and record it in
    ``progress.json`` (``done`` grows); a failing notebook is exported too and raises :class:`RunError`.

    A cell fails when it raises, when its kernel dies, when it runs past ``run.cell_timeout`` seconds, or when
    its kernel goes idle without replying (the liveness guard, :mod:`zslkit.run.kernel`); the message names
    the notebook and the cell."""
    import papermill as pm

    timeout = (params.get("run") or {}).get("cell_timeout")
    for nb in chosen:
        out = layout.root / nb.name
        log(f"[zslkit] {nb.name} ...")
        t0 = time.time()
        watch = kernel.CellWatch()
        try:
            pm.execute_notebook(str(nb), str(out), cwd=str(root),
                                parameters={**params, "params_file": str(params_path), "lab": False},
                                kernel_name="python3", progress_bar=False, log_output=False,
                                engine_name=kernel.engine(), execution_timeout=timeout, watch=watch,
                                idle_grace=kernel.IDLE_GRACE)
        except pm.PapermillExecutionError as exc:
            export_html(out, layout.root)
            raise RunError(f"{nb.name} failed in cell {exc.cell_index} (execution count "
                           f"{exc.exec_count}): {exc.ename}: {exc.evalue}\n"
                           f"executed notebook kept at {out}") from None
        except Exception as exc:
            why = kernel_failure(exc, watch, timeout)
            if why is None:
                raise
            if out.is_file():
                export_html(out, layout.root)
            where = f"in cell {watch.cell}" if watch.cell is not None else "after its last cell"
            raise RunError(f"{nb.name} failed {where}: {why}\nexecuted notebook kept at {out}") from None
        export_html(out, layout.root)
        done.append(nb.name)
        write_json(layout.progress, {"stages": list(stages), "done": done})
        log(f"[zslkit] {nb.name} done in {time.time() - t0:.1f} s")


def kernel_failure(exc: BaseException, watch: kernel.CellWatch, timeout: int | None) -> str | None:
    """Why papermill stopped in ``watch.cell`` when it raised ``exc`` rather than a cell's own error (the
    liveness guard's finding, ``run.cell_timeout``, a dead kernel); None for anything else."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    if watch.hang:
        return watch.hang
    if isinstance(exc, CellTimeoutError):
        return f"no reply within run.cell_timeout = {timeout} s; the kernel was stopped"
    if isinstance(exc, DeadKernelError):
        return "the kernel died (killed, or out of memory?) while the cell ran"
    return None


def export_html(notebook: Path, folder: Path) -> Path:
    """HTML export of an executed notebook with inputs hidden, in ``folder/html/``, titled like every page of
    the run ("zslkit · demo · 05 evaluate"), making no network request
    (:func:`zslkit.show.report_page.offline_html`)."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    nb = offline_notebook(nbformat.read(notebook, as_version=4), title=page_title(folder.name, notebook.stem))
    body, _ = exporter.from_notebook_node(nb)
    target = folder / "html" / (notebook.stem + ".html")
    write_text(target, offline_html(body))
    return target

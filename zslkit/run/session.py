"""Where a stage notebook takes its parameters from and writes to: under papermill, or in the lab.

Every numbered notebook starts with one ``parameters`` cell::

    params_file = "params/demo.yaml"   # the parameter file of the run this notebook belongs to
    lab = True                         # papermill (``zslkit run``) injects False
    run = {}; data = {}; ...           # one dict per section

and then calls ``P, RUN = session.start(globals(), "04")``.

- **Papermill** (``lab`` false, or any papermill call that injects parameters, e.g. ``papermill NB OUT
  -f params.yaml``): the sections are taken as given; the notebook writes into the run folder
  ``reports/<run.name>/``. Such a notebook runs **headless** (:func:`headless`): nobody sees a widget, and
  its HTML page cannot show one, so progress bars are off (``run.progress``, a neutral key, is set false, and
  every tqdm bar of the kernel, zslkit's or a library's, is disabled: in a kernel they are ipywidgets) and a
  widget cell prints one line instead of its widget.
- **The lab** (``lab`` true, the stored default): ``params_file`` is read, the section dicts of the
  cell are merged over it (a key given there wins), and the notebook writes into its own folder
  ``reports/<run.name>-lab/``. The first lab notebook of a run seeds that folder with the papermill
  run's outputs (hard links where possible, else copies; every write in zslkit replaces a file
  atomically, so the papermill run is never changed). Before a lab notebook runs, a parameter read
  by an *earlier* stage that differs from what produced the folder's outputs is refused, naming the
  key, both values and the ``params.yaml`` they came from.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Mapping

import yaml
from tqdm import notebook as tqdm_notebook

from .. import config
from ..errors import ParamError
from ..io import write_json, write_text
from ..layout import RunLayout
from .report import environment, prepare_run_dir
from .runner import changed_parameters

LAB_SUFFIX = "-lab"
PAPERMILL_MARK = "# Parameters\n"  # the first line of the cell papermill injects
#: what a lab folder does not take from the papermill run: its executed notebooks and their pages
NOT_SEEDED = ("html", "index.html", "params.yaml", "env.json")
_state = {"headless": False}


def start(namespace: Mapping[str, Any], stage: str) -> tuple[dict[str, Any], Path]:
    """The resolved parameters and the run folder of a stage notebook (module doc).

    Parameters
    ----------
    namespace : the notebook's ``globals()``: ``params_file``, ``lab`` and one dict per section
    stage : the notebook's two-digit stage number ("04")

    Returns
    -------
    (params, folder)
    """
    sections = {s: namespace.get(s) or {} for s in config.SECTIONS}
    _state["headless"] = not namespace.get("lab", False) or injected_by_papermill(namespace)
    if _state["headless"]:
        params = config.resolve(sections)
        params["run"]["progress"] = False  # a progress bar in a kernel is a widget: none in a headless page
        quiet_progress_bars()
        return params, prepare_run_dir(params)
    return lab_run(namespace.get("params_file"), sections, stage)


def quiet_progress_bars() -> None:
    """Disable every tqdm bar this kernel draws from now on, whatever its caller asks (zslkit's with
    ``progress=True``, a library's such as a model loader's): in a kernel, tqdm draws ipywidgets, which a
    headless run's page would show as placeholders. Called by :func:`start` for a papermill notebook only."""
    cls = tqdm_notebook.tqdm
    if getattr(cls.__init__, "zslkit_quiet", False):
        return
    init = cls.__init__

    def quiet(self, *args, **kwargs):
        kwargs["disable"] = True
        init(self, *args, **kwargs)

    quiet.zslkit_quiet = True
    cls.__init__ = quiet


def headless() -> bool:
    """True when this kernel's notebook was started by papermill (:func:`start`; ``zslkit run``): nobody will
    see a widget, so a widget cell prints a line instead. False in the lab, and before :func:`start`."""
    return _state["headless"]


def injected_by_papermill(namespace: Mapping[str, Any]) -> bool:
    """True when papermill injected parameters into this kernel (its cell starts ``# Parameters`` alone on
    the first line), e.g. ``papermill NB OUT -f params.yaml`` run by hand: then the notebook is not in the lab."""
    history = namespace.get("In") or []
    return any(isinstance(src, str) and src.startswith(PAPERMILL_MARK) for src in history)


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base``, nested mappings key by key (``embed.umap.n_neighbors`` alone)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) \
            else value
    return out


def lab_run(params_file: str | os.PathLike | None, overrides: Mapping[str, Mapping[str, Any]],
            stage: str) -> tuple[dict[str, Any], Path]:
    """Resolve ``params_file`` with ``overrides`` and prepare the lab folder ``reports/<run>-lab/``."""
    root = config.project_root()
    raw: dict[str, Any] = {}
    if params_file:
        path = Path(params_file)
        raw = config.load_yaml(path if path.is_absolute() else root / path)
    raw = merge(raw, {s: v for s, v in overrides.items() if v})
    params = config.resolve(raw, root=root, source=str(params_file or "the parameters cell"))
    source = RunLayout.from_params(params).root
    params["run"]["name"] += LAB_SUFFIX
    folder = RunLayout.from_params(params).root
    own = folder / "params.yaml"
    reference = own if own.is_file() else source / "params.yaml"
    if reference.is_file():
        check_earlier_stages(reference, params, stage)
    if not own.is_file() and source.is_dir():
        seed_from(source, folder)
    (folder / "figures").mkdir(parents=True, exist_ok=True)
    write_text(own, config.dump(params))
    write_json(folder / "env.json", {**environment(), "params_file": str(params_file or ""),
                                     "lab": {"stage": stage, "seeded_from": str(source) if source.is_dir() else None}})
    print(f"lab run: writing to {_short(folder, root)}; "
          + (f"earlier stages' outputs come from {_short(source, root)}, which stays unchanged"
             if source.is_dir() else f"no papermill run {_short(source, root)} yet: run the earlier notebooks first"))
    return params, folder


def check_earlier_stages(reference: Path, params: Mapping[str, Any], stage: str) -> None:
    """Refuse parameters that differ, for a stage before ``stage``, from those in ``reference``."""
    old = yaml.safe_load(reference.read_text(encoding="utf-8")) or {}
    new = yaml.safe_load(config.dump(params))
    stale = {k: v for k, v in changed_parameters(old, new, new_keys=False).items() if v[2] < stage}
    if stale:
        lines = [f"  {k}: {a!r} in {reference}, {b!r} here (read by stage {s})" for k, (a, b, s) in stale.items()]
        first = min(s for *_, s in stale.values())
        raise ParamError(f"stage {stage} reads outputs made with other parameters:\n" + "\n".join(lines)
                         + f"\nrun notebook {first} first with these parameters, or set them back")


def seed_from(source: Path, folder: Path) -> None:
    """Fill a new lab folder with ``source``'s outputs: hard links where possible, else copies."""
    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    ignore = lambda d, names: [n for n in names if Path(d) == source and (n in NOT_SEEDED or n.endswith(".ipynb"))]  # noqa: E731
    shutil.copytree(source, folder, ignore=ignore, copy_function=link, dirs_exist_ok=True)


def _short(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)

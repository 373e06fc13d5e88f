"""JupyterLab for zslkit: the stored notebooks stay without outputs whatever the lab saves.

``make lab`` starts JupyterLab at the project root with ``jupyter_server_config.py``, which installs
:func:`pre_save_hook`: a notebook saved under ``notebooks/`` (the numbered stages, tracked by git) is
written without outputs, execution counts or widget state, so autosave never dirties the tree. Executed
notebooks elsewhere (``reports/<run>/``) keep their outputs.
"""
from __future__ import annotations

from typing import Any, Mapping

TRACKED = "notebooks"  # the folder whose notebooks are stored clean


def strip_outputs(nb: Mapping[str, Any]) -> Mapping[str, Any]:
    """Remove outputs, execution counts and widget state from a notebook dict, in place; return it."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        for key in ("execution", "collapsed", "scrolled"):
            cell.get("metadata", {}).pop(key, None)
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def is_tracked(path: str) -> bool:
    """True for a notebook under ``notebooks/`` (a path relative to the lab's root)."""
    parts = path.replace("\\", "/").strip("/").split("/")
    return len(parts) >= 2 and parts[0] == TRACKED and parts[-1].endswith(".ipynb")


def pre_save_hook(model: dict, path: str, contents_manager=None, **kwargs) -> None:
    """Jupyter server pre-save hook: strip the stored stage notebooks (module doc)."""
    if model.get("type") == "notebook" and is_tracked(path):
        strip_outputs(model["content"])

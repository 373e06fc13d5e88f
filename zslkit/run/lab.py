"""JupyterLab for zslkit: the stored notebooks stay byte for byte what git has, whatever the lab saves.

``make lab`` starts JupyterLab at the project root with ``jupyter_server_config.py``, which loads this
module as a Jupyter server extension (:func:`_load_jupyter_server_extension`, so no ``pre_save_hook``
trait is set twice and no "Overriding existing pre_save_hook" warning is logged) and points the lab's
application settings at ``lab_settings/`` next to this module (:data:`SETTINGS_DIR`: no news pop-up, no
update check).

:func:`pre_save_hook` runs on every save: a notebook saved under ``notebooks/`` (the numbered stages,
tracked by git) is written without outputs, execution counts or widget state, and its notebook metadata
is normalised (:data:`STORED_METADATA`: the kernelspec and ``language_info`` the stored notebooks have,
whatever kernel name and language details the lab reports), so neither autosave nor Ctrl+S dirties the
tree. Executed notebooks elsewhere (``reports/<run>/``) keep their outputs.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

TRACKED = "notebooks"  # the folder whose notebooks are stored clean
#: the lab's application settings (``overrides.json``: Jupyter news never fetched nor asked about)
SETTINGS_DIR = Path(__file__).with_name("lab_settings")
#: the notebook metadata every stored stage notebook has; the lab's own (``"Python 3 (ipykernel)"``,
#: ``language_info`` with version, mimetype, ...) is replaced by it on save
STORED_METADATA: dict[str, Any] = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}
#: cell metadata that describes a session, not the notebook (output state, execution times)
SESSION_CELL_KEYS = ("execution", "collapsed", "scrolled", "trusted")


def strip_outputs(nb: Mapping[str, Any]) -> Mapping[str, Any]:
    """Remove outputs, execution counts and widget state from a notebook dict, in place; return it."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        meta = cell.get("metadata", {})
        for key in SESSION_CELL_KEYS:
            meta.pop(key, None)
        jupyter = meta.get("jupyter")
        if isinstance(jupyter, dict):  # outputs_hidden means nothing without outputs
            jupyter.pop("outputs_hidden", None)
            if not jupyter:
                meta.pop("jupyter")
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def normalise_metadata(nb: Mapping[str, Any]) -> Mapping[str, Any]:
    """Set the notebook's kernelspec and ``language_info`` to :data:`STORED_METADATA`, in place; other
    notebook metadata is kept. Return the notebook."""
    meta = nb.setdefault("metadata", {})
    for key, value in STORED_METADATA.items():
        meta[key] = copy.deepcopy(value)
    return nb


def is_tracked(path: str) -> bool:
    """True for a notebook under ``notebooks/`` (a path relative to the lab's root)."""
    parts = path.replace("\\", "/").strip("/").split("/")
    return len(parts) >= 2 and parts[0] == TRACKED and parts[-1].endswith(".ipynb")


def pre_save_hook(model: dict, path: str, contents_manager=None, **kwargs) -> None:
    """Jupyter server pre-save hook: store the stage notebooks clean (module doc)."""
    if model.get("type") == "notebook" and is_tracked(path):
        normalise_metadata(strip_outputs(model["content"]))


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": __name__}]


def _load_jupyter_server_extension(serverapp) -> None:
    """Register :func:`pre_save_hook` with the server's contents manager (once per server)."""
    manager = serverapp.contents_manager
    if pre_save_hook not in getattr(manager, "_pre_save_hooks", []):
        manager.register_pre_save_hook(pre_save_hook)

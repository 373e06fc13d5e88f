"""The lab keeps the stored notebooks clean: outputs stripped and metadata normalised on save under notebooks/
only, so a save from the lab leaves the stored file byte-identical."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import requests

from zslkit.run import lab
from zslkit.run.lab import STORED_METADATA, is_tracked, normalise_metadata, pre_save_hook, strip_outputs

ROOT = Path(__file__).resolve().parents[1]


def _executed_notebook() -> dict:
    """A notebook as the lab saves it: outputs, counts, widget state and the lab kernel's own metadata."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)", execution_count=3,
                                     outputs=[nbformat.v4.new_output("stream", text="1\n")])
    cell.metadata["execution"] = {"iopub.status.idle": "2026-11-25T12:00:00Z"}
    nb.cells = [nbformat.v4.new_markdown_cell("# title"), cell]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"x": 1}}}
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "zslkit-venv"}
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.2", "mimetype": "text/x-python",
                                    "codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py"}
    return json.loads(nbformat.writes(nb))


def _as_the_lab_saves(path: Path) -> dict:
    """A stored notebook as the lab would send it back after a session: executed, with its own metadata."""
    nb = json.loads(path.read_text())
    lab_nb = _executed_notebook()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = lab_nb["cells"][1]["outputs"], 7
            cell["metadata"]["execution"] = {"iopub.status.idle": "2026-11-25T12:00:00Z"}
    nb["metadata"].update({k: lab_nb["metadata"][k] for k in ("widgets", "kernelspec", "language_info")})
    return nb


def test_strip_outputs_removes_outputs_counts_and_widget_state():
    nb = strip_outputs(_executed_notebook())
    code = nb["cells"][1]
    assert code["outputs"] == [] and code["execution_count"] is None and "execution" not in code["metadata"]
    assert "widgets" not in nb["metadata"] and "".join(nb["cells"][0]["source"]) == "# title"


def test_metadata_is_normalised_whatever_kernel_the_lab_reports():
    nb = _executed_notebook()
    nb["metadata"]["authors"] = ["kept"]
    normalise_metadata(nb)
    assert nb["metadata"]["kernelspec"] == STORED_METADATA["kernelspec"]
    assert nb["metadata"]["language_info"] == {"name": "python"} and nb["metadata"]["authors"] == ["kept"]
    nb["metadata"]["kernelspec"]["name"] = "changed"  # a copy, never the constant itself
    assert STORED_METADATA["kernelspec"]["name"] == "python3"


def test_every_stored_notebook_has_the_stored_metadata_and_canonical_json():
    """What the hook writes back is what git has: the same metadata, and the bytes Jupyter writes."""
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        nb = json.loads(text)
        assert {k: nb["metadata"].get(k) for k in STORED_METADATA} == STORED_METADATA, path.name
        assert nbformat.writes(nbformat.reads(text, as_version=4)) + "\n" == text, f"{path.name}: not canonical"


@pytest.mark.parametrize("name", ["04_embeddings.ipynb", "05_evaluate.ipynb"])
def test_the_hook_gives_back_the_stored_notebook_byte_for_byte(name):
    path = ROOT / "notebooks" / name
    model = {"type": "notebook", "content": _as_the_lab_saves(path)}
    pre_save_hook(model, f"notebooks/{name}")
    node = nbformat.from_dict(model["content"])
    assert nbformat.writes(node) + "\n" == path.read_text(encoding="utf-8")


def test_the_lab_settings_turn_off_news():
    overrides = json.loads((lab.SETTINGS_DIR / "overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    config = (ROOT / "jupyter_server_config.py").read_text()
    assert "pre_save_hook =" not in config and "zslkit.run.lab" in config  # registered once, by the extension


@pytest.mark.parametrize("path, tracked", [("notebooks/04_embeddings.ipynb", True), ("/notebooks/x.ipynb", True),
                                           ("reports/demo/04_embeddings.ipynb", False), ("scratch.ipynb", False),
                                           ("notebooks/data.csv", False)])
def test_only_notebooks_under_notebooks_are_stripped(path, tracked):
    assert is_tracked(path) is tracked
    model = {"type": "notebook", "content": _executed_notebook()}
    pre_save_hook(model, path)
    assert (model["content"]["cells"][1]["outputs"] == []) is tracked


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_running_jupyter_server_saves_stage_notebooks_clean(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "reports").mkdir()
    port, token = _free_port(), "zslkit-test"
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "server", f"--config={ROOT / 'jupyter_server_config.py'}",
         f"--ServerApp.root_dir={tmp_path}", f"--ServerApp.port={port}", "--ServerApp.open_browser=False",
         f"--IdentityProvider.token={token}", "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base, headers = f"http://127.0.0.1:{port}/api", {"Authorization": f"token {token}"}
    try:
        for _ in range(120):
            try:
                if requests.get(f"{base}/status", headers=headers, timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        else:
            pytest.fail("jupyter server did not start within 60 s")
        stage05 = ROOT / "notebooks" / "05_evaluate.ipynb"
        original = stage05.read_text(encoding="utf-8")
        for path, content in (("notebooks/04_embeddings.ipynb", _executed_notebook()),
                              ("notebooks/05_evaluate.ipynb", _as_the_lab_saves(stage05)),
                              ("reports/run.ipynb", _executed_notebook())):
            r = requests.put(f"{base}/contents/{path}", headers=headers, timeout=30,
                             json={"type": "notebook", "format": "json", "content": content})
            assert r.status_code in (200, 201), r.text
        stored = json.loads((tmp_path / "notebooks" / "04_embeddings.ipynb").read_text())
        kept = json.loads((tmp_path / "reports" / "run.ipynb").read_text())
        assert stored["cells"][1]["outputs"] == [] and "widgets" not in stored["metadata"]
        assert stored["metadata"]["kernelspec"]["display_name"] == "Python 3"
        assert kept["cells"][1]["outputs"] != [] and kept["metadata"]["kernelspec"]["name"] == "zslkit-venv"
        # an executed stage notebook saved by the server is the stored file again, byte for byte
        assert (tmp_path / "notebooks" / "05_evaluate.ipynb").read_text(encoding="utf-8") == original
    finally:
        server.terminate()
        log = server.communicate(timeout=30)[1]
    assert "Overriding existing pre_save_hook" not in log
    assert "zslkit.run.lab | extension was successfully loaded" in log

"""The lab keeps the stored notebooks clean: outputs are stripped on save under notebooks/ only."""
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

from zslkit.run.lab import is_tracked, pre_save_hook, strip_outputs

ROOT = Path(__file__).resolve().parents[1]


def _executed_notebook() -> dict:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)", execution_count=3,
                                     outputs=[nbformat.v4.new_output("stream", text="1\n")])
    cell.metadata["execution"] = {"iopub.status.idle": "2026-11-25T12:00:00Z"}
    nb.cells = [nbformat.v4.new_markdown_cell("# title"), cell]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"x": 1}}}
    return json.loads(nbformat.writes(nb))


def test_strip_outputs_removes_outputs_counts_and_widget_state():
    nb = strip_outputs(_executed_notebook())
    code = nb["cells"][1]
    assert code["outputs"] == [] and code["execution_count"] is None and "execution" not in code["metadata"]
    assert "widgets" not in nb["metadata"] and "".join(nb["cells"][0]["source"]) == "# title"


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
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
        for path in ("notebooks/04_embeddings.ipynb", "reports/run.ipynb"):
            r = requests.put(f"{base}/contents/{path}", headers=headers, timeout=30,
                             json={"type": "notebook", "format": "json", "content": _executed_notebook()})
            assert r.status_code in (200, 201), r.text
        stored = json.loads((tmp_path / "notebooks" / "04_embeddings.ipynb").read_text())
        kept = json.loads((tmp_path / "reports" / "run.ipynb").read_text())
        assert stored["cells"][1]["outputs"] == [] and "widgets" not in stored["metadata"]
        assert kept["cells"][1]["outputs"] != []
    finally:
        server.terminate()
        server.wait(timeout=30)

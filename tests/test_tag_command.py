"""`zslkit tag`'s messages name what the user typed (``source``, ``--model``), not the parameters of the
transfer stage that shares its code (``transfer.source``, ``transfer.models``).

Tagging itself (scores, names relative to the folder given, skipped files) runs on a trained smoke run in
tests/test_runner.py::test_tag_files_from_the_command_line.
"""
from __future__ import annotations

import pytest

from zslkit.cli import main
from zslkit.errors import ParamError
from zslkit.tagging import load_source_model, source_params


@pytest.fixture
def run_folder(tmp_path):
    run = tmp_path / "reports" / "r"
    for name in ("joint", "joint-table", "classifier"):
        (run / "train" / name).mkdir(parents=True)
        (run / "train" / name / "best.pt").write_bytes(b"")
    (run / "params.yaml").write_text("run: {name: r}\n")
    (tmp_path / "a.wav").write_bytes(b"")
    return run


def test_tag_names_the_model_option(run_folder, capsys):
    assert main(["tag", str(run_folder), str(run_folder.parent.parent / "a.wav"), "--model", "joint-sentence"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("zslkit: error: --model: 'joint-sentence': ")
    assert "transfer." not in err and "['classifier', 'joint', 'joint-table']" in err


def test_tag_names_the_source_argument(tmp_path, capsys):
    (tmp_path / "a.wav").write_bytes(b"")
    assert main(["tag", str(tmp_path / "nowhere"), str(tmp_path / "a.wav")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("zslkit: error: source: ") and "is not a run folder" in err and "transfer." not in err


def test_the_transfer_stage_keeps_its_parameter_names(run_folder, tmp_path):
    with pytest.raises(ParamError, match=r"^transfer\.models: 'joint-sentence'"):
        load_source_model(run_folder, "joint-sentence")
    with pytest.raises(ParamError, match=r"^transfer\.source: "):
        source_params(tmp_path / "nowhere")

"""The runner's choice of stages without running a notebook: which stages a command runs, resumes or refuses
(``--from``, ``--from auto``, ``--only``, ``--force``, an interrupted command), with papermill replaced by a
recorder. tests/test_runner.py runs the notebooks themselves (slow)."""
import json
from pathlib import Path

import papermill
import pytest
import yaml

from zslkit import RunError
from zslkit.run import runner

STAGES = ["01_data.ipynb", "02_split.ipynb", "03_train.ipynb", "04_embed.ipynb", "05_evaluate.ipynb",
          "06_compare.ipynb"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project root with empty numbered notebooks, a parameter file, and a papermill that records the
    notebooks it executes (and fails at those named in ``fail``)."""
    (tmp_path / "notebooks").mkdir()
    for name in STAGES:
        (tmp_path / "notebooks" / name).write_text("{}")
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({"run": {"name": "r"}}))
    executed, fail = [], []

    def execute_notebook(source, out, **kw):
        name = Path(source).name
        if name in fail:
            raise papermill.PapermillExecutionError(3, 3, "", "ValueError", "boom", [])
        Path(out).write_text("{}")
        executed.append(name)

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    monkeypatch.setattr(runner, "export_html", lambda notebook, folder: None)
    monkeypatch.setattr(runner, "environment", lambda: {})
    return tmp_path, params, executed, fail


def run(project, log=None, **kw):
    root, params, executed, _ = project
    executed.clear()
    folder = runner.run(params, root=root, log=(log.append if log is not None else lambda *_: None), **kw)
    return folder, list(executed)


def change(project, section, key, value):
    P = yaml.safe_load(project[1].read_text())
    P.setdefault(section, {})[key] = value
    project[1].write_text(yaml.safe_dump(P))


def test_a_new_run_executes_every_stage_and_records_them(project):
    folder, executed = run(project)
    assert executed == STAGES and folder == project[0] / "reports" / "r"
    assert json.loads((folder / "progress.json").read_text()) == {"stages": STAGES, "done": STAGES}
    assert json.loads((folder / "env.json").read_text())["stages"] == STAGES
    assert yaml.safe_load((folder / "params.yaml").read_text())["run"]["name"] == "r"
    assert (folder / "figures").is_dir() and (folder / "index.html").is_file()


def test_an_existing_run_is_kept_unless_forced(project):
    folder, _ = run(project)
    (folder / "mine.txt").write_text("x")
    with pytest.raises(RunError, match=r"reports/r exists; pass --force"):
        run(project)
    _, executed = run(project, force=True)
    assert executed == STAGES and not (folder / "mine.txt").exists()  # a forced full run starts afresh


def test_from_auto_reruns_from_the_first_stage_a_changed_key_is_read_by(project):
    with pytest.raises(RunError, match="--from auto: .* has no params.yaml"):
        run(project, start="auto")
    run(project)
    log = []
    assert run(project, start="auto", log=log) == (project[0] / "reports" / "r", [])
    assert "no parameter changed" in log[0]
    change(project, "train", "nproc", 2)  # neutral: nothing reruns
    assert run(project, start="auto")[1] == []
    change(project, "evaluate", "examples", 2)
    log.clear()
    assert run(project, start="auto", log=log)[1] == STAGES[4:]
    assert log[0] == "[zslkit] changed: evaluate.examples; rerunning from stage 05"
    change(project, "audio", "segment_frames", 128)  # read from stage 03, not its section's 01
    assert run(project, start="auto")[1] == STAGES[2:]
    change(project, "heads", "learned", {"hidden": 64})  # the trained head's section: read by training
    assert run(project, start="auto")[1] == STAGES[2:]


def test_a_partial_rerun_refuses_a_kept_stage_that_read_a_changed_key(project):
    run(project)
    change(project, "split", "seed", 9)
    with pytest.raises(RunError, match=r"split.seed was 0 and is 9 in .*p.yaml; stage 02 reads it, so rerun "
                                       r"from stage 02 \(--from 02, or --from auto\)"):
        run(project, start="03")
    with pytest.raises(RunError, match=r"split.seed was 0 and is 9 .*; --only needs the same parameters "
                                       r"\(use --from 02 or --from auto\)"):
        run(project, only=["05"])
    folder, executed = run(project, start="02")
    assert executed == STAGES[1:]
    assert json.loads((folder / "env.json").read_text())["stages"] == STAGES[1:]
    assert run(project, only=["1", "04"])[1] == ["01_data.ipynb", "04_embed.ipynb"]  # same params: allowed


def test_an_interrupted_command_resumes_where_it_stopped(project):
    fail = project[3]
    fail.append("04_embed.ipynb")
    with pytest.raises(RunError, match="04_embed.ipynb failed in cell 3 .*ValueError: boom"):
        run(project)
    folder = project[0] / "reports" / "r"
    assert json.loads((folder / "progress.json").read_text())["done"] == STAGES[:3]
    fail.clear()
    log = []
    assert run(project, log=log)[1] == STAGES[3:]  # the same command: no --force needed
    assert "interrupted after 01_data.ipynb, 02_split.ipynb, 03_train.ipynb; resuming with 04" in log[0]
    assert json.loads((folder / "progress.json").read_text()) == {"stages": STAGES, "done": STAGES}
    assert json.loads((folder / "env.json").read_text())["stages"] == STAGES[3:]
    with pytest.raises(RunError, match="exists; pass --force"):  # finished: nothing to resume
        run(project)


def test_from_auto_also_reruns_what_an_interrupted_command_left_unfinished(project):
    fail = project[3]
    fail.append("04_embed.ipynb")
    with pytest.raises(RunError, match="04_embed.ipynb failed"):
        run(project)
    fail.clear()
    log = []
    assert run(project, start="auto", log=log)[1] == STAGES[3:]  # nothing changed, 04 unfinished
    assert "stage 04 was left unfinished" in log[0]
    fail.append("04_embed.ipynb")
    with pytest.raises(RunError):
        run(project, start="03")
    fail.clear()
    change(project, "evaluate", "examples", 2)  # a stage-05 key: 04 comes first all the same
    assert run(project, start="auto")[1] == STAGES[3:]
    assert run(project, start="auto")[1] == []

"""Where a notebook reads its parameters and writes: papermill runs and lab runs (zslkit.run.session)."""
from __future__ import annotations

import hashlib

import pytest
import yaml

from zslkit import ParamError, config
from zslkit.io import write_text
from zslkit.run import session


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project root with params/demo.yaml and a finished papermill run reports/demo/."""
    (tmp_path / "params").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "params" / "demo.yaml").write_text("run: {name: demo}\ntrain: {lr: 0.01}\n")
    monkeypatch.setenv("ZSLKIT_ROOT", str(tmp_path))
    params = config.resolve(yaml.safe_load((tmp_path / "params" / "demo.yaml").read_text()), root=tmp_path)
    run = tmp_path / "reports" / "demo"
    (run / "train" / "joint").mkdir(parents=True)
    (run / "train" / "joint" / "best.pt").write_bytes(b"weights")
    (run / "results.csv").write_text("stage,metric,value\n03_train,epochs,3\n")
    (run / "03_train.ipynb").write_text("{}")
    (run / "params.yaml").write_text(config.dump(params))
    return tmp_path, run


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_merge_is_key_by_key():
    base = {"embed": {"umap": {"n_neighbors": 15, "min_dist": 0.1}, "top_k": 10}, "run": {"name": "demo"}}
    out = session.merge(base, {"embed": {"umap": {"n_neighbors": 5}}})
    assert out == {"embed": {"umap": {"n_neighbors": 5, "min_dist": 0.1}, "top_k": 10}, "run": {"name": "demo"}}
    assert base["embed"]["umap"]["n_neighbors"] == 15  # not changed in place


def test_lab_run_writes_to_its_own_folder_and_leaves_the_run_unchanged(project):
    root, run = project
    before = digest(run)
    params, folder = session.lab_run("params/demo.yaml", {"embed": {"top_k": 3}}, "04")
    assert folder == root / "reports" / "demo-lab" and params["run"]["name"] == "demo-lab"
    assert params["train"]["lr"] == 0.01 and params["embed"]["top_k"] == 3  # the file, then the cell's keys
    assert (folder / "train" / "joint" / "best.pt").read_bytes() == b"weights"  # seeded from the run
    assert not (folder / "03_train.ipynb").exists()  # executed notebooks are the run's own
    write_text(folder / "results.csv", "stage,metric,value\n04_embeddings,n,1\n")  # a stage writes
    write_text(folder / "train" / "joint" / "best.pt", "retrained")
    assert digest(run) == before
    assert yaml.safe_load((folder / "params.yaml").read_text())["embed"]["top_k"] == 3


def test_lab_run_refuses_a_changed_parameter_of_an_earlier_stage(project):
    root, run = project
    with pytest.raises(ParamError) as err:
        session.lab_run("params/demo.yaml", {"train": {"lr": 0.5}, "split": {"seed": 3}}, "04")
    message = str(err.value)
    assert "train.lr: 0.01 in" in message and "0.5 here (read by stage 03)" in message
    assert "split.seed: 0 in" in message and str(run / "params.yaml") in message
    assert "run notebook 02 first" in message
    assert not (root / "reports" / "demo-lab").exists()
    # the stage that reads it may change it, and later stages then read the lab folder's parameters
    params, folder = session.lab_run("params/demo.yaml", {"train": {"lr": 0.5}}, "03")
    assert params["train"]["lr"] == 0.5
    session.lab_run("params/demo.yaml", {"train": {"lr": 0.5}}, "04")
    with pytest.raises(ParamError, match=r"train.lr: 0.5 in .*demo-lab.*0.01 here"):
        session.lab_run("params/demo.yaml", {}, "05")


def test_keys_newer_than_the_run_are_not_changes(project):
    root, run = project
    old = yaml.safe_load((run / "params.yaml").read_text())
    del old["train"]["crops_per_track"]  # a run made before the key existed
    (run / "params.yaml").write_text(yaml.safe_dump(old))
    session.lab_run("params/demo.yaml", {}, "04")


def test_papermill_runs_write_to_the_run_folder(project):
    root, _ = project
    ns = {s: {} for s in config.SECTIONS}
    ns.update(run={"name": "other"}, lab=False, params_file="params/demo.yaml")
    params, folder = session.start(ns, "04")
    assert folder == root / "reports" / "other" and params["train"]["lr"] == 1e-3  # the file is not read
    # headless: no widget is seen, so no progress bar (a widget in a kernel) and widget cells print a line
    assert session.headless() and params["run"]["progress"] is False
    from tqdm import notebook
    assert notebook.tqdm(range(3), disable=False).disable  # a library's bar in the kernel: no widget either
    # papermill run by hand injects its cell (first line "# Parameters") but not lab = False
    ns.update(lab=True, In=["", "# Parameters\nrun = {'name': 'other'}\n"])
    assert session.injected_by_papermill(ns)
    assert session.start(ns, "04")[1] == root / "reports" / "other"
    assert not session.injected_by_papermill({"In": ["# Parameters. In JupyterLab ...\n"]})


def test_lab_run_without_a_papermill_run_starts_empty(project, capsys):
    root, _ = project
    ns = {s: {} for s in config.SECTIONS}
    ns.update(run={"name": "fresh"}, lab=True, params_file="params/demo.yaml")
    params, folder = session.start(ns, "01")
    assert folder == root / "reports" / "fresh-lab" and (folder / "params.yaml").is_file()
    assert not session.headless() and params["run"]["progress"] is True  # the lab shows its widgets
    assert "no papermill run reports/fresh yet" in capsys.readouterr().out

"""The runner and notebook 01 end to end on params/smoke.yaml (into temporary folders)."""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT

from zslkit import RunError, config
from zslkit.cli import main
from zslkit.data.melstore import MelStore
from zslkit.run import runner

pytestmark = pytest.mark.slow


def smoke_params(tmp, **run):
    P = yaml.safe_load((ROOT / "params" / "smoke.yaml").read_text())
    P["run"].update({"reports_dir": str(tmp / "reports"), "data_dir": str(tmp / "data"), **run})
    path = tmp / f"{P['run']['name']}.yaml"  # one file per run name: the module's smoke.yaml stays as it is
    path.write_text(yaml.safe_dump(P))
    return path


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    params = smoke_params(tmp)
    assert main(["run", str(params)]) == 0
    return tmp, params, tmp / "reports" / "smoke"


def test_run_folder_has_everything(smoke_run):
    _, _, folder = smoke_run
    for name in ("params.yaml", "env.json", "index.html", "results.csv", "01_preprocess.ipynb", "02_splits.ipynb",
                 "03_train.ipynb",
                 "html/01_preprocess.html", "figures/01_tag_counts.png", "figures/01_examples.png",
                 "figures/01_split_shares.png"):
        assert (folder / name).is_file(), name
    env = json.loads((folder / "env.json").read_text())
    assert env["packages"]["torch"].startswith("2.13") and env["python"].startswith("3.")
    assert "01_preprocess" in (folder / "index.html").read_text()
    html = (folder / "html" / "01_preprocess.html").read_text()
    assert "prepare.prepare_dataset" not in html  # inputs hidden


def test_no_notebook_output_shows_an_absolute_path(smoke_run):
    """A report reads the same on every machine: outputs show paths relative to the project or the run."""
    tmp, _, folder = smoke_run
    texts = {}
    for nb in sorted(folder.glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        outputs = [o for c in cells if c["cell_type"] == "code" for o in c["outputs"]]
        texts[nb.name] = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                                 for o in outputs)
    assert len(texts) >= 5 and "run folder: smoke" in texts["01_preprocess.ipynb"]
    assert "saved to embeddings/joint.npz" in texts["04_embeddings.ipynb"]
    leaks = {name: text[text.index(str(tmp)) - 40:][:120] for name, text in texts.items()
             if str(tmp) in text or str(ROOT) in text}
    assert leaks == {}


def test_recorded_metrics(smoke_run):
    tmp, _, folder = smoke_run
    results = pd.read_csv(folder / "results.csv")
    assert list(results.columns) == ["stage", "model", "train_setting", "test_setting", "task", "labels", "metric",
                                     "value", "ci_low", "ci_high", "n", "n_excluded"]
    value = results[results.stage == "01_preprocess"].set_index("metric").value
    build = json.loads((tmp / "data" / "m21-smoke" / "build_report.json").read_text())
    assert build["clips_planned"] == 180
    assert value["n_tracks"] == 180 - build["clips_without_tags"] >= 170
    assert 40 <= value["n_tags"] <= 100 and value["min_tag_count"] >= 5
    assert value["n_mel_errors"] == 0
    shares = results[results.metric.str.startswith("share_")]
    per_seed = shares.groupby("test_setting").value.sum()
    assert ((per_seed - 1).abs() < 1e-9).all() and len(per_seed) == 5
    assert shares[shares.metric == "share_A"].value.mean() > 1 / 4
    store = MelStore.from_dir(tmp / "data" / "m21-smoke" / "mels")
    assert len(store) == value["n_tracks"] and store.sharded  # audio.layout: shards
    assert 2 <= store.n_files == len(list((tmp / "data" / "m21-smoke" / "mels" / "shards").glob("*.npy")))


def test_existing_run_is_not_overwritten(smoke_run):
    _, params, folder = smoke_run
    with pytest.raises(RunError, match="exists; pass --force"):
        runner.run(params)
    assert main(["run", str(params)]) == 1


def test_partial_rerun_knows_which_stage_reads_which_parameter(smoke_run, tmp_path):
    tmp, params, folder = smoke_run
    changed = yaml.safe_load(params.read_text())
    changed["split"]["seed"] = 9
    other = tmp_path / "changed.yaml"
    other.write_text(yaml.safe_dump(changed))
    with pytest.raises(RunError, match="split.seed was 0 and is 9.*stage 02 reads it"):
        runner.run(other, start="03")
    with pytest.raises(RunError, match="--only needs the same parameters"):
        runner.run(other, only=["01"], force=True)
    before = pd.read_csv(folder / "results.csv")
    runner.run(params, only=["1"], force=True)  # same params: reruns stage 01 only, no duplicates
    after = pd.read_csv(folder / "results.csv")
    assert len(after) == len(before)
    assert runner.run(params, start="auto") == folder  # nothing changed: nothing runs
    # a stage-05 option: --from auto reruns 05 and 06 only, and the run records the new value
    figure = yaml.safe_load(params.read_text())
    figure["evaluate"]["examples"] = 2
    params.write_text(yaml.safe_dump(figure))
    log = []
    runner.run(params, start="auto", log=log.append)
    env = json.loads((folder / "env.json").read_text())
    assert env["stages"] == ["05_evaluate.ipynb", "06_compare.ipynb"] and "evaluate.examples" in log[0]
    assert yaml.safe_load((folder / "params.yaml").read_text())["evaluate"]["examples"] == 2


TIMING = {"seconds_per_epoch", "data_wait_share", "segments_per_s", "seconds"}


#: where a run is killed (the file whose appearance says the stage is under way), and how
KILLS = {"preprocessing": ("data/m21-killed-01/mels/shards/*.index.npz", "SIGTERM", 0.5),
         "training": ("reports/killed-03/train/joint/last.pt", "SIGKILL", 3.0),
         "embedding": ("reports/killed-04/embeddings/*.npz", "SIGTERM", 1.0)}


@pytest.fixture(scope="module")
def light_run(smoke_run):
    """A light variant of the smoke parameters, and its uninterrupted run (the reference)."""
    tmp, _, _ = smoke_run  # its data folder: the mels are already there
    light = {"sideinfo": {"kinds": ["glove"]},
             "train": {"controls": [], "also": [], "baseline": False, "max_epochs": 3},
             "embed": {"interactive": False}, "evaluate": {"bootstrap": 20, "permutations": 50,
                                                           "heads": ["learned"], "diagnostics": False}}

    def params(run_name, **data):
        P = yaml.safe_load(smoke_params(tmp, name=run_name).read_text())
        for section, values in light.items():
            P[section].update(values)
        P["data"].update(data)
        path = tmp / f"{run_name}.yaml"
        path.write_text(yaml.safe_dump(P))
        return path

    whole = subprocess.run(ZSLKIT + [str(params("whole"))], capture_output=True, text=True, cwd=ROOT)
    assert whole.returncode == 0, whole.stderr[-2000:]
    return tmp, params


ZSLKIT = [str(Path(sys.executable).parent / "zslkit"), "run"]


@pytest.mark.long
@pytest.mark.parametrize("stage", list(KILLS))
def test_a_killed_run_resumes_with_the_same_command(light_run, stage):
    """``zslkit run`` killed (its whole process group) at a random moment of preprocessing (SIGTERM),
    training (SIGKILL) or embedding (SIGTERM), then the same command: it resumes and ends with the
    numbers of an uninterrupted run. The preprocessing case builds its own dataset folder, so its
    mels are computed under the kill."""
    import glob
    import os
    import random
    import signal
    import time

    tmp, params = light_run
    pattern, sig, spread = KILLS[stage]
    name = pattern.split("/")[1]
    killed = params(name, **({"name": name} if stage == "preprocessing" else {}))
    proc = subprocess.Popen(ZSLKIT + [str(killed)], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not glob.glob(str(tmp / pattern)) and proc.poll() is None:
        time.sleep(0.05)
    delay = random.uniform(0.0, spread)  # a random point of the stage, after its first output
    time.sleep(delay)
    os.killpg(proc.pid, getattr(signal, sig))
    proc.wait()
    run = killed.stem if stage != "preprocessing" else name
    progress = json.loads((tmp / "reports" / run / "progress.json").read_text())
    first = {"preprocessing": "01", "training": "03", "embedding": "04"}[stage]
    assert not any(n.startswith(first) for n in progress["done"]), f"killed too late ({delay:.2f} s in)"
    again = subprocess.run(ZSLKIT + [str(killed)], capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming with" in again.stdout + again.stderr

    def numbers(name):
        r = pd.read_csv(tmp / "reports" / name / "results.csv", dtype={"stage": str})
        r = r[~r.metric.isin(TIMING) & (r.stage != "06_compare")]
        return r.sort_values(list(r.columns)).reset_index(drop=True)

    pd.testing.assert_frame_equal(numbers(run), numbers("whole"))
    if stage == "preprocessing":  # the resumed mels are the smoke run's, value for value
        a, b = MelStore.from_dir(tmp / "data" / name / "mels"), MelStore.from_dir(tmp / "data" / "m21-smoke" / "mels")
        assert a.track_ids == b.track_ids
        for t in a.track_ids:
            np.testing.assert_array_equal(a[t], b[t])


def test_notebook_runs_alone_with_papermill(smoke_run, tmp_path):
    tmp, params, _ = smoke_run
    alone = smoke_params(tmp, name="alone")
    out = tmp_path / "out.ipynb"
    subprocess.run([sys.executable, "-m", "papermill", str(ROOT / "notebooks" / "01_preprocess.ipynb"),
                    str(out), "-f", str(alone), "--no-progress-bar", "--log-level", "ERROR"],
                   check=True, cwd=ROOT, capture_output=True)
    assert (tmp / "reports" / "alone" / "results.csv").is_file()


def lab_execute(notebook, params_file, **env):
    """Run a stored notebook as JupyterLab's Run All would (cwd notebooks/, nothing injected) with
    ``params_file`` set in its parameters cell; return the executed notebook."""
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "notebooks" / notebook, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = cell.source.replace("params_file = 'params/demo.yaml'", f"params_file = {str(params_file)!r}")
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    return nb


def test_notebook_04_in_the_lab_leaves_the_papermill_run_unchanged(smoke_run):
    import hashlib
    tmp, params, folder = smoke_run
    digest = lambda d: {p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
                        for p in sorted(d.rglob("*")) if p.is_file()}
    before = digest(folder)
    nb = lab_execute("04_embeddings.ipynb", params)
    assert digest(folder) == before
    lab = tmp / "reports" / "smoke-lab"
    assert yaml.safe_load((lab / "params.yaml").read_text())["run"]["name"] == "smoke-lab"
    assert (lab / "embeddings" / "joint.npz").is_file() and (lab / "figures" / "04_tag_space.png").is_file()
    results = pd.read_csv(lab / "results.csv", dtype={"stage": str})
    assert {"03_train", "04_embeddings"} <= set(results.stage)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "lab run: writing to" in text and "smoke-lab" in text


def test_failing_cell_names_notebook_and_cell(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "params").mkdir()
    nb = nbformat.v4.new_notebook()
    params_cell = nbformat.v4.new_code_cell("run = {}")
    params_cell.metadata["tags"] = ["parameters"]
    nb.cells = [params_cell, nbformat.v4.new_code_cell("1 / 0")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "notebooks" / "01_broken.ipynb")
    (tmp_path / "params" / "p.yaml").write_text("run: {name: broken}\n")
    with pytest.raises(RunError, match=r"01_broken.ipynb failed in cell \d+ .*ZeroDivisionError") as err:
        runner.run(tmp_path / "params" / "p.yaml", root=tmp_path, log=lambda *_: None)
    assert (tmp_path / "reports" / "broken" / "01_broken.ipynb").is_file()
    assert "kept at" in str(err.value)


def test_selection_of_stages(tmp_path):
    paths = [tmp_path / f"{n:02d}_x.ipynb" for n in range(1, 6)]
    assert [p.name[:2] for p in runner.select(paths, start="03")] == ["03", "04", "05"]
    assert [p.name[:2] for p in runner.select(paths, only=["2", "05"])] == ["02", "05"]
    with pytest.raises(RunError, match="no notebook numbered '07'"):
        runner.select(paths, only=["07"])


def test_notebooks_are_stored_clean_with_one_parameters_cell():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, path.name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name


def test_notebook_02_outputs(smoke_run):
    tmp, _, folder = smoke_run
    for kind in ("glove", "sentence", "attributes", "random"):
        assert (folder / "figures" / f"02_similarity_{kind}.png").is_file()
        assert (tmp / "data" / "m21-smoke" / "splits" / "s0" / "sideinfo" / f"{kind}.npz").is_file()
    split_dir = tmp / "data" / "m21-smoke" / "splits" / "s0"
    assert (split_dir / "tag_split.json").is_file() and (split_dir / "original" / "tag_key_split_s0.p").is_file()
    results = pd.read_csv(folder / "results.csv", dtype={"stage": str})
    v = results[results.stage == "02_splits"].set_index("metric").value
    assert v["n_A"] + v["n_B"] + v["n_C"] == v["n_tracks"] and v["n_X"] + v["n_Y"] == v["n_labels"]
    kept = v.get("n_heldout_kept_from_training", 0)  # m21's held-out-bank clips in A and B (with Debian banks)
    assert v["n_A_train"] + v["n_A_valid"] + v["n_B_train"] + v["n_B_valid"] + kept == v["n_A"] + v["n_B"]
    assert v["n_X"] == int(0.8 * v["n_labels"])


def test_every_notebook_declares_every_section():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        declared = {line.split("=")[0].strip() for line in cell.source.splitlines()
                    if "=" in line and not line.startswith("#")}
        assert declared == set(config.SECTIONS) | {"params_file", "lab"}, path.name
        assert "\nlab = True\n" in cell.source and "params_file = 'params/" in cell.source, path.name


def test_notebook_03_outputs(smoke_run):
    tmp, _, folder = smoke_run
    assert (folder / "figures" / "03_curves.png").is_file()
    # the model, the same model on the knowledge table, the baseline, the control over two draws
    for kind in ("joint", "joint-table", "classifier", "joint-random", "joint-random@1"):
        assert (folder / "train" / kind / "best.pt").is_file()
        curves = pd.read_csv(folder / "train" / kind / "curves.csv")
        assert len(curves) == 3 and curves.valid_loss.notna().all()
    results = pd.read_csv(folder / "results.csv", dtype={"stage": str})
    r = results[results.stage == "03_train"]
    assert set(r.task) == {"training"}  # training does not evaluate
    assert set(r.model) == {"embedding glove", "embedding table", "classifier", "embedding random",
                            "embedding random@1"}
    epochs = r[r.metric == "epochs"].set_index("model").value
    assert (epochs == 3).all()


def test_notebook_04_outputs(smoke_run):
    tmp, _, folder = smoke_run
    for name in ("04_side_vs_learned", "04_tag_space", "04_joint_space"):
        assert (folder / "figures" / f"{name}.png").is_file(), name
    for name in ("joint.npz", "joint-table.npz", "joint-random.npz", "joint-random@1.npz", "classifier.npz",
                 "umap_side.csv", "umap_tags.csv", "umap_joint.csv"):
        assert (folder / "embeddings" / name).is_file(), name
    joint = pd.read_csv(folder / "embeddings" / "umap_joint.csv")
    assert (joint.kind == "track").sum() == 100
    results = pd.read_csv(folder / "results.csv", dtype={"stage": str})
    r = results[results.stage == "04_embeddings"]
    assert set(r.model) == {"embedding glove", "embedding table", "embedding random", "embedding random@1",
                            "classifier"}
    v = r[r.model == "embedding glove"].set_index("metric").value
    assert v["n_tracks"] >= 170 and v["n_tags_X"] > 0 and v["n_tags_Y"] > 0


def test_notebook_05_outputs(smoke_run):
    tmp, _, folder = smoke_run
    assert (folder / "figures" / "05_per_tag_auc.png").is_file()
    per_tag = pd.read_csv(folder / "evaluation" / "per_tag.csv")
    assert set(per_tag.split) == {"X", "Y"} and per_tag["AUC-l"].between(0, 1).all()
    assert (folder / "train" / "joint-random" / "best.pt").is_file()
    results = pd.read_csv(folder / "results.csv", dtype={"stage": str})
    r = results[results.stage == "05_evaluate"]
    models = {"embedding glove", "embedding table", "embedding random", "embedding random@1"}
    heads = {f"{m}{h}" for m in models for h in ("", " conse", " ridge", " eszsl")}
    assert set(r.model) == heads | {"classifier"} | {f"embedding random{h}, 2 draws" for h in ("", " conse", " ridge",
                                                                                               " eszsl")}
    ann = r[(r.task == "annotation") & (r.metric == "AUC-i") & (r.labels == "annotation")]
    assert {"B-Y", "(B+C)-Y", "B-(X+Y)", "(B+C)-(X+Y)"} <= set(ann.test_setting)
    assert ann.value.between(0, 1).all()
    ci = ann[ann.n >= 2]  # a single track has no interval (NaN)
    assert len(ci) and ((ci.ci_low <= ci.value) & (ci.value <= ci.ci_high)).all()
    assert (r[r.task == "consistency"].value.abs() < 1e-9).all()
    chance = r[r.task == "chance test"]
    assert set(chance.model) == {m for m in heads if m.startswith("embedding random")} and len(chance) == 16
    seen = r[(r.task == "seen-label") & (r.metric == "AUC-l") & (r.labels == "annotation")]
    assert set(zip(seen.model, seen.test_setting)) == {(m, t) for m in heads | {"classifier"}
                                                       for t in ("A-valid-X", "B-X")}
    draws = r[(r.task == "retrieval over draws") & (r.model == "embedding random, 2 draws")].set_index("metric").value
    assert draws["AUC-l min"] <= draws["AUC-l mean"] <= draws["AUC-l max"]
    diag = r[r.task == "diagnostic"]
    assert set(diag.model) == models and diag.metric.str.startswith("upper bound").any()
    assert (folder / "figures" / "05_per_tag_auc_embedding_random.png").is_file()


def test_sweep_end_to_end_and_resume(smoke_run, tmp_path):
    from zslkit.run import sweep
    tmp, params, _ = smoke_run
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "sw", "base": str(params), "stages": "02-05",
                                    "grid": {"train.seed": [0, 1], "evaluate": [{"bootstrap": 20}],
                                             "train.controls": [[]],
                                             "embed": [{"umap": {"max_tracks": 30}}]}}, sort_keys=False))
    folder = sweep.run_sweep(path, log=lambda *_: None)
    summary = pd.read_csv(folder / "sweep_summary.csv")
    table = pd.read_csv(folder / "sweep_results.csv")
    assert set(table.run) == {"sw-0", "sw-1"} and set(table.seed) == {0, 1}
    row = summary[(summary.metric == "AUC-i") & (summary.test_setting == "(B+C)-Y")].iloc[0]
    assert row.seeds == 2 and 0 <= row["mean"] <= 1 and row.sd_seeds >= 0
    assert (folder / "06_compare.ipynb").is_file()
    lines = []
    sweep.run_sweep(path, log=lines.append)  # resumes: every run is done
    assert sum("done, skipped" in line for line in lines) == 2


# ----------------------------------------------------------------------------- transfer and tagging

TARGET_TAGS = [["cello", "slow"], ["guitar", "fast"], ["drums", "fast"], ["cello", "dark"], ["guitar", "bright"],
               ["drums", "loud"], ["piano", "slow"], ["piano", "bright"]]


def _folder_target(tmp, n=24):
    """A folder dataset whose tags the smoke run never had as such (different texts, other groups)."""
    import soundfile as sf

    from zslkit.data.datasets.samples import tone
    audio = tmp / "target_audio"
    audio.mkdir()
    rows = []
    for i in range(n):
        tags = TARGET_TAGS[i % len(TARGET_TAGS)]
        sf.write(audio / f"clip{i:02d}.wav", tone(tags, 4.0, 22050, i), 22050)
        rows.append({"path": f"target_audio/clip{i:02d}.wav", "tags": ";".join(tags)})
    pd.DataFrame(rows).to_csv(tmp / "target.csv", index=False)
    P = {"run": {"name": "to-folder", "reports_dir": str(tmp / "reports"), "data_dir": str(tmp / "data"),
                 "progress": False},
         "data": {"source": "folder", "name": "target-folder", "folder": {"csv": str(tmp / "target.csv")}},
         "evaluate": {"bootstrap": 50, "permutations": 100},
         "transfer": {"models": ["joint", "joint-random"]}}
    path = tmp / "target.yaml"
    path.write_text(yaml.safe_dump(P))
    return path


def test_transfer_to_a_folder_dataset_with_other_tags(smoke_run):
    from zslkit.run.report import read_results
    tmp, _, source = smoke_run
    target = _folder_target(tmp)
    assert main(["transfer", str(source), str(target)]) == 0
    folder = tmp / "reports" / "to-folder"
    assert {"01_preprocess.ipynb", "07_transfer.ipynb", "html"} <= {p.name for p in folder.iterdir()}
    assert not (folder / "03_train.ipynb").exists()
    saved = yaml.safe_load((folder / "params.yaml").read_text())
    src = yaml.safe_load((source / "params.yaml").read_text())
    assert saved["transfer"]["source"] == str(source.resolve())
    assert all(saved["audio"][k] == src["audio"][k] for k in ("sample_rate", "n_mels", "hop_length"))
    r = read_results(folder)
    t = r[r.stage == "07_transfer"]
    assert set(t.train_setting.dropna()) == {"smoke"}
    for model in ("transfer joint (glove)", "transfer joint-random (random)"):
        m = t[t.model == model]
        auc = m[(m.metric == "AUC-l") & (m.test_setting == "target-T")]
        n_tags = len({t for tags in TARGET_TAGS for t in tags})
        assert len(auc) == 1 and 0 <= auc.value.iloc[0] <= 1 and auc.n.iloc[0] == n_tags
    seen = t[t.metric == "target tags seen by the source"]
    assert (seen.n == 9).all()
    emb = folder / "embeddings" / "transfer-joint.npz"
    assert emb.is_file()


def test_the_real_check_scores_a_run_on_real_recordings_or_says_why_it_skipped(smoke_run, tmp_path):
    import shutil

    from test_realmusic import make_share

    from zslkit.layout import RunLayout
    from zslkit.run.report import read_results
    from zslkit.show.report_page import write_index
    _, _, smoke = smoke_run
    source = tmp_path / "reports" / "smoke"
    shutil.copytree(smoke, source)
    share = make_share(tmp_path / "share")

    def check(share_root):
        P = {"run": {"name": "realmusic", "data_dir": str(tmp_path / "data"), "progress": False},
             "data": {"source": "realmusic", "name": "realmusic",
                      "realmusic": {"share_root": str(share_root), "clips_per_track": 1, "clip_seconds": 4.0}},
             "evaluate": {"bootstrap": 50, "permutations": 100},
             "transfer": {"models": ["joint", "joint-random"], "adapt": ["none", "adabn"],
                          "agreement": "MTT_musicnn"}}
        path = tmp_path / "real.yaml"
        path.write_text(yaml.safe_dump(P))
        params = yaml.safe_load((source / "params.yaml").read_text())
        params["run"]["real_check"] = str(path)
        return runner.real_check(RunLayout.at(source), params, ROOT, log=lambda *a: None)

    assert check(share) == source / "real"
    r = read_results(source / "real")
    t = r[r.stage == "07_transfer"]
    scored = {"transfer joint (glove)", "transfer joint-random (random)"}
    assert scored <= set(t.model)
    if yaml.safe_load((source / "params.yaml").read_text())["model"]["encoder"] == "paper_bn":
        assert {m + " + adabn" for m in scored} <= set(t.model)
    else:  # no batch norm to adapt: said, not scored as if adapted
        skipped = t[t.metric == "skipped"]
        assert set(skipped.model) == {"transfer joint+adabn", "transfer joint-random+adabn"}
        assert skipped.test_setting.str.contains("adabn needs batch norm").all()
    groups = set(t.test_setting[t.test_setting.str.startswith("target-T group ", na=False)])
    assert {"target-T group instrument", "target-T group style", "target-T group era"} <= groups
    agree = t[t.task == "agreement"]       # the smoke run's tags musicnn knows, each model
    assert set(agree.model) == scored and (agree.labels == "mean").sum() == 2
    assert agree.value.dropna().between(-1, 1).all()
    conc = t[t.task == "concentration"]
    assert len(conc) == 2 * len(set(conc.model)) and conc.value.between(0, 6).all()
    import re
    page = re.sub(r"<[^>]+>", "", write_index(source).read_text())   # the text, glossary links dropped
    assert "On real recordings (7 clips), transfer joint (glove): seen tags" in page   # 1 + 3 + 3 (one silent)
    assert "random control (seen, instrument, unseen)" in page
    assert "On real recordings" in page and "group: instrument" in page            # the table below the headline
    # without the packages: no error, the page says the check was skipped and why
    assert check(tmp_path / "no-share") is None
    page = write_index(source).read_text()
    assert "On real recordings: not checked: none of wesnoth-1.16-music" in page


def test_tag_files_from_the_command_line(smoke_run, capsys):
    tmp, _, source = smoke_run
    audio = tmp / "to_tag"
    audio.mkdir(exist_ok=True)
    import soundfile as sf

    from zslkit.data.datasets.samples import tone
    sf.write(audio / "a.wav", tone(["piano"], 4.0, 22050, 0), 22050)
    sf.write(audio / "b.wav", tone(["cello"], 4.0, 22050, 1), 22050)
    (audio / "sub").mkdir(exist_ok=True)
    sf.write(audio / "sub" / "c.wav", tone(["organ"], 4.0, 22050, 2), 22050)
    (audio / "broken.wav").write_bytes(b"RIFF0000WAVEfmt ")
    (audio / "empty.mp3").write_bytes(b"")
    assert main(["tag", str(source), str(audio), "--top", "3", "--format", "csv"]) == 0
    out = capsys.readouterr()
    table = pd.read_csv(__import__("io").StringIO(out.out))
    assert list(table.columns) == ["file", "rank", "tag", "score", "seen_by_source"]
    assert len(table) == 9 and table.groupby("file")["rank"].apply(list).tolist() == [[1, 2, 3]] * 3
    assert sorted(set(table.file)) == ["a.wav", "b.wav", "sub/c.wav"]  # relative to the folder given
    assert "zslkit: skipped broken.wav: unreadable" in out.err
    assert "zslkit: skipped empty.mp3: empty (0 bytes)" in out.err
    assert main(["tag", str(source), str(audio / "a.wav"), "--tags", "piano,organ,electric guitar"]) == 0
    assert "electric guitar" in capsys.readouterr().out
    assert main(["tag", str(source), str(audio), "--query", "a slow cello"]) == 0
    ranked = capsys.readouterr().out
    assert "a slow cello" in ranked and "b.wav" in ranked


def test_zslkit_train_resumes_a_trained_run_and_says_what_it_holds(smoke_run, capsys):
    """``zslkit train PARAMS`` is stage 03 alone: on a finished run every model resumes at its last epoch,
    trains nothing more and leaves the checkpoints as they were."""
    _, params, folder = smoke_run
    best = {p: p.read_bytes() for p in (folder / "train").glob("*/best.pt")}
    assert best
    assert main(["train", str(params)]) == 0
    out = capsys.readouterr().out
    for p, blob in best.items():
        assert f"[zslkit] {p.parent.name}:" in out and p.read_bytes() == blob

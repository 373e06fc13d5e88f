"""Sweep files, their expansion, and the over-seeds / over-splits summary."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT

from zslkit import ParamError
from zslkit.run import sweep


def write(tmp_path, **kw):
    data = {"name": "sw", "base": str(ROOT / "params" / "smoke.yaml"),
            "grid": {"model.sideinfo": ["glove", "random"], "train.seed": [0, 1],
                     "split": [{"name": "s0", "seed": 0}, {"name": "s1", "seed": 1}],
                     "evaluate": [{"bootstrap": 10}]}, **kw}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_expand_names_and_params(tmp_path):
    runs = sweep.expand(sweep.load_sweep(write(tmp_path), ROOT), ROOT)
    assert len(runs) == 8 and len({r["name"] for r in runs}) == 8
    first = runs[0]
    assert first["name"] == "sw-glove-0-s0"  # single-valued keys are overrides, not in the name
    p = first["params"]
    assert p["run"]["name"] == "sw-glove-0-s0" and p["train"]["seed"] == 0 and p["split"]["name"] == "s0"
    assert p["evaluate"]["bootstrap"] == 10 and p["embed"]["widget"] is False and p["embed"]["interactive"] is False
    assert p["data"]["name"] == "m21-smoke"  # the base is kept
    assert runs[-1]["params"]["split"] == {**p["split"], "name": "s1", "seed": 1}


def test_a_list_value_is_named_by_its_items(tmp_path):
    grid = {"train.augment": [[], ["specaugment", {"name": "mixup", "p": 0.25}]]}
    runs = sweep.expand(sweep.load_sweep(write(tmp_path, grid=grid), ROOT), ROOT)
    assert [r["name"] for r in runs] == ["sw-none", "sw-specaugment_mixup"]
    assert runs[0]["params"]["train"]["augment"] == []
    assert [a["name"] if isinstance(a, dict) else a for a in runs[1]["params"]["train"]["augment"]] == [
        "specaugment", "mixup"]


@pytest.mark.parametrize("change, message", [
    ({"grid": {"train.lr": [5.0, 99.0]}}, r"train.lr: 99.0 is above the maximum"),
    ({"grid": {"bogus.key": [1]}}, "unknown section 'bogus'"),
    ({"grid": {"train.seed": 3}}, "must be a non-empty list"),
    ({"colour": "red"}, "unknown key 'colour'"),
    ({"stages": "07-09"}, "selects no notebook"),
    ({"grid": {"train.augment": [[{"name": "mixup", "p": 0.5}], [{"name": "mixup", "p": 1.0}]]}},
     r"both give the run name 'sw-mixup'; give the values distinct names"),
])
def test_bad_sweep_files_name_the_key(tmp_path, change, message):
    with pytest.raises(ParamError, match=message):
        sweep.expand(sweep.load_sweep(write(tmp_path, **change), ROOT), ROOT)


def test_summary_separates_seed_and_split_spread():
    rows = []
    for split, offset in (("s0", 0.0), ("s1", 0.1)):
        for seed, noise in zip((0, 1, 2), (-0.01, 0.0, 0.01)):
            rows.append({"model": "embedding glove", "encoder": "paper", "loss": "hinge", "train_setting": "A-X",
                         "test_setting": "(B+C)-Y", "labels": "annotation", "metric": "AUC-i",
                         "value": 0.6 + offset + noise, "split": split, "seed": seed})
    summary = sweep.summarise_runs(pd.DataFrame(rows), ["AUC-i"], ["(B+C)-Y"])
    r = summary.iloc[0]
    assert r["mean"] == pytest.approx(0.65)
    assert r.sd_seeds == pytest.approx(0.01)                     # within each split
    assert r.sd_splits == pytest.approx(np.std([0.6, 0.7], ddof=1))  # between split means
    assert r.seeds == 3 and r.splits == 2
    assert "0.650 ± 0.010 (± 0.071)" in sweep.wide(summary).iloc[0].tolist()


def test_bars_tell_runs_apart_and_keep_a_model_colour_across_plots():
    rows = [{"model": "embedding glove", "encoder": enc, "loss": "hinge", "train_setting": "A-X",
             "test_setting": test, "labels": "annotation", "metric": "AUC-i", "value": v, "split": "s0",
             "seed": 0, "dataset": "m21"}
            for enc, v in (("paper", 0.6), ("paper_bn", 0.7)) for test in ("(B+C)-Y", "B-X")]
    rows = [r for r in rows if not (r["encoder"] == "paper" and r["test_setting"] == "B-X")]
    summary = sweep.summarise_runs(pd.DataFrame(rows), ["AUC-i"], ["(B+C)-Y", "B-X"])
    first, second = sweep.bars(summary, "AUC-i", "(B+C)-Y"), sweep.bars(summary, "AUC-i", "B-X")
    labels = [t.get_text() for t in first.axes[0].get_legend().get_texts()]
    assert labels == ["embedding glove · paper", "embedding glove · paper_bn"]
    colour = {t.get_text(): h.get_facecolor() for t, h in zip(first.axes[0].get_legend().get_texts(),
                                                             first.axes[0].get_legend().legend_handles)}
    (only,) = second.axes[0].get_legend().legend_handles
    assert only.get_facecolor() == colour["embedding glove · paper_bn"]


def test_a_grid_of_single_values_is_one_run_with_no_comparison(tmp_path, monkeypatch):
    """One run takes the sweep's name and folder; the sweep then adds no comparison there (it used to
    write its summary's parameters into the run's folder and refuse its own rerun)."""
    calls = []
    monkeypatch.setattr(sweep.runner, "run", lambda path, only, **kw: calls.append((Path(path).name, only)))
    path = write(tmp_path, grid={"model.sideinfo": ["glove"], "run": [{"reports_dir": str(tmp_path / "reports")}]})
    (only_run,) = sweep.expand(sweep.load_sweep(path, ROOT), ROOT)
    assert only_run["name"] == "sw"
    logged = []
    folder = sweep.run_sweep(path, ROOT, log=logged.append)
    assert folder == tmp_path / "reports" / "sw"
    assert calls == [("sw.yaml", ["01", "02", "03", "04", "05"])]  # the run's stages, not stage 06
    assert "one run, so no comparison" in logged[-1]

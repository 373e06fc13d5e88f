import numpy as np
import pandas as pd
import pytest

from zslkit import config
from zslkit.io import atomic_path, read_json, save_npy, write_json
from zslkit.run import report


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_atomic_writers_round_trip(tmp_path):
    save_npy(tmp_path / "a.npy", np.arange(6, dtype=np.float16).reshape(2, 3))
    assert np.load(tmp_path / "a.npy", mmap_mode="r").shape == (2, 3)
    write_json(tmp_path / "b.json", {"x": np.float32(1.5), "y": np.arange(2)})
    assert read_json(tmp_path / "b.json") == {"x": 1.5, "y": [0, 1]}


def test_atomic_writes_get_a_plain_files_mode(tmp_path):
    import os
    write_json(tmp_path / "b.json", {})
    (tmp_path / "plain.txt").write_text("")
    mode = lambda p: os.stat(p).st_mode & 0o777  # noqa: E731
    assert mode(tmp_path / "b.json") == mode(tmp_path / "plain.txt")


def test_record_replaces_a_stage_rows(tmp_path):
    report.record(tmp_path, "01", [{"metric": "a", "value": 1}, {"metric": "b", "value": 2}])
    report.record(tmp_path, "02", [{"metric": "c", "value": 3, "n": 10}])
    table = report.record(tmp_path, "01", [{"metric": "a", "value": 5}])
    assert list(table.columns) == report.RESULT_COLUMNS
    assert sorted(zip(table.stage, table.metric, table.value)) == [("01", "a", 5), ("02", "c", 3)]
    with pytest.raises(ValueError, match="no column 'auc'"):
        report.record(tmp_path, "03", [{"auc": 0.5}])


def test_prepare_run_dir_keeps_existing_params(tmp_path):
    P = config.resolve({"run": {"name": "r", "reports_dir": str(tmp_path)}})
    folder = report.prepare_run_dir(P)
    (folder / "params.yaml").write_text("kept: true\n")
    report.prepare_run_dir(P)
    assert (folder / "params.yaml").read_text() == "kept: true\n"
    env = read_json(folder / "env.json")
    assert {"python", "packages", "git", "gpu", "cpu_count"} <= set(env)


def test_stamp_and_markdown_table_quote_a_run(tmp_path):
    write_json(tmp_path / "env.json", {"time": "2026-01-01T00:00:00", "params_file": "/x/params/demo.yaml",
                                       "git": {"revision": "0123456789abcdef", "dirty": True}})
    assert report.stamp(tmp_path) == (f"run `{tmp_path.name}`, `params/demo.yaml`, revision 0123456 "
                                      "(uncommitted changes), 2026-01-01T00:00:00")
    rows = pd.DataFrame({"test_setting": ["B-Y", "B-Y", "C-Y"], "model": ["glove", "random", "glove"],
                         "value": [0.71234, 0.5, 0.6], "ci_low": [0.7, np.nan, 0.55], "ci_high": [0.72, np.nan, 0.65]})
    assert report.markdown_table(rows, "test_setting", "model").splitlines() == [
        "| test_setting | glove | random |", "|---|---|---|",
        "| B-Y | 0.712 [0.700, 0.720] | 0.500 |", "| C-Y | 0.600 [0.550, 0.650] |  |"]

"""``make gpu-check`` (.ci/gpu_check.py) without a GPU: a clean skip; its plan, parameters and report.

The check itself needs a CUDA device; here it is run with CUDA hidden, and its parts are checked on their own.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from zslkit import config

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "gpu_check.py"


def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_without_cuda_it_skips_cleanly(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "gc")], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("gpu-check: skipped: no CUDA device") and not (tmp_path / "gc").exists()


def test_the_makefile_target_runs_the_script():
    recipe = (ROOT / "Makefile").read_text().split("\ngpu-check:", 1)[1].split("\n\n", 1)[0]
    assert ".ci/gpu_check.py" in recipe


def test_the_plan_covers_every_part(tmp_path):
    gc = gpu_check()
    steps = {s.name: s for s in gc.plan(tmp_path, 2)}
    assert list(steps) == ["tests", "bench_train fp32", "bench_train bf16", "bench_metrics torch", "smoke run",
                           "nccl training"]
    assert {"-k", "cuda"} <= set(steps["tests"].cmd)
    assert steps["bench_train bf16"].cmd[-2:] == ["--precision", "bf16"] and "cuda" in steps["bench_train fp32"].cmd
    assert steps["bench_metrics torch"].cmd[2:6] == ["--backend", "torch", "--device", "cuda"]
    assert steps["nccl training"].needs_gpus == 2
    assert sum(s.timeout for s in steps.values() if s.needs_gpus == 1) >= gc.BUDGET  # the budget is the limit
    assert gc.run_step(steps["nccl training"], 1, 100).status == "skipped: needs 2 GPUs, 1 present"


def test_the_run_parameters_are_valid_and_on_the_gpu(tmp_path):
    gc = gpu_check()
    for nproc in (1, 2):
        P = config.resolve(gc.smoke_params(tmp_path, "gpu-check-smoke", nproc=nproc), root=ROOT)
        assert P["train"]["device"] == "cuda" and P["train"]["nproc"] == nproc
        assert (P["evaluate"]["backend"], P["evaluate"]["device"]) == ("torch", "cuda")
        assert Path(P["run"]["reports_dir"]) == tmp_path


def test_the_report_carries_the_revision_and_every_number(tmp_path):
    gc = gpu_check()
    results = [gc.Result("bench_train fp32", ["python", "bench_train.py"], "passed", 41.5, 0,
                         ["training ratio zslkit / baseline: 1.87x", "  training 12345.6 segments/s"]),
               gc.Result("tests", ["pytest"], "failed", 20.0, 1, ["1 failed, 2 passed"],
                         {"tests": [{"test": "tests.test_feed::test_x[cuda]", "outcome": "failure", "seconds": 0.5}]}),
               gc.Result("smoke run", ["zslkit"], "passed", 100.0, 0, [],
                         {"headline": [{"stage": "05_evaluate", "model": "embedding glove", "train_setting": "A-X",
                                        "test_setting": "(B+C)-Y", "metric": "AUC-i", "value": "0.61",
                                        "ci_low": "0.55", "ci_high": "0.66", "n": "40"}]})]
    info = {"date": "2030-01-01T00:00:00+00:00", "revision": gc.revision(), "machine": {"gpus": ["H200"]},
            "budget": 480, "seconds": 161.5}
    path = gc.write_report(tmp_path, results, info)
    text = path.read_text()
    assert info["revision"]["commit"] and info["revision"]["commit"] in text
    for number in ("1.87x", "12345.6", "0.61", "0.55", "161", "41.5", "test_x[cuda] | failure"):
        assert number in text, number
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["revision"] == info["revision"] and data["steps"][0]["lines"][1].endswith("segments/s")

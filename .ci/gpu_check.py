#!/usr/bin/env python
"""One command checks a GPU: ``make gpu-check`` (docs/benchmarks.md, "Checking a GPU").

In under 8 minutes on one GPU, in this order, each step in its own process:

1. ``tests``: every CUDA-parametrised test (``pytest -k cuda``: the ``[cuda]`` cases of the device tests);
2. ``bench_train fp32`` and ``bench_train bf16``: ``benchmarks/bench_train.py --device cuda`` (1,280 tracks,
   20 batches), without and with ``--precision bf16``;
3. ``bench_metrics torch``: ``benchmarks/bench_metrics.py --backend torch --device cuda`` on the ZSL table
   (207,024 x 226);
4. ``smoke run``: ``zslkit run`` of ``params/smoke.yaml`` end to end with ``train.device: cuda`` and the
   metric suite on the GPU (``evaluate.backend: torch``), into ``<out>/gpu-check-smoke/``;
5. ``nccl training``, where two GPUs exist: ``zslkit train`` of the same run in two processes
   (``train.nproc: 2``, torchrun, NCCL), into ``<out>/gpu-check-nccl/``.

It writes one report, ``<out>/report.md`` (with ``report.json`` beside it: the same, for programs): the
revision (and whether the tree had uncommitted changes), the machine, and each step's command, exit status,
time and every line it printed, the tests one by one, the smoke run's headline numbers. The exit status is
non-zero when a step failed. Without CUDA it prints one line saying so, runs nothing, writes nothing and
exits 0.

Usage: ``python .ci/gpu_check.py [--out reports/gpu-check] [--budget 480] [--plan]``
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
#: the whole check must fit this (seconds); each step gets at most what is left
BUDGET = 480


@dataclass
class Step:
    """One step: its command and the most seconds it may take."""

    name: str
    cmd: list[str]
    timeout: int
    needs_gpus: int = 1


@dataclass
class Result:
    name: str
    cmd: list[str]
    status: str                      # "passed", "failed", "timed out" or "skipped: <why>"
    seconds: float = 0.0
    returncode: int | None = None
    lines: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)


def smoke_params(out: Path, name: str, nproc: int = 1) -> dict:
    """``params/smoke.yaml`` on the GPU, into ``out/<name>/`` (its dataset and split in ``data/`` as usual)."""
    P = yaml.safe_load((ROOT / "params" / "smoke.yaml").read_text())
    P["run"].update({"name": name, "reports_dir": str(out)})
    P["train"].update({"device": "cuda", "nproc": nproc})
    P.setdefault("evaluate", {}).update({"backend": "torch", "device": "cuda"})
    return P


def plan(out: Path, gpus: int) -> list[Step]:
    """The steps, in order; the NCCL step needs two GPUs."""
    junit = out / "pytest.xml"
    return [
        Step("tests", [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda", "-m", "",
                       "--durations=0", f"--junitxml={junit}", "tests"], 150),
        Step("bench_train fp32", [PY, "benchmarks/bench_train.py", "--device", "cuda", "--tracks", "1280",
                                  "--batches", "20"], 90),
        Step("bench_train bf16", [PY, "benchmarks/bench_train.py", "--device", "cuda", "--tracks", "1280",
                                  "--batches", "20", "--precision", "bf16"], 90),
        Step("bench_metrics torch", [PY, "benchmarks/bench_metrics.py", "--backend", "torch", "--device", "cuda",
                                     "--tables", "226"], 120),
        Step("smoke run", [PY, "-m", "zslkit.cli", "run", str(out / "smoke.yaml"), "--force"], 240),
        Step("nccl training", [PY, "-m", "zslkit.cli", "train", str(out / "nccl.yaml")], 120, needs_gpus=2),
    ]


def run_step(step: Step, gpus: int, left: float) -> Result:
    if gpus < step.needs_gpus:
        return Result(step.name, step.cmd, f"skipped: needs {step.needs_gpus} GPUs, {gpus} present")
    if left < 10:
        return Result(step.name, step.cmd, "skipped: the time budget is spent")
    limit = min(step.timeout, left)
    print(f"[gpu-check] {step.name}: {' '.join(step.cmd[1:])} (at most {limit:.0f} s)", flush=True)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(step.cmd, cwd=ROOT, capture_output=True, text=True, timeout=limit,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
        text, rc = proc.stdout + proc.stderr, proc.returncode
        status = "passed" if rc == 0 else "failed"
    except subprocess.TimeoutExpired as exc:
        text = _text(exc.stdout) + _text(exc.stderr)
        rc, status = None, "timed out"
    seconds = time.monotonic() - t0
    print(f"[gpu-check] {step.name}: {status} in {seconds:.0f} s", flush=True)
    return Result(step.name, step.cmd, status, round(seconds, 1), rc, text.splitlines())


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


def junit_tests(path: Path) -> list[dict]:
    """Every test case of a pytest JUnit XML file: ``{"test", "outcome", "seconds"}``."""
    if not path.is_file():
        return []
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
        out.append({"test": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome,
                    "seconds": float(case.get("time") or 0)})
    return out


def smoke_headline(run: Path) -> list[dict]:
    """The smoke run's unseen-tag numbers on (B+C)-Y (``results.csv`` rows), and its stage 01-03 counts."""
    path = run / "results.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    keep = [r for r in rows if r["test_setting"] == "(B+C)-Y" and r["metric"] in ("AUC-i", "AUC-l", "MAP-i", "MAP-l")]
    keep += [r for r in rows if r["stage"] == "01_preprocess" and r["metric"] in ("n_tracks", "n_tags")]
    return [{k: r[k] for k in ("stage", "model", "train_setting", "test_setting", "metric", "value", "ci_low",
                               "ci_high", "n")} for r in keep]


def revision() -> dict:
    def git(*args):
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def machine(torch) -> dict:
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                         capture_output=True, text=True) if _has("nvidia-smi") else None
    return {"host": platform.node(), "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "gpus": gpus, "cpus": os.cpu_count(),
            "nvidia_smi": smi.stdout.strip().splitlines() if smi is not None and smi.returncode == 0 else None}


def _has(program: str) -> bool:
    return any(os.access(os.path.join(d, program), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep))


def write_report(out: Path, results: list[Result], info: dict) -> Path:
    """``out/report.md`` and ``out/report.json``; returns the first."""
    out.mkdir(parents=True, exist_ok=True)
    data = {**info, "steps": [asdict(r) for r in results]}
    (out / "report.json").write_text(json.dumps(data, indent=1) + "\n")
    rev = info["revision"]
    md = [f"# GPU check, {info['date']}", "",
          f"- revision: {rev['commit']}{' (uncommitted changes)' if rev['dirty'] else ''}",
          f"- machine: {json.dumps(info['machine'])}",
          f"- total: {info['seconds']:.1f} s (budget {info['budget']} s); "
          f"{sum(r.status == 'passed' for r in results)} of {len(results)} steps passed", "",
          "| step | status | seconds | exit |", "|---|---|---|---|"]
    md += [f"| {r.name} | {r.status} | {r.seconds:.1f} | {r.returncode if r.returncode is not None else ''} |"
           for r in results]
    for r in results:
        md += ["", f"## {r.name}: {r.status}", "", "`" + " ".join(r.cmd) + "`", ""]
        if r.details.get("tests"):
            md += ["| test | outcome | seconds |", "|---|---|---|"]
            md += [f"| {t['test']} | {t['outcome']} | {t['seconds']:.2f} |" for t in r.details["tests"]]
            md.append("")
        if r.details.get("headline"):
            md += ["| model | setting | metric | value | 95 % interval | n |", "|---|---|---|---|---|---|"]
            md += [f"| {h['model']} | {h['test_setting'] or h['stage']} | {h['metric']} | {h['value']} | "
                   f"{h['ci_low']}–{h['ci_high']} | {h['n']} |" for h in r.details["headline"]]
            md.append("")
        if r.lines:
            md += ["```", *r.lines[-400:], "```"]
    path = out / "report.md"
    path.write_text("\n".join(md) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="reports/gpu-check", help="the report's folder (and the runs')")
    ap.add_argument("--budget", type=int, default=BUDGET, help="seconds for the whole check")
    ap.add_argument("--plan", action="store_true", help="print the steps and exit")
    args = ap.parse_args(argv)
    out = (ROOT / args.out).resolve()
    import torch
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if args.plan:
        for s in plan(out, max(gpus, 2)):
            print(f"{s.name}: {' '.join(s.cmd)} (at most {s.timeout} s{', 2 GPUs' if s.needs_gpus > 1 else ''})")
        return 0
    if not gpus:
        print(f"gpu-check: skipped: no CUDA device visible to torch {torch.__version__} (CUDA build "
              f"{torch.version.cuda}); nothing was run and no report written")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    (out / "smoke.yaml").write_text(yaml.safe_dump(smoke_params(out, "gpu-check-smoke")))
    (out / "nccl.yaml").write_text(yaml.safe_dump(smoke_params(out, "gpu-check-nccl", nproc=2)))
    (out / "pytest.xml").unlink(missing_ok=True)
    t0, results = time.monotonic(), []
    for step in plan(out, gpus):
        result = run_step(step, gpus, args.budget - (time.monotonic() - t0))
        if step.name == "tests":
            result.details["tests"] = junit_tests(out / "pytest.xml")
        if step.name == "smoke run":
            result.details["headline"] = smoke_headline(out / "gpu-check-smoke")
        results.append(result)
    info = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "revision": revision(),
            "machine": machine(torch), "budget": args.budget, "seconds": round(time.monotonic() - t0, 1)}
    path = write_report(out, results, info)
    failed = [r.name for r in results if r.status in ("failed", "timed out")]
    print(f"[gpu-check] report: {path}" + (f"; failed: {', '.join(failed)}" if failed else "; every step passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

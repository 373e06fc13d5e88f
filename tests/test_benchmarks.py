"""Benchmarks cannot rot: every script in ``benchmarks/`` runs at its ``--quick`` size (seconds) and
prints its side-by-side ratio against the baseline. Timings are never asserted."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("bench_*.py"))
#: a ratio against the baseline with its number, e.g. ``ratio zslkit / baseline: 1.96x``
RATIO = re.compile(r"\bratio\b.*?\d+(?:\.\d+)?x", re.IGNORECASE)


def test_every_benchmark_is_found():
    """``make bench`` and the test below take ``benchmarks/bench_*.py``: no script may be named otherwise."""
    scripts = [p.name for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_")]
    assert scripts and sorted(scripts) == [p.name for p in SCRIPTS]
    recipe = (ROOT / "Makefile").read_text().split("\nbench:", 1)[1].split("\n\n", 1)[0]
    assert "benchmarks/bench_*.py" in recipe


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_benchmark_runs_at_its_quick_size(script):
    out = subprocess.run([sys.executable, str(script), "--quick"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode == 0, f"{script.name} --quick exited with {out.returncode}:\n{text[-3000:]}"
    assert RATIO.search(out.stdout), f"{script.name} --quick printed no ratio line:\n{out.stdout[-3000:]}"

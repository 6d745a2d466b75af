"""The store benchmark still runs end to end (a few thousand tickets; the figures are `make bench`'s)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testkit.benchrun import figures

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


def test_store_bench_fills_through_the_store_checks_its_answers_and_ends_with_its_figures(tmp_path: Path) -> None:
    args = ["--tickets", "3000", "--open", "20", "--runs", "20", "--rounds", "1", "--backends", "sqlite",
            "--workdir", str(tmp_path)]
    run = subprocess.run([sys.executable, "bench/store.py", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=280)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    last = figures(run.stdout.strip().splitlines()[-1])
    assert last["tickets"] == 3000
    for kind in ("lookup", "common", "rare", "nomatch", "two_char", "list"):
        assert last[f"{kind}_p95_ms"] > 0

"""The FastAGI lookup benchmark still runs end to end: a small store, both servers, the exchanges
compared byte for byte, one round of each kind (the figures are ``make bench``'s)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testkit.benchrun import figures

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


def test_agi_lookup_bench_checks_both_servers_answer_alike_and_ends_with_its_figures(tmp_path: Path) -> None:
    args = ["--tickets", "3000", "--rounds", "1", "--sessions", "300", "--paced-sessions", "100", "--warmup", "20",
            "--check", "40", "--rate", "100", "--concurrency", "10", "--workdir", str(tmp_path)]
    run = subprocess.run([sys.executable, "bench/agi_lookup.py", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=280)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "send the same bytes" in run.stdout
    last = figures(run.stdout.strip().splitlines()[-1])
    assert last["tickets"] == 3000 and last["confidential_lookups"] > 0  # the read-log write was timed
    assert last["sessions_per_s"] > 0 and last["bare_sessions_per_s"] > 0 and last["ratio"] > 0
    assert last["p99_ms_at_100_per_s"] > 0 and last["paced_sessions"] == 100

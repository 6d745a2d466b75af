"""The AMI ingest benchmark still runs end to end: a small stream through the wired CTI node, its
consoles and its call log (the figures are ``make bench``'s)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testkit.benchrun import figures

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


def test_ami_ingest_bench_files_every_completed_call_and_ends_with_its_figures(tmp_path: Path) -> None:
    args = ["--min-events", "2000", "--rounds", "1", "--consoles", "5", "--workdir", str(tmp_path)]
    run = subprocess.run([sys.executable, "bench/ami_ingest.py", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=280)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    last = figures(run.stdout.strip().splitlines()[-1])
    assert last["events"] >= 2000 and last["published"] > 0
    assert last["calls_logged"] > 0  # the bench itself checks every completed call is in the call log
    assert last["events_per_s"] > 0 and last["bare_events_per_s"] > 0 and last["ratio"] > 0

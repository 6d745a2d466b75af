"""The screen-pop benchmark still runs end to end, on one node and on two web nodes through Redis: a
small store, the app and then the baseline (``bench/_screen_pop_bare.py``) on the same bursts, every
pop checked for its caller's history and its operator, and the ratio in the last line (figures:
``make bench``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testkit.benchrun import figures
from testkit.redis import find_binary

ROOT = Path(__file__).resolve().parents[2]
# a minute of several processes at once (the app's nodes, the baseline's, the simulator, the clients,
# Redis) on the CI's two cores: beside the real-Asterisk tests it slowed their calls past what they
# wait for (a BlindTransfer refused before the bridge, the citizen's tone late in the browser: CI of
# 2026-12-07), so it runs on their worker, one after another with them (tests/conftest.py)
pytestmark = [pytest.mark.timeout(400), pytest.mark.slow, pytest.mark.xdist_group("asterisk")]


@pytest.mark.parametrize("nodes", [1, 2])
def test_screen_pop_bench_runs_the_app_and_the_bare_baseline_and_ends_with_their_ratio(nodes: int) -> None:
    if nodes == 2 and find_binary() is None:
        pytest.skip("redis-server is not installed (make setup installs it)")
    args = ["--calls", "10", "--nodes", str(nodes), "--rounds", "2", "--tickets", "2000", "--callers", "40",
            "--browser-samples", "0"]
    run = subprocess.run([sys.executable, "bench/screen_pop.py", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=380)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "--- the app" in out and "--- the baseline" in out
    last = figures(out.strip().splitlines()[-1])
    # 2 counted bursts of 10 for each: every pop arrived (the bench fails otherwise), all with history
    assert last["calls"] == 10 and last["nodes"] == nodes and last["samples"] == 20
    assert last["pops_without_history"] == 0
    # the app's processes' peak memory: each a Python with the app loaded, some tens of MiB at least
    assert last["app_peak_rss_mib"] >= 30 * (1 if nodes == 1 else 3)
    assert 0 < last["p50_ms"] <= last["p99_ms"] and 0 < last["bare_p50_ms"] <= last["bare_p99_ms"]
    assert last["ratio"] == pytest.approx(last["bare_p99_ms"] / last["p99_ms"], abs=0.01)
    # through Redis, each side's split: the bridge's part and the web's
    assert ("bare_to_stream_p99_ms" in last and "to_stream_p99_ms" in last) == (nodes == 2)

"""SIPp runners side by side in one process (a centre of two servers registers both servers' phones
at once, tests/launch/test_centre_nodes.py): each gets ports of its own, and gives them back."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hotline.simulate.sipp import SippRunner


def test_runners_in_threads_never_share_a_port_and_give_theirs_back(tmp_path: Path) -> None:
    runners = [SippRunner(tmp_path / f"r{k}") for k in range(4)]
    with ThreadPoolExecutor(4) as pool:  # all probing from the same start, at the same moment
        got = list(pool.map(lambda r: [r.port(5600) for _ in range(25)] + [r.port(18000, 4)], runners))
    ports = [p for g in got for p in g[:-1]] + [p + k for g in got for p in g[-1:] for k in range(4)]
    assert len(ports) == len(set(ports)) == 4 * 29  # before: each runner probed alone, and two took 5600
    first = min(ports)
    for r in runners:
        r.stop_all()
    assert runners[0].port(5600) == first  # given back when its phones stopped: free again
    runners[0].stop_all()

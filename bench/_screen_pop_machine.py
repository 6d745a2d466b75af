"""The screen-pop bench's CPU readings (``bench/screen_pop.py``): the whole box's from /proc/stat
and each process's, so a run says whether the box itself was the limit and what each node spent.

Private to screen_pop (the leading ``_`` keeps ``make bench`` from running it as a benchmark).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from testkit.stack import cpu_seconds


def machine_cpu() -> list[int]:
    """The whole machine's CPU ticks so far (Linux /proc/stat's first line: user … steal)."""
    return [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]


def machine_busy(before: list[int], after: list[int]) -> tuple[float, int]:
    """The share of the machine's CPU time busy between two readings (idle and iowait are not),
    and its cores."""
    delta = [b - a for a, b in zip(before, after, strict=True)]
    idle = delta[3] + delta[4]
    return 100 * (1 - idle / max(1, sum(delta))), os.cpu_count() or 1


def cpu_of(procs: list[subprocess.Popen[bytes]]) -> float:
    """User + system CPU seconds of the app's processes so far."""
    return sum(cpu_of_pid(p.pid) for p in procs)


def cpu_of_pid(pid: int) -> float:
    """testkit's reading of one process's CPU seconds, 0 when it is gone."""
    return cpu_seconds(pid) or 0.0


def peak_rss_mib(pid: int) -> float:
    """A live process's peak resident memory (``VmHWM``) in MiB, 0 when it is gone: what a node needs
    of the box's memory, and what a change to the collector's thresholds costs (launch.compose.GC_YOUNG)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0

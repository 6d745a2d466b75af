"""Fuzzing shared by the tests (issue #13): how long each target runs, where Hypothesis keeps its
files, and the figures of a run (inputs tried per target, crashes found).

Two modes, chosen by the environment:

* bounded (the default, ``make test``): each target tries a fixed number of inputs, derandomized
  (the same inputs every run: CI never flakes on a lucky draw) and without an example database;
* long (``HOTLINE_FUZZ=long``, ``make fuzz``): each target runs fresh random rounds until its share
  of the time budget is spent (``HOTLINE_FUZZ_SECONDS`` per target, default 120), and keeps the
  failing examples it finds under ``var/hypothesis/`` so the next run tries them first.

Hypothesis writes only under ``var/hypothesis/`` (never ``.hypothesis/`` in whatever directory
pytest was started from). Figures go to the terminal at the end of the run and to
``var/fuzz/figures.json``.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.database import DirectoryBasedExampleDatabase

from testkit import ROOT

STORAGE = ROOT / "var" / "hypothesis"
FIGURES_FILE = ROOT / "var" / "fuzz" / "figures.json"
LONG = os.environ.get("HOTLINE_FUZZ", "").strip().lower() == "long"
SECONDS = float(os.environ.get("HOTLINE_FUZZ_SECONDS", "120"))  # long mode: the budget of each target
ROUND = 2000  # long mode: inputs per Hypothesis round (each round draws a fresh random seed)

set_hypothesis_home_dir(STORAGE)  # before any test asks Hypothesis for its storage


@dataclass
class Figures:
    """What one target saw: inputs tried, and crashes (inputs that broke a property)."""

    target: str
    tried: int = 0
    crashes: int = 0
    seconds: float = 0.0


FIGURES: dict[str, Figures] = {}


def figures(target: str) -> Figures:
    return FIGURES.setdefault(target, Figures(target))


def fuzz_settings(examples: int, **overrides: object) -> settings:
    """Hypothesis settings for a target that tries ``examples`` inputs in a bounded run."""
    common: dict[str, object] = {
        "deadline": None,  # no timing in a test: a slow CI machine is not a failure (hangs: pytest-timeout)
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        "print_blob": True,  # a failure prints the line that reproduces it
    }
    if LONG:
        mode: dict[str, object] = {"max_examples": ROUND, "derandomize": False,
                                   "database": DirectoryBasedExampleDatabase(STORAGE / "examples")}
    else:
        mode = {"max_examples": examples, "derandomize": True, "database": None}
    return settings(**(common | mode | overrides))


def run(target: str, test: Callable[[], None]) -> Figures:
    """Run a ``@given`` test: once when bounded, round after round until the budget when long.

    The test counts its own inputs (``figures(target).tried += 1``): Hypothesis also runs inputs it
    discards, and only the inputs that reached the code under test are worth reporting.
    """
    fig = figures(target)
    started = time.monotonic()
    try:
        test()
        while LONG and time.monotonic() - started < SECONDS:
            test()  # a new round: derandomize is off, so a fresh seed and fresh inputs
    except Exception:
        fig.crashes += 1
        raise
    finally:
        fig.seconds += time.monotonic() - started
        write()
    return fig


def reset(path: Path = FIGURES_FILE) -> None:
    """A new run: the last run's figures go (called once per run, by the process that reports)."""
    path.unlink(missing_ok=True)


def write(path: Path = FIGURES_FILE) -> None:
    """This process's figures into the run's file, beside those of the other test processes (make test
    runs two: pytest-xdist), under a lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        targets = {t["target"]: t for t in _read(path)}
        targets.update({f.target: asdict(f) for f in FIGURES.values()})
        mode = "long" if LONG else "bounded"
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"mode": mode, "targets": list(targets.values())}, ensure_ascii=False, indent=1),
                       encoding="utf-8")
        os.replace(tmp, path)


def _read(path: Path) -> list[dict]:
    try:
        return list(json.loads(path.read_text(encoding="utf-8")).get("targets", []))
    except (OSError, ValueError):
        return []


def summary(path: Path = FIGURES_FILE) -> list[str]:
    """The run's figures as lines for its end (none when no fuzz target ran): this process's, or
    what the test processes wrote to ``path`` since :func:`reset`."""
    found = [Figures(**t) for t in _read(path)] or list(FIGURES.values())
    if not found:
        return []
    mode = f"long, {SECONDS:.0f} s a target" if LONG else "bounded, derandomized"
    lines = [f"fuzzing ({mode}): inputs tried and crashes per target"]
    for f in found:
        lines.append(f"  {f.target:<44} {f.tried:>9} inputs  {f.crashes} crashes  {f.seconds:7.1f} s")
    lines.append(f"  {'total':<44} {sum(f.tried for f in found):>9} inputs  {sum(f.crashes for f in found)} crashes")
    return lines

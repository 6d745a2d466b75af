"""``make bench``: every benchmark in ``bench/``, one after the other, then one summary.

Each benchmark prints what it measured as it goes and ends with one line of ``key=value``
figures; that line is the benchmark's result. The runner streams each benchmark's output, keeps
its last line, and at the end prints one table of every result and writes them, with the
machine (cores, load average before and after each) and the commit, to
``var/bench/summary.json``. The previous summary is moved to ``var/bench/history/`` first, and
each figure is printed beside its previous value, so two runs compare at a glance.

    .venv/bin/python -m testkit.benchrun                 # every bench/*.py
    .venv/bin/python -m testkit.benchrun store screen_pop
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def figures(line: str) -> dict[str, float | str]:
    """The ``key=value`` pairs of a result line, numbers as numbers.

    >>> figures("calls=50 p99_ms=12.5 note=x bad")
    {'calls': 50, 'p99_ms': 12.5, 'note': 'x'}
    """
    out: dict[str, float | str] = {}
    for token in line.split():
        key, eq, value = token.partition("=")
        if not eq or not key:
            continue
        try:
            out[key] = int(value)
        except ValueError:
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value
    return out


def run_one(script: Path, python: str = sys.executable) -> dict[str, object]:
    """Run one benchmark, its output streamed through; its result line, figures, exit code and time."""
    load_before = os.getloadavg()[0]
    t0 = time.monotonic()
    last = ""
    with subprocess.Popen([python, str(script)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if line.strip():
                last = line.strip()
    rc = proc.returncode
    found = figures(last) if rc == 0 else {}
    return {"line": last if found else "", "figures": found, "rc": rc, "seconds": round(time.monotonic() - t0, 1),
            "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def table(results: dict[str, dict], previous: dict[str, dict]) -> str:
    """One line per benchmark; a figure that moved shows its previous value in brackets."""
    rows = []
    for name, r in results.items():
        if r["rc"] != 0 or not r["figures"]:
            rows.append(f"{name:<14} FAILED (exit {r['rc']}, {r['seconds']} s)")
            continue
        before = previous.get(name, {}).get("figures", {})
        shown = []
        for key, value in r["figures"].items():
            old = before.get(key)
            moved = isinstance(old, (int, float)) and old != value
            shown.append(f"{key}={value}" + (f" [{old}]" if moved else ""))
        rows.append(f"{name:<14} {r['seconds']:>7.0f} s  " + " ".join(shown))
    return "\n".join(rows)


def main(argv: list[str] | None = None, bench_dir: Path = ROOT / "bench",
         out_dir: Path = ROOT / "var" / "bench") -> int:
    names = argv if argv is not None else sys.argv[1:]
    scripts = sorted(p for p in bench_dir.glob("*.py") if not p.name.startswith("_"))
    if names:
        scripts = [p for p in scripts if p.stem in names]
        missing = set(names) - {p.stem for p in scripts}
        if missing:
            print(f"no such benchmark: {', '.join(sorted(missing))}", file=sys.stderr)
            return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = out_dir / "summary.json"
    previous: dict[str, dict] = {}
    if summary_path.exists():
        try:
            old = json.loads(summary_path.read_text())
            previous = old.get("benchmarks", {})
            history = out_dir / "history"
            history.mkdir(exist_ok=True)
            summary_path.rename(history / f"summary-{old.get('at', 'unknown').replace(':', '')}.json")
        except (ValueError, OSError) as e:
            print(f"(previous summary unreadable, not compared: {e})", file=sys.stderr)
    results: dict[str, dict] = {}
    started = datetime.now(UTC).isoformat(timespec="seconds")
    for script in scripts:
        print(f"== {script.relative_to(ROOT) if script.is_relative_to(ROOT) else script}", flush=True)
        results[script.stem] = run_one(script)
    summary = {"at": started, "commit": _commit(), "cores": len(os.sched_getaffinity(0)), "benchmarks": results}
    summary_path.write_text(json.dumps(summary, ensure_ascii=False, indent=1))
    print("\n== summary (previous values in brackets) → " + str(summary_path))
    print(table(results, previous))
    return 0 if all(r["rc"] == 0 and r["figures"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())


def pct(values: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p % of the samples at or below it."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def split_cpus() -> set[int] | None:
    """Asterisk runs on its own core in production: give the simulated one (the client) the last
    CPU and the servers the others, so that neither steals the other's time slices. Called before
    any thread starts (a thread inherits its creator's CPUs; this sets the calling thread's): ours
    and the bare responder get the same CPU budget, whatever threads they use."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    os.sched_setaffinity(0, set(cpus[:-1]))
    return {cpus[-1]}

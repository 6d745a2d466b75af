"""``make bench``'s runner: every benchmark's last line gathered, one table, a summary to compare with."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import testkit.benchrun as benchrun


def _bench(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.py").write_text(body)


def test_results_are_gathered_compared_with_the_last_run_and_a_failure_fails(tmp_path: Path, capsys) -> None:
    bench, out = tmp_path / "bench", tmp_path / "var"
    bench.mkdir()
    _bench(bench, "alpha", "print('working …')\nprint('calls=50 p99_ms=12.5')\n")
    _bench(bench, "beta", "print('ratio=0.9 note=ok')\n\n")
    _bench(bench, "_helper", "raise SystemExit('a module, not a benchmark')\n")
    assert benchrun.main([], bench_dir=bench, out_dir=out) == 0
    first = json.loads((out / "summary.json").read_text())
    assert first["benchmarks"]["alpha"]["figures"] == {"calls": 50, "p99_ms": 12.5}
    assert first["benchmarks"]["beta"]["figures"] == {"ratio": 0.9, "note": "ok"}
    assert set(first["benchmarks"]) == {"alpha", "beta"} and first["cores"] >= 1

    _bench(bench, "alpha", "print('calls=50 p99_ms=14.0')\n")
    _bench(bench, "beta", "print('ratio=0.9')\nraise SystemExit(3)\n")
    capsys.readouterr()
    assert benchrun.main([], bench_dir=bench, out_dir=out) == 1
    shown = capsys.readouterr().out.split("== summary")[1]
    assert "p99_ms=14.0 [12.5]" in shown and "calls=50 " in shown  # only what moved shows the old value
    assert "beta" in shown and "FAILED (exit 3" in shown
    assert len(list((out / "history").glob("summary-*.json"))) == 1
    assert benchrun.main(["nonesuch"], bench_dir=bench, out_dir=out) == 2


def test_doctests() -> None:
    assert doctest.testmod(benchrun).failed == 0

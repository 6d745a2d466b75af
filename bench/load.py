"""Concurrent recorded calls on one box: the whole stack under SIPp, and what each process costs.

The stack is the real one (testkit/stack.py), on a copy of the installed Asterisk chroot in a
throwaway folder under var/stacks/ with ports of its own (a developer's ``make run`` and the test
session's Asterisk are left alone; the machine-wide real-Asterisk lock is held throughout):
Asterisk 22, ``hotline web``, the CTI bridge as its own process (``hotline cti``: the AMI bridge,
the call-log writer and the recordings catalog, so ``cti_cpu_pct`` is the bridge's own),
``hotline agi`` and ``hotline transcribe -w 2`` — ``--topology up`` runs the bridge and FastAGI
inside the web process as ``hotline up`` does (``cti_cpu_pct`` is then the web process's).

Traffic (testkit/traffic.py): enough seats registered on one SIPp answering machine, each
answering after 1 s and talking ``--talk`` seconds once bridged (after the job-number
announcement, ≈ 8 s); citizens call 12345 from numbers of their own, arriving at ``--rate`` per
second until the step's concurrency is reached, then SIPp keeps that many calls up (a new call
as one ends); every call is answered by a seat and recorded by MixMonitor (mixed, citizen and
operator legs), then hears the survey for ``--after`` seconds and hangs up.

Steps (``--steps 20,40,60,80``): each adds callers up to the target, waits until Asterisk holds
that many calls and ``--warm`` seconds more (past the burst of set-ups), then measures ``--window``
seconds: every process's CPU as % of one core, from ``/proc/<pid>/stat`` (utime + stime) deltas —
our CTI bridge, web, AGI, the transcription supervisor with its workers, Asterisk, and SIPp (the
load generator) — and Asterisk's own count of active calls every 2 s. The baseline not our own
code is Asterisk itself, at the same moment, carrying the same calls: ``cti_vs_asterisk`` is the
bridge's CPU over Asterisk's.

Then the callers stop, the calls end, and every number SIPp placed is looked for (testkit/tally.py):
answered by a seat, one row in ``/api/calls`` (asked as the demo lead) marked answered, a stored
recording with its three legs. A call placed in a step that is not whole is lost in that step.
``concurrent`` is the highest step held (mean active calls ≥ 90 % of the target) with no call lost.
The transcription workers cannot keep pace with recorded calls arriving this fast on two cores
(Vosk costs ≈ 0.06 core-seconds per audio second, two legs a call): their CPU is reported, their
backlog is not waited for.

Run from the repo root, as root: ``.venv/bin/python bench/load.py [--steps 20,40,60,80] [--window 40]``
(about 7 minutes). Last line: ``concurrent=… cti_cpu_pct=… web_cpu_pct=… asterisk_cpu_pct=… lost=0 …``
(goal: ≥ 60 concurrent with the CTI bridge under 15 % of one core).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hotline.settings import get_settings  # noqa: E402
from testkit.stack import CpuMeter, Stack, active_calls, machine_lock  # noqa: E402
from testkit.tally import api_calls, tally  # noqa: E402
from testkit.traffic import Traffic  # noqa: E402


@dataclass
class Step:
    target: int
    started: float  # epoch: calls placed from here belong to this step
    concurrent: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    lost: int = 0
    placed: int = 0

    @property
    def held(self) -> bool:
        return self.concurrent >= 0.9 * self.target


def load_note() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def measure(stack: Stack, traffic: Traffic, meter: CpuMeter, step: Step, window_s: float) -> None:
    counts = []
    a = meter.snapshot()
    end = time.monotonic() + window_s
    while time.monotonic() < end:
        counts.append(active_calls(stack.settings))
        time.sleep(min(2.0, max(0.0, end - time.monotonic())))
    step.cpu = CpuMeter.percent(a, meter.snapshot())
    step.concurrent = statistics.mean(counts)


def ramp(stack: Stack, target: int, limit_s: float) -> float:
    """Seconds until Asterisk carries ``target`` calls (or ``limit_s`` passed)."""
    start = time.monotonic()
    while time.monotonic() - start < limit_s and active_calls(stack.settings) < target:
        time.sleep(1.0)
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", default="20,40,60,80", help="concurrent calls per step")
    ap.add_argument("--window", type=float, default=40.0, help="seconds measured per step")
    ap.add_argument("--warm", type=float, default=10.0, help="seconds between reaching a step and measuring it")
    ap.add_argument("--rate", type=float, default=3.0, help="new calls per second while a step ramps up")
    ap.add_argument("--talk", type=float, default=25.0, help="seconds a seat talks once bridged")
    ap.add_argument("--after", type=float, default=5.0, help="seconds the citizen stays for the survey")
    ap.add_argument("--topology", choices=["split", "up"], default="split")
    ap.add_argument("--workers", type=int, default=2, help="transcription worker processes")
    args = ap.parse_args(argv)
    steps = [int(x) for x in args.steps.split(",")]
    if os.geteuid() != 0:
        print("bench/load.py needs root (the Asterisk chroot)", file=sys.stderr)
        return 2
    base = get_settings()
    # stopped from outside (timeout, kill): still stop every process and remove the copy on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with machine_lock():
        return run(base, steps, args)


def run(base, steps: list[int], args: argparse.Namespace) -> int:
    stack = Stack(base, seats=max(steps) + 12, topology=args.topology, workers=args.workers, wrapup_s=3.0)
    traffic: Traffic | None = None
    t0 = time.monotonic()
    try:
        stack.prepare()
        stack.start()
        traffic = Traffic(stack.settings, stack.var / "sim", base.var_dir / "audio")
        traffic.seats(stack.seats, ring_s=1.0, talk_s=args.talk)
        print(f"stack up in {time.monotonic() - t0:.0f} s ({args.topology}: {', '.join(stack.services)}; "
              f"{len(stack.seats)} seats; announcement {traffic.announce_s:.1f} s)", flush=True)

        def pids() -> dict[str, list[int]]:
            return stack.pids() | {"sipp": [p.pid for p in traffic.runner.procs if p.running()]}

        meter = CpuMeter(pids).start()
        since = datetime.now(UTC) - timedelta(seconds=5)
        call_s = 1.0 + traffic.announce_s + args.talk + args.after + 2
        budget = len(steps) * (args.window + args.warm + 40) + call_s + 60
        done: list[Step] = []
        previous = 0
        for target in steps:
            step = Step(target, time.time())
            traffic.call(calls=int(args.rate * budget), rate=args.rate, concurrency=target - previous,
                         ring_s=1.0, talk_s=args.talk, after_s=args.after)
            took = ramp(stack, target, (target - previous) / args.rate + 30)
            time.sleep(args.warm)  # past the burst of call set-ups that filled the step
            measure(stack, traffic, meter, step, args.window)
            done.append(step)
            previous = target
            print(f"step {target}: ramp {took:.0f} s, held {step.concurrent:.1f} calls; CPU % of a core: "
                  + ", ".join(f"{k} {v:.1f}" for k, v in sorted(step.cpu.items())) + f" ({load_note()})", flush=True)
        traffic.quiesce()
        traffic.wait_callers(call_s + 60)
        meter.stop()
        ledger = traffic.ledger()
        counts = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the last calls' rows and recordings arrive within seconds
            counts = tally(stack.settings, ledger, api_calls(stack.url, stack.lead(), since))
            if counts.lost == 0:
                break
            time.sleep(5)
        assert counts is not None
        print("\n".join(counts.table()))
        print(f"transcription jobs: {dict(counts.jobs)} (not waited for)")
        for i, step in enumerate(done):
            end = done[i + 1].started if i + 1 < len(done) else float("inf")
            placed = [c for c in ledger.values() if c.placed and step.started <= c.placed < end]
            step.placed = len(placed)
            step.lost = sum(1 for c in placed if c.number not in counts.whole)
        return report(done, counts.lost, args.topology)
    finally:
        if traffic is not None:
            traffic.stop()
        stack.stop()
        stack.remove()
        print(f"stopped and removed in {time.monotonic() - t0:.0f} s total", flush=True)


def report(done: list[Step], lost: int, topology: str) -> int:
    print("step  held   placed lost   cti%   web%   agi%  transcribe%  asterisk%  sipp%  cti/asterisk")
    for s in done:
        c = s.cpu
        print(f"{s.target:4d}  {s.concurrent:5.1f}  {s.placed:6d} {s.lost:4d}  {c.get('cti', c['web']):5.1f}  "
              f"{c['web']:5.1f}  {c.get('agi', 0.0):5.1f}  {c['transcribe']:11.1f}  {c['asterisk']:9.1f}  "
              f"{c['sipp']:5.1f}  {c.get('cti', c['web']) / max(c['asterisk'], 0.1):.3f}")
    good = [s for s in done if s.held and s.lost == 0] or done[:1]
    best = good[-1]
    c = best.cpu
    cti = c.get("cti", c["web"])  # topology up: the bridge lives in the web process
    print(f"(CTI {'in its own process' if topology == 'split' else 'inside the web process'}; {load_note()})")
    print(f"concurrent={best.concurrent:.0f} cti_cpu_pct={cti:.1f} web_cpu_pct={c['web']:.1f} "
          f"asterisk_cpu_pct={c['asterisk']:.1f} lost={lost} cti_vs_asterisk={cti / max(c['asterisk'], 0.1):.3f} "
          f"agi_cpu_pct={c.get('agi', 0.0):.1f} transcribe_cpu_pct={c['transcribe']:.1f} sipp_cpu_pct={c['sipp']:.1f} "
          f"target={best.target} topology={topology}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

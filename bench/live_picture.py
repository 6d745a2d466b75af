"""The bridge's live picture at a large centre's size: what every active bridge computes and encodes
twice a second (``cti.desk.BridgeDesk.post``, issue #15), on the same loop that reads AMI.

**The centre**: ``--seats`` signed in (every one in ``hotline``, every other one also in
``hotline_expert``), through the state's own ``QueueMemberAdded`` handling, and a day of
``--calls`` finished calls seeded as a bridge seeds them at start (``CtiState.seed_history``,
from the call log): offered over the last 23 h, 90 % answered, waits 0–40 s.

**ours**: ``cti.picture.picture`` (queue views, the counts behind the rates, seats, calls, roster)
and its JSON, as the desk posts it. **baseline**: the standard library's ``json.dumps`` of the same
picture alone: what the picture would cost if building it were free. The ratio says how much the
building adds to the encoding the board needs anyway. Before the answer figures were kept as calls
came and went (2026-12-05), each figure recounted the day: at 50 000 calls that was 8.5 ms per
queue per count, four counts per picture.

Run from the repo root: ``.venv/bin/python bench/live_picture.py [--seats 500] [--calls 50000]``.
Last line: ``seats=… calls=… samples=… picture_p50_ms=… picture_p99_ms=… json_p50_ms=… ratio=…``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cti import events as ev  # noqa: E402
from cti.picture import picture  # noqa: E402
from cti.state import CtiState  # noqa: E402
from hotline.calls import FinishedCall  # noqa: E402
from testkit.benchrun import pct  # noqa: E402

QUEUES = ("hotline", "hotline_expert")


def centre(seats: int, calls: int, now: float, seed: int) -> CtiState:
    state = CtiState(clock=lambda: now)
    for i in range(seats):
        seat = f"{8001 + i}"
        for queue in QUEUES[: 1 + (i % 2)]:
            state.handle(ev.QueueMemberAdded(ts=now - 3600, queue=queue, member_name=seat, interface=f"PJSIP/{seat}"))
    rnd, day = random.Random(seed), []
    for n in range(calls):
        offered = now - 23 * 3600 + n * (23 * 3600 / calls)
        answered = rnd.random() < 0.9
        wait = rnd.randrange(0, 40_000)
        day.append(FinishedCall(call_id=f"1796400000.{n}", caller_num="13953012345", offered_at=offered,
                                ended_at=offered + 120, queue=QUEUES[n % 2], wait_ms=wait,
                                answered_at=offered + wait / 1000 if answered else None, abandoned=not answered))
    assert state.seed_history(day) == calls
    return state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seats", type=int, default=500)
    ap.add_argument("--calls", type=int, default=50_000, help="finished calls of the last 23 h")
    ap.add_argument("--samples", type=int, default=400, help="pictures timed (p99: the 4th worst of 400)")
    ap.add_argument("--seed", type=int, default=15)
    args = ap.parse_args()
    now = time.time()
    state = centre(args.seats, args.calls, now, args.seed)
    owned = list(state.seats)
    ours, base, size = [], [], 0
    for i in range(args.samples + 20):  # the first 20 warm up
        at = now + i * 0.5  # twice a second, as the desk posts
        t0 = time.perf_counter()
        p = picture(state, server="ast1", queues=QUEUES, owned=owned, now=at, logged_in=True)
        text = json.dumps(p, ensure_ascii=False, separators=(",", ":"))
        t1 = time.perf_counter()
        json.dumps(p, ensure_ascii=False, separators=(",", ":"))
        t2 = time.perf_counter()
        if i >= 20:
            ours.append((t1 - t0) * 1000)
            base.append((t2 - t1) * 1000)
            size = len(text.encode())
    print(f"{args.seats} seats, {args.calls} calls of the day: a picture of {size / 1024:.0f} KiB; built and "
          f"encoded p50 {pct(ours, 50):.2f} ms, p99 {pct(ours, 99):.2f} ms; encoding alone p50 {pct(base, 50):.2f} ms")
    ratio = pct(ours, 50) / pct(base, 50)
    print(f"seats={args.seats} calls={args.calls} samples={len(ours)} picture_p50_ms={pct(ours, 50):.2f} "
          f"picture_p99_ms={pct(ours, 99):.2f} json_p50_ms={pct(base, 50):.2f} ratio={ratio:.2f}")


if __name__ == "__main__":
    main()

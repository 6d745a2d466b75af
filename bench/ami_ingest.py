"""AMI ingest benchmark: a large recorded stream through the CTI path vs panoramisk's bare parse.

The stream is the spike's real Asterisk 22 transcripts (tests/fixtures/ami/spike/: every event,
unfiltered: VarSet, Newexten, RTCP… as a real AMI user without eventfilters receives them), plus the
raw transcripts recorded from the project's own Asterisk (tests/fixtures/ami/, tests/cti/transcripts/),
replicated with renumbered Uniqueids/Linkedids and shifted Timestamps until it holds at least
100 000 events, with a Chinese caller name, cut into 4 KiB TCP-sized chunks (cuts fall
anywhere, inside characters too).

* ours: cti.protocol.FrameParser → cti.protocol.EventFactory → cti.state.CtiState → the
  in-process bus (every domain event published with its seq) — the whole bridge minus the socket;
* bare: the same chunks into panoramisk 1.4's own ``AMIProtocol.data_received`` (decode,
  split, ``Message.from_line``, ``handle_message``) with a no-op dispatcher.

Run from the repo root: ``.venv/bin/python bench/ami_ingest.py [--min-events N]``.
Last line: ``events_per_s=… bare_events_per_s=… ratio=…`` (goal: ratio ≥ 0.8).
"""

from __future__ import annotations

import argparse
import gc
import re
import sys
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from panoramisk.ami_protocol import AMIProtocol  # noqa: E402

from cti.protocol import EventFactory, FrameParser  # noqa: E402
from cti.state import CtiState  # noqa: E402
from hotline.bus import InProcessBus  # noqa: E402
from testkit import ami  # noqa: E402

ID_KEYS = re.compile(r"(Uniqueid|Linkedid)$")
TS = re.compile(rb"Timestamp: (\d+\.\d+)")


def jsonl_template(path: Path) -> tuple[bytes, set[str]]:
    """One spike log → its AMI frames (no greeting) and the ids to renumber, bridges' included."""
    events = [d for d in ami.load_jsonl(path) if not str(d.get("Event", "")).startswith("_")]
    ids = {v for d in events for k, v in d.items() if ID_KEYS.search(k) and isinstance(v, str) and v}
    wire = ami.to_wire(events, greeting=False).replace(b"Citizen 1", "张三丰".encode())  # multi-byte names
    return wire, ids


def raw_template(path: Path) -> tuple[bytes, set[str]]:
    """One raw transcript → its event frames and the channels' ids to renumber."""
    frames = ami.event_frames(path.read_bytes())
    return frames, {m.decode() for m in re.findall(rb"(?:Uniqueid|Linkedid): (\d+\.\d+)", frames)}


def build_stream(min_events: int) -> tuple[bytes, int, list[str]]:
    templates = []
    sources = []
    for p in (ami.FLOWS, ami.THREE_PARTY):
        templates.append(jsonl_template(p))
        sources.append(p.name)
    for p in ami.raw_transcripts():
        templates.append(raw_template(p))
        sources.append(p.name)
    if not templates:
        raise SystemExit("no transcripts found")
    per_round = sum(t.count(b"\r\n\r\n") for t, _ in templates)
    rounds = -(-min_events // per_round)
    parts = []
    for k in range(rounds):
        for t, ids in templates:
            chunk = t
            # renumber every call's ids (longest first: 17.10 before 17.1; new ids share no prefix)
            for old in sorted(ids, key=len, reverse=True):
                chunk = chunk.replace(old.encode(), f"{3000000000 + k}.{old.rpartition('.')[2]}".encode())
            off = k * 60.0
            chunk = TS.sub(lambda m, off=off: b"Timestamp: %.6f" % (float(m.group(1)) + off), chunk)
            parts.append(chunk)
    stream = ami.GREETING + b"".join(parts)
    return stream, rounds * per_round, sources


def chunked(data: bytes, size: int = 4096) -> list[bytes]:
    return list(ami.chunks(data, size))


def run_ours(chunks: list[bytes]) -> tuple[float, int, int]:
    parser = FrameParser()
    factory = EventFactory()
    state = CtiState()
    bus = InProcessBus(capacity=10000)
    handle, build, publish = state.handle, factory.build, bus.publish_nowait
    n = 0
    t = time.perf_counter()
    for c in chunks:
        now = time.time()
        for frame in parser.iter_feed(c):
            n += 1
            for de in handle(build(frame, now)):
                publish(de)
    dt = time.perf_counter() - t
    return dt, n, bus.last_seq


class _NullFactory:
    save_stream = None

    def dispatch(self, message) -> None:
        pass


class _NullTransport:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def run_bare(chunks: list[bytes]) -> tuple[float, int]:
    proto = AMIProtocol()
    proto.connection_made(_NullTransport())
    proto.factory = _NullFactory()
    proto.queue = deque()
    proto.encoding = "utf8"
    count = [0]
    orig = proto.handle_message

    def counting(message) -> None:
        count[0] += 1
        orig(message)

    proto.handle_message = counting
    t = time.perf_counter()
    for c in chunks:
        proto.data_received(c)
    return time.perf_counter() - t, count[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-events", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    stream, n_events, sources = build_stream(args.min_events)
    chunks = chunked(stream)
    print(f"stream: {n_events} events, {len(stream) / 1e6:.1f} MB, {len(chunks)} chunks of 4 KiB; from {sources}")
    best_ours = best_bare = float("inf")
    seqs = n_ours = n_bare = 0
    for _ in range(args.repeat):
        gc.collect()
        dt, n_ours, seqs = run_ours(chunks)
        best_ours = min(best_ours, dt)
        gc.collect()
        dt, n_bare = run_bare(chunks)
        best_bare = min(best_bare, dt)
    if n_ours != n_events:
        raise SystemExit(f"ours parsed {n_ours} events, expected {n_events}")
    ours = n_ours / best_ours
    bare = n_bare / best_bare
    print(f"ours: {n_ours} events in {best_ours:.3f} s, {seqs} domain events published (parser+events+state+bus)")
    print(f"bare panoramisk: {n_bare} messages in {best_bare:.3f} s (decode+split+Message, no dispatch)")
    print(f"events_per_s={ours:.0f} bare_events_per_s={bare:.0f} ratio={ours / bare:.2f}")


if __name__ == "__main__":
    main()

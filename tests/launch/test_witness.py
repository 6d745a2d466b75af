"""The witness's edge (launch/witness.py): the CEL file followed through torn lines and rotation,
missed calls filed once through the durable path, the call log's better report kept whatever the
order, and the comparison on the health page."""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent_ui import health
from cti import events as ev
from cti.witness import parse
from hotline import reconciliation
from hotline.calls import FinishedCall
from hotline.outbox import Outbox
from hotline.settings import Settings
from launch import compose
from launch.filing import CallFiler
from launch.witness import CallWitness, CelTail

CEL = Path(__file__).resolve().parents[1] / "fixtures" / "cel"
LINES = (CEL / "bridge_down.json").read_bytes().splitlines(keepends=True)
ANSWERED, ABANDONED = "13953018801", "13953018802"
LATER = 1796433300.0  # after the recorded calls ended


@pytest.fixture
def parts(tmp_path: Path):
    settings = Settings(var_dir=tmp_path / "var", witness_dir=tmp_path / "cel", witness_grace_s=5,
                        witness_check_s=60)
    settings.asterisk_events_dir.mkdir(parents=True)
    node = compose.build(settings, set())
    filer = CallFiler(node.store.calls, node.engine, settings, Outbox(settings.call_outbox_dir))
    yield settings, node, filer
    node.engine.dispose()


def test_the_tail_waits_for_a_whole_line_and_follows_a_rotated_file(tmp_path: Path) -> None:
    path = tmp_path / "hotline-cel.json"
    path.write_bytes(b"".join(LINES[:3]) + LINES[3][:20])
    tail = CelTail(tmp_path)
    assert tail.read(since=0) == [line.rstrip(b"\n") for line in LINES[:3]]
    with open(path, "ab") as f:
        f.write(LINES[3][20:] + LINES[4])
    assert tail.read(since=0) == [LINES[3].rstrip(b"\n"), LINES[4].rstrip(b"\n")]
    assert tail.read(since=0) == []
    os.replace(path, tmp_path / "old.json.1")  # rotated away; Asterisk opens a new file
    path.write_bytes(LINES[5])
    assert tail.read(since=0) == [LINES[5].rstrip(b"\n")]
    assert tail.read_from_start


def test_at_start_the_tail_skips_to_a_day_back_in_a_long_file(tmp_path: Path) -> None:
    old = b'{"eventtype":"ANSWER","eventtime":1000.0,"uniqueid":"1.1","linkedid":"1.1"}\n' * 20_000
    (tmp_path / "hotline-cel.json").write_bytes(old + b"".join(LINES))
    tail = CelTail(tmp_path)
    got = tail.read(since=LATER - 3600)
    assert got[-len(LINES):] == [line.rstrip(b"\n") for line in LINES] and len(got) < len(LINES) + 1000
    assert not tail.read_from_start  # what came before was not read: the comparison starts later


def test_missed_calls_are_filed_once_and_reported(parts) -> None:
    settings, node, filer = parts
    (settings.asterisk_events_dir / "hotline-cel.json").write_bytes(b"".join(LINES))
    w = CallWitness(settings, node.store.calls, filer, clock=lambda: LATER)
    w.read()
    assert sorted(w.settle()) == sorted(c.call_id for c in w.witness.finished(LATER))
    assert w.settle() == []  # settled: not filed again
    rows = {r["caller"]: r for r in node.store.calls.list()}
    assert rows[ANSWERED]["reconstructed"] and rows[ANSWERED]["seat"] == "8001"
    assert rows[ABANDONED]["abandoned"] and len(Outbox(settings.call_outbox_dir)) == 0
    report = w.check()
    assert report.checked == 2 and report.differences == 0 and report.rebuilt_total == 2
    assert reconciliation.read(settings.var_dir) == report
    check = asyncio.run(health.witness_probe(settings)())
    assert check.state == "ok" and "2 通" in check.detail and "补录 2 通" in check.detail


def test_a_call_not_yet_past_its_grace_is_left_to_the_bridge(parts) -> None:
    settings, node, filer = parts
    (settings.asterisk_events_dir / "hotline-cel.json").write_bytes(b"".join(LINES))
    w = CallWitness(settings, node.store.calls, filer, clock=lambda: 1796433101.77 + 1)
    w.read()
    assert w.settle() == []  # both ended less than 5 s ago (the bridge files its own in milliseconds)


def test_what_the_bridge_saw_stays_and_its_lost_call_is_completed(parts) -> None:
    settings, node, filer = parts
    (settings.asterisk_events_dir / "hotline-cel.json").write_bytes(b"".join(LINES))
    w = CallWitness(settings, node.store.calls, filer, clock=lambda: LATER)
    w.read()
    rebuilt = {c.caller_num: c for c in w.witness.finished(LATER)}
    seen = replace(rebuilt[ANSWERED], reconstructed=False, operator="op1024", job_number="1024", hold_s=2.0)
    lost = replace(rebuilt[ABANDONED], reconstructed=False, abandoned=False, lost=True, wait_ms=None)
    calls = node.store.calls
    calls.record(seen)
    calls.record(lost)
    assert w.settle() == [lost.call_id]  # the bridge had it as lost: Asterisk saw it end
    rows = {r["caller"]: r for r in calls.list()}
    assert rows[ANSWERED]["operator"] == "op1024" and not rows[ANSWERED]["reconstructed"]
    assert rows[ABANDONED]["abandoned"] and rows[ABANDONED]["reconstructed"] and not rows[ABANDONED]["lost"]
    # the bridge's outbox delivers its stale reports afterwards: neither undoes the better one
    calls.record(lost)
    calls.record(rebuilt[ANSWERED])
    rows = {r["caller"]: r for r in calls.list()}
    assert rows[ABANDONED]["abandoned"] and rows[ANSWERED]["operator"] == "op1024"
    assert rows[ANSWERED]["hold_s"] == 2.0


def test_differences_and_missing_records_turn_the_health_check_red(parts, tmp_path: Path) -> None:
    settings, node, filer = parts
    w = CallWitness(settings, node.store.calls, filer, clock=lambda: LATER)
    node.store.calls.record(FinishedCall(call_id="stray.1", caller_num="13953010000", offered_at=LATER - 600,
                                         ended_at=LATER - 500))
    report = w.check()
    assert report.unknown_to_asterisk == ["stray.1"] and report.differences == 1
    check = asyncio.run(health.witness_probe(settings)())
    assert check.state == "down" and "Asterisk 无记录 1 通" in check.detail
    gone = Settings(var_dir=settings.var_dir, witness_dir=tmp_path / "nowhere")
    CallWitness(gone, node.store.calls, filer, clock=lambda: LATER).check()
    assert "找不到" in asyncio.run(health.witness_probe(gone)()).detail



def test_a_server_of_several_checks_its_own_calls_not_the_other_servers(parts) -> None:
    """The call log is the centre's: server hz1's witness must not call hz2's calls missing from its
    records (they are in hz2's), nor miss its own."""
    settings, node, filer = parts
    hz1 = settings.model_copy(update={"asterisk_systemname": "hz1", "seats": ["8001"]})
    for call_id, seat in (("hz2-1796472076.0", "8101"), ("hz1-1796472077.1", "8001"), ("1796472078.900001", "8001"),
                          ("1796472079.900002", "8101")):
        node.store.calls.record(FinishedCall(call_id=call_id, caller_num="13953010000", offered_at=LATER - 600,
                                             ended_at=LATER - 500, seat=seat))
    report = CallWitness(hz1, node.store.calls, filer, clock=lambda: LATER).check()
    # its own, and the callback a web node numbered for one of its seats: in the call log, not in its records
    assert sorted(report.unknown_to_asterisk) == ["1796472078.900001", "hz1-1796472077.1"]


class _Link:
    """The bridge's AMI link as the witness uses it: logged in or not, and the live channels."""

    def __init__(self, live: list[str], logged_in: bool = True) -> None:
        self.live, self.logged_in, self.asked = live, logged_in, 0

    async def query(self, action: dict) -> list:
        assert action == {"Action": "CoreShowChannels"}
        self.asked += 1
        return [ev.CoreShowChannel(ts=LATER, uniqueid=u) for u in self.live]


def test_a_call_asterisk_never_ended_is_filed_lost_once_asterisk_no_longer_has_it(parts) -> None:
    settings, node, filer = parts
    cut = [line for line in LINES if not (b'"HANGUP"' in line and b"trunk-in-00000000" in line)]
    (settings.asterisk_events_dir / "hotline-cel.json").write_bytes(b"".join(cut))
    bridge = SimpleNamespace(link=_Link(live=[]))
    w = CallWitness(settings, node.store.calls, filer, bridge, clock=lambda: LATER)
    w.read()
    (uid,) = w.witness.unfinished(LATER)
    bridge.link.live, bridge.link.logged_in = [uid], False
    assert asyncio.run(w.settle_unfinished()) == [] and bridge.link.asked == 0  # only Asterisk can say
    bridge.link.logged_in = True
    assert asyncio.run(w.settle_unfinished()) == [] and bridge.link.asked == 1  # still live: not lost
    bridge.link.live = []
    assert asyncio.run(w.settle_unfinished()) == [uid]
    assert asyncio.run(w.settle_unfinished()) == []
    row = next(r for r in node.store.calls.list() if r["id"] == uid)
    assert row["lost"] and row["reconstructed"] and row["seat"] == "8001"


def test_a_large_or_old_file_is_archived_read_to_its_end_and_old_archives_go(tmp_path: Path) -> None:
    path = tmp_path / "hotline-cel.json"
    path.write_bytes(b"".join(LINES[:4]))
    tail = CelTail(tmp_path)
    assert len(tail.read(since=0)) == 4
    with open(path, "ab") as f:
        f.write(b"".join(LINES[4:6]))  # written after the last read, before the rotation
    first = parse(LINES[0])
    assert tail.rotate(first.at + 60) == []  # young and small: left alone
    got = tail.rotate(first.at + 25 * 3600)  # a day old: archived, its unread lines handed over
    assert got == [line.rstrip(b"\n") for line in LINES[4:6]] and not path.exists()
    (archive,) = tmp_path.glob("*.json.old")
    with open(archive, "ab") as f:
        f.write(LINES[6])  # Asterisk opened the old name just before the rename
    path.write_bytes(LINES[7])  # its next event starts a new file
    assert tail.read(since=0) == [LINES[6].rstrip(b"\n"), LINES[7].rstrip(b"\n")]
    assert tail.read(since=0) == []  # the archive is done with
    os.utime(archive, (first.at, first.at))
    tail.rotate(first.at + 200 * 86400)
    assert not archive.exists()


def test_at_start_the_archives_of_the_last_day_are_read_too(tmp_path: Path) -> None:
    (tmp_path / "hotline-cel-1.json.old").write_bytes(b"".join(LINES[:10]))
    (tmp_path / "hotline-cel.json").write_bytes(b"".join(LINES[10:]))
    tail = CelTail(tmp_path)
    assert tail.read(since=0) == [line.rstrip(b"\n") for line in LINES] and tail.read_from_start
    assert tail.read(since=0) == []


def test_hotline_calls_check_says_what_differs_and_repairs(tmp_path: Path, monkeypatch, capsys) -> None:
    from launch import cli

    events = tmp_path / "cel"
    events.mkdir()
    (events / "hotline-cel.json").write_bytes(b"".join(recent(LINES)))
    monkeypatch.setenv("HOTLINE_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("HOTLINE_WITNESS_DIR", str(events))
    cli.get_settings.cache_clear()
    try:
        assert cli.main(["calls", "check"]) == 1
        out = capsys.readouterr().out
        assert "Asterisk 记录 2 通" in out and "通话记录缺少 2" in out
        assert cli.main(["calls", "check", "--repair", "--json"]) == 0
        got = json.loads(capsys.readouterr().out)
        assert got["checked"] == 2 and len(got["rebuilt_now"]) == 2 and got["missing"] == []
        assert cli.main(["calls", "check"]) == 0
    finally:
        cli.get_settings.cache_clear()


def recent(lines: list[bytes]) -> list[bytes]:
    """The recorded lines moved in time so that their calls ended an hour ago (the CLI reads the clock)."""
    events = [json.loads(line) for line in lines]
    shift = time.time() - 3600 - max(e["eventtime"] for e in events)
    return [json.dumps({**e, "eventtime": e["eventtime"] + shift}).encode() + b"\n" for e in events]

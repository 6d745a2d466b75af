"""The composition root: every entry point wires the same parts. A standalone CTI bridge writes
the call log and files the recording; a standalone FastAGI server stores the survey and the
callback requests; the web node's housekeeping reminds once per ticket and colour."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hotline.bus import InProcessBus
from hotline.identity import Principal, Role
from hotline.settings import Settings
from launch import compose
from testkit.agi import AgiClient
from tests.cti.conftest import Script
from tests.cti.fake_ami import FakeAmi
from tests.ticketing.conftest import backend, clock, depts, engine, intake, people, postgres_server, svc  # noqa: F401
from ticketing.housekeeping import Housekeeping
from ticketing.schemas import TicketReminder

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]
HEZE = "13853012345"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def until(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await asyncio.to_thread(check)
        if got:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError("not in time")


def test_roles_come_from_the_setting_and_the_entry_point(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, services=["cti", "transcribe"])
    assert compose.roles_of(settings, web=True) == {"cti", "web"}  # transcribe: worker processes beside it
    assert compose.roles_of(settings, web=False) == {"cti"}
    with pytest.raises(ValueError, match="unknown roles"):
        compose.build(settings, {"cti", "fax"})


async def test_a_standalone_bridge_writes_the_call_log_and_files_the_recording(tmp_path: Path) -> None:
    fake = await FakeAmi().start()
    settings = Settings(var_dir=tmp_path / "var", ami_port=fake.port, ami_secret="pw")
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(compose.serve(settings, {"cti"}, started=started, stop=stop))
    try:
        await asyncio.wait_for(started.wait(), 20)
        s = Script(t0=time.time())
        s.member("QueueMemberAdded", 0.0, "8001")
        s.join(0.1, "1.1", name="赵六")
        s.called(0.2, "1.1", "8001", "1.2")
        s.connect(2.0, "1.1", "8001", "1.2", hold_s=2)
        s.hangup(9.0, "1.2", "PJSIP/8001-1.2", linked="1.1")
        s.hangup(9.01, "1.1")
        await until(lambda: fake.writers)
        await fake.push(s.wire(greeting=False))
        store = compose.build(settings, set()).store  # another process reading the same database
        [row] = await until(lambda: store.calls.list())
        assert row["seat"] == "8001" and row["caller_name"] == "赵六" and row["wait_s"] == 1.9
        store.engine.dispose()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await fake.stop()


async def test_a_standalone_fastagi_server_stores_the_survey_and_the_callback_request(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var", agi_port=free_port())
    node = compose.build(settings, set())
    ticket = node.store.tickets.create(intake(caller_number=HEZE), Principal("op", Role.OPERATOR))
    node.store.calls.link_ticket("88.1", ticket.id)  # the call that produced the ticket
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(compose.serve(settings, {"agi"}, started=started, stop=stop))
    try:
        await asyncio.wait_for(started.wait(), 20)
        lookup = AgiClient("127.0.0.1", settings.agi_port, callerid=HEZE, variables={"HL_SEATS": "1"})
        await lookup.run()
        assert lookup.variables["__HL_LOCATION"] == "山东省菏泽市"
        await AgiClient("127.0.0.1", settings.agi_port, script="survey", keys=["3"], uniqueid="88.1",
                        callerid=HEZE).run()
        await AgiClient("127.0.0.1", settings.agi_port, script="closed", keys=["2"], uniqueid="88.2", callerid=HEZE,
                        extra_env={"agi_arg_1": "after_hours"}).run()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    rows = {r["id"]: r for r in node.store.calls.callbacks()} | {r["id"]: r for r in node.store.calls.list()}
    assert rows["88.2"]["callback_requested"] and rows["88.2"]["callback_reason"] == "after_hours"
    assert node.store.calls.ticket_of("88.1") == ticket.id
    history = node.store.tickets.history(ticket.id, Principal("lead", Role.LEAD))
    assert any(e.action == "survey" and "不满意" in e.note for e in history)
    node.engine.dispose()


def test_the_web_nodes_own_agi_server_puts_a_voice_message_on_the_callback_list(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(var_dir=tmp_path / "var", services=["agi"], agi_port=port, service_hours="00:00-00:01")
    with TestClient(compose.web_app(settings)) as client:
        # Asterisk's side of an after-hours call: 1 (留言), eight seconds said, then "#"
        session = AgiClient("127.0.0.1", port, script="closed", keys=["1"], uniqueid="1795400000.3",
                            extra_env={"agi_arg_1": "after_hours"})
        commands = asyncio.run(session.run())
        assert any(c[:2] == ["RECORD", "FILE"] for c in commands)
        [row] = [r for r in client.app.state.store.calls.callbacks() if r["id"] == "1795400000.3"]
    assert row["message"] and row["recording_id"].startswith("message-") and row["callback_reason"] == "after_hours"


def test_deadline_reminders_once_per_colour(svc, people, clock) -> None:  # noqa: F811
    chores = Housekeeping(svc, InProcessBus())
    t = svc.tickets.create(intake(), people.operator)  # Monday: to be transferred by Wednesday
    assert chores.sweep_once() == []
    clock.advance(days=1)  # Tuesday: one working day left
    [yellow] = chores.sweep_once()
    assert isinstance(yellow, TicketReminder) and (yellow.ticket_id, yellow.state) == (t.id, "yellow")
    assert chores.sweep_once() == []  # told once
    clock.advance(days=2)  # Thursday: overdue
    [red] = chores.sweep_once()
    assert red.state == "red" and red.type == "alert" and red.kind == "ticket_deadline"


async def test_a_finished_call_on_the_bus_reaches_the_call_log_and_the_recordings_catalog(tmp_path: Path) -> None:
    from cti.domain import CallCompleted
    from hotline.calls import FinishedCall
    from recordings.models import Recording

    node = compose.build(Settings(var_dir=tmp_path / "var"), set())
    node.follow_finished_calls()
    base = "hotline-20261123-101500-1763866021.42"
    call = FinishedCall(call_id="1763866021.42", caller_num=HEZE, queue="hotline", seat="8001", operator="op1024",
                        job_number="1024", offered_at=1763866021.0, answered_at=1763866024.0,
                        ended_at=1763866090.0, wait_ms=3000, within_rule=True, talk_s=66.0,
                        recordings=(f"{base}.wav",), recording_base=base, survey=1)
    node.bus.publish_nowait(CallCompleted(at=call.ended_at, call_id=call.call_id, call=call))
    [row] = await until(node.store.calls.list)
    assert (row["seat"], row["operator"], row["job_number"], row["survey"]) == ("8001", "op1024", "1024", 1)
    assert row["recording_id"] == base

    def filed():
        from sqlmodel import Session, select

        with Session(node.engine) as s:
            return s.exec(select(Recording).where(Recording.base == base)).first()

    rec = await until(filed)
    assert (rec.status, rec.seat, rec.operator, rec.survey) == ("pending", "8001", "1024", "1")  # its files follow
    await node.stop()


def test_processes_started_together_on_a_new_database_all_come_up(tmp_path: Path, backend: str,  # noqa: F811
                                                                   request) -> None:
    """web, cti and agi started at once (systemd, a supervisor): one migrates, the others wait for it."""
    env = {**os.environ, "HOTLINE_VAR_DIR": str(tmp_path / "var")}
    if backend == "postgres":
        env["HOTLINE_DATABASE_URL"] = request.getfixturevalue("postgres_server").create_database()
    go = time.time() + 3  # every process imports first, then all build at the same instant
    code = ("import sys, time; from hotline.settings import Settings; from launch import compose; "
            f"time.sleep(max(0, {go} - time.time())); "
            "node = compose.build(Settings(), set(sys.argv[1].split(',')) - {''}); node.engine.dispose()")
    procs = [subprocess.Popen([sys.executable, "-c", code, roles], env=env, cwd=ROOT, stderr=subprocess.PIPE,
                              text=True) for roles in ("web", "", "", "web")]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], "\n".join(e[-600:] for e in errors)

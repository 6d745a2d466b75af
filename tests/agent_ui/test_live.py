"""The whole wiring on a real Asterisk: AMI → CTI → bus → websocket and call log; AGI lookup and
survey → call log; the live REST views."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hotline.identity import Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import Bearer, use
from tests.conftest import speech

HEZE = "13953012345"


@pytest.fixture
def app(pbx, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    live = Settings(var_dir=tmp_path / "var", ami_secret=settings.resolved_ami_secret(), services=["cti", "agi"])
    with use(TestClient(web_app(live))) as client:
        cti = client.app.state.cti
        deadline = time.monotonic() + 15
        while not cti.link.logged_in:
            assert time.monotonic() < deadline, "the bridge did not log in to AMI"
            time.sleep(0.1)
        yield client


def auth(username: str, role: Role) -> dict[str, str]:
    return dict(Bearer(username, role))


async def poll(fn, timeout: float = 40, step: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        await asyncio.sleep(step)
    raise AssertionError("condition not met in time")


@pytest.mark.asterisk
async def test_a_call_pops_at_its_operator_and_lands_in_the_call_log_with_its_survey(app, phones, settings,
                                                                                   audio_dir) -> None:
    seat = settings.seats[0]
    cti = app.app.state.cti
    phones.seat(seat, settings.seat_password(seat), speech(audio_dir, ("say", "agent_cmn"), ("sil", 60)),
                ring_ms=1000, talk_ms=6000)
    app.portal.call(lambda: cti.actions.sign_in(seat, operator="op1024", job_number="1024"))
    assert app.app.state.seat_of("op1024") == seat

    with app.websocket_connect("/ws", headers=auth("op1024", Role.OPERATOR)) as mine, \
            app.websocket_connect("/ws", headers=auth("op1025", Role.OPERATOR)) as other:
        assert mine.receive_json()["type"] == other.receive_json()["type"] == "hello"
        caller = phones.callers([HEZE], settings.hotline_number, speech(audio_dir, ("sil", 30)),
                                dtmf="2", dtmf_mode="rfc4733", dtmf_at_ms=1000 + 6000 + 2500)
        pop = await asyncio.to_thread(_first, mine, "screen_pop")
        assert pop["seat"] == seat and pop["caller_num"] == HEZE and pop["operator"] == "op1024"
        assert pop["variables"]["HL_LOCATION"] == "山东省菏泽市"  # the AGI lookup, carried by AgentCalled
        other.send_json({"type": "ping"})
        assert other.receive_json() == {"type": "pong"}  # 8002's operator got nothing of this call
        assert await asyncio.to_thread(caller.wait, 60) == 0, caller.errors()[-400:]

    lead = auth("lead", Role.LEAD)
    rows = await poll(lambda: [r for r in app.get("/api/calls", headers=lead).json()
                               if r["caller"] == HEZE and r["survey"] is not None])
    call = rows[0]
    assert call["seat"] == seat and call["operator"] == "op1024" and call["queue"] == settings.queue_name
    assert call["job_number"] == "1024"  # who answered, from the sign-in: recordings are filed under it
    # picked up after its 1 s ring; the job number (1024) is then announced before the bridge, which
    # counts as talk, not as waiting
    assert call["within_15s"] is True and 0.8 <= call["wait_s"] <= 2.5 and 5 <= call["talk_s"] <= 9
    assert call["survey"] == 2 and call["survey_label"] == "基本满意"
    assert call["location"] == "山东省菏泽市" and len(call["recordings"]) == 3

    [queue] = [q for q in app.get("/api/queues", headers=lead).json() if q["queue"] == settings.queue_name]
    assert queue["answered"] == 1 and queue["pct_within_rule_today"] == 100.0
    mine_only = app.get("/api/seats", headers=auth("op1024", Role.OPERATOR)).json()
    assert [s["seat"] for s in mine_only] == [seat]
    assert app.get("/api/calls", headers=auth("op1025", Role.OPERATOR)).json() == []  # not their call
    assert app.get("/api/calls/live", headers=auth("op1024", Role.OPERATOR)).status_code == 403


def _first(ws, kind: str) -> dict:
    while True:
        msg = ws.receive_json()
        if msg.get("type") == kind:
            return msg


def test_every_live_route_refuses_anonymous_and_wrong_roles(tmp_path: Path) -> None:
    with use(TestClient(web_app(Settings(var_dir=tmp_path, services=[])))) as client:
        for path in ("/api/queues", "/api/seats", "/api/calls", "/api/calls/live", "/api/callbacks"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers=auth("d", Role.DEPARTMENT)).status_code == 403, path
        assert client.post("/api/callbacks/x/done", json={}).status_code == 401
        assert client.get("/api/queues", headers=auth("lead", Role.LEAD)).status_code == 503  # no bridge here

"""A lead reads a live call's transcript (issue #16): only a call of their own centre, every opening
in the recordings' access log (once per lead and call while the page keeps asking), never an
operator; the operator's websocket carries the transcript to the call's seat and to nobody else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from agent_ui.ws import Audience
from hotline.centres import scope_of
from hotline.identity import Principal, Role
from hotline.settings import Settings
from launch.compose import web_app
from recordings import live_legs
from recordings.models import AccessLog
from testkit.auth import Bearer, use
from tests.agent_ui.test_centres import CENTRES, NORTH, SOUTH, Bridge

LINES = [{"line": 1, "text": "도로 에 구멍", "start": 0.4, "end": 1.9}]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with use(TestClient(web_app(Settings(var_dir=tmp_path, services=[], centres=CENTRES)))) as c:
        c.app.state.cti = Bridge()
        engine = c.app.state.engine
        live_legs.save(engine, call_id="n1", speaker="citizen", seat="8001", lines=LINES, state="listening")
        live_legs.save(engine, call_id="n1", speaker="operator", seat="8001", lines=[], state="listening")
        live_legs.save(engine, call_id="s1", speaker="citizen", seat="8101", lines=LINES, state="complete")
        yield c
        c.app.state.cti = None


def log_rows(c: TestClient) -> list[tuple[str, str]]:
    with Session(c.app.state.engine) as s:
        return [(r.username, r.detail) for r in s.exec(select(AccessLog).where(AccessLog.action == "live"))]


def test_a_lead_reads_their_centres_live_call_and_the_access_is_logged_once(client: TestClient) -> None:
    got = client.get("/api/lead/live/n1", headers=NORTH)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["seat"] == "8001" and [ln["text"] for ln in body["lines"]] == ["도로 에 구멍"]
    assert body["legs"]["citizen"]["label"] == "转写中"
    for _ in range(3):  # the page asks every second: one log row, not one a second
        assert client.get("/api/lead/live/n1", headers=NORTH).status_code == 200
    assert log_rows(client) == [("lead_n", "通话 n1")]


def test_another_centres_call_and_an_unknown_one_are_not_found_and_operators_are_refused(client: TestClient) -> None:
    assert client.get("/api/lead/live/s1", headers=NORTH).status_code == 404
    assert client.get("/api/lead/live/zz", headers=NORTH).status_code == 404
    assert client.get("/api/lead/live/s1", headers=SOUTH).status_code == 200
    op = Bearer("op8001", Role.OPERATOR)
    assert client.get("/api/lead/live/n1", headers=op).status_code == 403
    assert client.get("/api/lead/live/" + "x" * 65, headers=NORTH).status_code == 422
    assert log_rows(client) == [("lead_s", "通话 s1")]


def test_the_live_transcript_on_the_websocket_reaches_the_calls_seat_only() -> None:
    line = {"type": "live_transcript", "event": "TranscriptLine", "call_id": "n1", "seat": "8001", "text": "…"}
    seats = {"op8001": "8001", "op8002": "8002"}.get

    def sees(username: str, role: Role) -> bool:
        who = Principal(username=username, role=role, display_name=username)
        return Audience(who, seats, scope=scope_of("", CENTRES)).visible(line)

    assert sees("op8001", Role.OPERATOR)
    assert not sees("op8002", Role.OPERATOR)
    assert not sees("lead_n", Role.LEAD) and not sees("admin", Role.ADMIN)  # the logged route, not the broadcast
    status = {"type": "listen_status", "node": "n", "address": "127.0.0.1:9293"}
    assert not Audience(Principal(username="admin", role=Role.ADMIN, display_name="a"), seats).visible(status)

"""The websocket: authentication, per-role visibility, replay by seq, resync on a gap."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from agent_ui.hub import Hub
from agent_ui.ws import Audience
from cti.domain import CallAnswered, LinkStatus, SeatRinging
from hotline.bus import InProcessBus
from hotline.identity import Principal, Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import Bearer, use

SEATS = {"op1024": "8001", "op1025": "8002"}


def pop(call_id: str, seat: str, at: float = 1.0) -> SeatRinging:
    return SeatRinging(at=at, call_id=call_id, seat=seat, queue="hotline", caller_num="13953012345",
                       caller_name="", waited_ms=1200, variables={"HL_LOCATION": "山东省菏泽市"})


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with use(TestClient(web_app(Settings(var_dir=tmp_path_factory.mktemp("var"), services=[])))) as c:
        c.app.state.roster = SEATS.copy
        yield c


@pytest.fixture
def client(app_client: TestClient) -> TestClient:
    state = app_client.app.state
    state.bus = InProcessBus()  # each test counts seqs from 1
    app_client.portal.call(state.hub.stop)
    state.hub = Hub(state.bus, lambda: state.roster())  # the node's one reader, on the new bus
    return app_client


def bearer(username: str, role: Role) -> dict[str, str]:
    return dict(Bearer(username, role))


def publish(client: TestClient, *events) -> None:
    for e in events:
        client.app.state.bus.publish_nowait(e)


def test_anonymous_and_forged_connections_are_refused(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nonsense.00"}):
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws", headers=headers):
            pass
        assert refused.value.code == 1008


def test_cross_site_origin_is_refused(client: TestClient) -> None:
    headers = {**bearer("lead", Role.LEAD), "Origin": "http://evil.example"}
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws", headers=headers):
        pass


def test_an_operator_sees_only_their_own_seat_pops(client: TestClient) -> None:
    with client.websocket_connect("/ws", headers=bearer("op1024", Role.OPERATOR)) as mine, \
            client.websocket_connect("/ws", headers=bearer("op1025", Role.OPERATOR)) as other, \
            client.websocket_connect("/ws", headers=bearer("lead", Role.LEAD)) as lead:
        for ws in (mine, other, lead):
            assert ws.receive_json()["type"] == "hello"
        publish(client, pop("c1", "8001"), CallAnswered(at=2.0, call_id="c1", seat="8001", queue="hotline",
                                                         wait_ms=3000, within_rule=True),
                LinkStatus(at=3.0, up=False, detail="AMI 断开"))
        got = [mine.receive_json() for _ in range(3)]
        assert [m["type"] for m in got] == ["screen_pop", "call_update", "link_status"]
        assert got[0]["variables"]["HL_LOCATION"] == "山东省菏泽市" and got[0]["seq"] < got[1]["seq"]
        assert other.receive_json()["type"] == "link_status"  # nothing of 8001's call
        assert [lead.receive_json()["type"] for _ in range(3)] == ["screen_pop", "call_update", "link_status"]


def test_reconnect_replays_what_was_missed_and_says_resync_on_a_gap(client: TestClient) -> None:
    publish(client, pop("c1", "8001"), pop("c2", "8001"), pop("c3", "8001"))
    epoch = client.app.state.bus.epoch
    with client.websocket_connect(f"/ws?since=1&epoch={epoch}", headers=bearer("lead", Role.LEAD)) as ws:
        assert ws.receive_json()["last_seq"] == 3
        assert [ws.receive_json()["seq"] for _ in range(2)] == [2, 3]
    with client.websocket_connect("/ws?since=1&epoch=another", headers=bearer("lead", Role.LEAD)) as ws:
        ws.receive_json()
        assert ws.receive_json() == {"type": "resync", "seq": 3, "epoch": epoch}


def test_qa_and_departments_get_no_call_traffic() -> None:
    for role in (Role.QA, Role.DEPARTMENT):
        audience = Audience(Principal("x", role), SEATS.get)
        assert not audience.visible({"type": "screen_pop", "seat": "8001", "call_id": "c"})
        assert not audience.visible({"type": "alert", "kind": "answer_rule"})
        assert audience.visible({"type": "link_status", "up": False})


def test_an_operator_follows_a_call_that_popped_here_after_it_moves_on() -> None:
    audience = Audience(Principal("op1024", Role.OPERATOR), SEATS.get)
    assert audience.visible({"type": "screen_pop", "seat": "8001", "call_id": "c9"})
    assert audience.visible({"type": "call_update", "seat": "8002", "call_id": "c9"})  # rang on at 8002: close pop
    assert not audience.visible({"type": "call_update", "seat": "8002", "call_id": "c10"})
    assert not audience.visible({"type": "seat_update", "seat": "8002"})

"""Centre isolation on the live routes, the call log, alerts, reports and the websocket: a lead
of 北区 sees north's traffic and nothing of 南区's; a lead without a centre sees both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent_ui.ws import Audience
from hotline.calls import FinishedCall
from hotline.centres import scope_of
from hotline.identity import Principal, Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import Bearer, use

CENTRES = {"北区": ["north"], "南区": ["south"]}
NORTH, SOUTH, ALL = (Bearer("lead_n", Role.LEAD, centre="北区"), Bearer("lead_s", Role.LEAD, centre="南区"),
                     Bearer("chief", Role.LEAD))
SEATS = {"8001": ["north"], "8101": ["south"]}


class Bridge:
    """The live views the routes read, as the CTI service gives them: one of each per centre,
    and a callback (no queue) from each centre's seat."""

    def queues(self) -> list[dict]:
        return [{"queue": "north", "waiting": 1}, {"queue": "south", "waiting": 2}]

    def seats(self) -> list[dict]:
        return [{"seat": s, "queues": q, "signed_in": True, "state": "ready", "operator": f"op{s}"}
                for s, q in SEATS.items()]

    def calls(self) -> list[dict]:
        return [{"call_id": "n1", "queue": "north", "seat": "8001"},
                {"call_id": "s1", "queue": "south", "seat": "8101"},
                {"call_id": "cb-n", "queue": "", "seat": "8001"}, {"call_id": "cb-s", "queue": "", "seat": "8101"}]

    def seat_queues(self, seat: str) -> frozenset[str]:
        return frozenset(SEATS.get(seat, ()))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with use(TestClient(web_app(Settings(var_dir=tmp_path, services=[], centres=CENTRES)))) as c:
        c.app.state.cti = Bridge()
        log = c.app.state.store.calls
        for uid, queue, seat, answered in (("1.1", "north", "8001", True), ("1.2", "south", "8101", True),
                                           ("1.3", "north", "", False), ("1.4", "south", "", False)):
            log.record(FinishedCall(call_id=uid, caller_num="13953012345", offered_at=1795400000.0,
                                    ended_at=1795400090.0, queue=queue, seat=seat, operator=f"op{seat}",
                                    answered_at=1795400004.0 if answered else None, talk_s=80.0 if answered else 0.0,
                                    abandoned=not answered))
        yield c
        c.app.state.cti = None


def ids(rows: list[dict], key: str) -> set[str]:
    return {str(r[key]) for r in rows}


def test_live_routes_show_a_lead_only_their_centre(client: TestClient) -> None:
    assert ids(client.get("/api/queues", headers=NORTH).json(), "queue") == {"north"}
    assert ids(client.get("/api/seats", headers=SOUTH).json(), "seat") == {"8101"}
    assert ids(client.get("/api/calls/live", headers=NORTH).json(), "call_id") == {"n1", "cb-n"}
    assert ids(client.get("/api/calls/live", headers=ALL).json(), "call_id") == {"n1", "s1", "cb-n", "cb-s"}
    board = client.get("/api/lead/board", headers=SOUTH).json()
    assert ids(board["queues"], "queue") == {"south"} and ids(board["calls"], "call_id") == {"s1", "cb-s"}
    # an operator's queue list is their centre's too
    op = Bearer("op_n", Role.OPERATOR, centre="北区", job_number="2001")
    assert ids(client.get("/api/queues", headers=op).json(), "queue") == {"north"}


def test_the_call_log_and_the_callback_list_are_the_centres(client: TestClient) -> None:
    assert ids(client.get("/api/calls", headers=NORTH).json(), "id") == {"1.1", "1.3"}
    assert ids(client.get("/api/calls", headers=ALL).json(), "id") == {"1.1", "1.2", "1.3", "1.4"}
    assert ids(client.get("/api/calls", headers=Bearer("qa_s", Role.QA, centre="南区")).json(), "id") == {"1.2", "1.4"}
    missed = client.get("/api/callbacks?days=90", headers=SOUTH).json()
    assert ids(missed, "id") == {"1.4"}


def test_a_lead_neither_sees_nor_acknowledges_another_centres_alert(client: TestClient) -> None:
    engine = client.app.state.lead.engine
    def breach(call_id: str, queue: str):
        [alert] = engine.feed({"event": "AnswerRuleBreached", "at": 1795400000.0, "call_id": call_id, "queue": queue,
                               "caller_num": "13953012345", "waited_ms": 16000, "seats_rung": []})
        return alert

    north, south = breach("n1", "north"), breach("s1", "south")
    [rna] = engine.feed({"event": "SeatRingNoAnswer", "at": 1795400000.0, "seat": "8101", "ring_ms": 20000})
    assert ids(client.get("/api/lead/alerts", headers=NORTH).json(), "id") == {str(north.id)}
    assert ids(client.get("/api/lead/alerts", headers=SOUTH).json(), "id") == {str(south.id), str(rna.id)}
    refused = client.post(f"/api/lead/alerts/{south.id}/ack", headers=NORTH)
    assert refused.status_code == 404 and south.acked_at is None
    assert client.post(f"/api/lead/alerts/{north.id}/ack", headers=NORTH).status_code == 200


def test_the_report_counts_the_centres_calls(client: TestClient) -> None:
    day = "2026-11-23"  # 1795400000 is 2026-11-23 10:13 in Beijing
    north = client.get(f"/api/lead/reports?kind=day&day={day}", headers=NORTH).json()
    both = client.get(f"/api/lead/reports?kind=day&day={day}", headers=ALL).json()
    assert north["calls"]["offered"] == 2 and both["calls"]["offered"] == 4


def test_the_websocket_carries_a_leads_centre_only() -> None:
    north = Audience(Principal("lead_n", Role.LEAD, centre="北区"), lambda _u: None, scope_of("北区", CENTRES),
                     lambda seat: frozenset(SEATS.get(seat, ())))
    chief = Audience(Principal("chief", Role.LEAD), lambda _u: None, scope_of("", CENTRES))
    messages = [
        ({"type": "queue_update", "queue": "north"}, True), ({"type": "queue_update", "queue": "south"}, False),
        ({"type": "call_update", "queue": "south", "call_id": "s1"}, False),
        ({"type": "screen_pop", "seat": "8001", "call_id": "n1"}, True),
        ({"type": "seat_update", "seat": "8101"}, False),
        ({"type": "alert", "queue": "south", "ringing_seat": "8101"}, False),
        ({"type": "lead_alert", "alert": {"queue": "", "subject_seat": "8101"}}, False),
        ({"type": "lead_alert", "alert": {"queue": "", "subject_seat": ""}}, True),  # an emergency: everyone's
        ({"type": "ticket_update", "department_ids": [1]}, True), ({"type": "link_status"}, True),
    ]
    assert [north.visible(m) for m, _ in messages] == [want for _, want in messages]
    assert all(chief.visible(m) for m, _ in messages)


def test_recordings_are_the_centres(client: TestClient) -> None:
    from sqlmodel import Session

    from recordings.models import Recording

    with Session(client.app.state.engine) as s:
        for base, uid, seat in (("hotline-n", "1.1", "8001"), ("hotline-s", "1.2", "8101"),
                                ("callback-n", "9.1", "8001")):  # 9.1: an outbound call, in no queue
            s.add(Recording(base=base, uniqueid=uid, seat=seat, operator="", status="ok"))
        s.commit()
    qa_n = Bearer("qa_n", Role.QA, centre="北区")
    listed = {r["base"]: r["id"] for r in client.get("/api/recordings", headers=qa_n).json()}
    assert set(listed) == {"hotline-n", "callback-n"}
    everyone = {r["base"]: r["id"] for r in client.get("/api/recordings", headers=Bearer("qa", Role.QA)).json()}
    assert set(everyone) == {"hotline-n", "hotline-s", "callback-n"}
    south = everyone["hotline-s"]
    assert client.get(f"/api/recordings/{south}", headers=qa_n).status_code == 404
    assert client.get(f"/api/recordings/{south}/audio/mixed", headers=qa_n).status_code == 404
    assert client.post("/api/recordings/access-requests", json={"recording_id": south, "reason": "抽查"},
                       headers=qa_n).status_code == 404
    assert client.get(f"/api/recordings/{listed['hotline-n']}", headers=qa_n).status_code == 200


def test_another_centres_missed_call_cannot_be_marked_called_back(client: TestClient) -> None:
    op_n = Bearer("op_n", Role.OPERATOR, centre="北区", job_number="2001")
    refused = client.post("/api/callbacks/1.4/done", json={"note": "已回拨"}, headers=op_n)  # 南区's
    assert refused.status_code == 404 and refused.json()["detail"] == "通话记录不存在"
    assert client.post("/api/callbacks/1.3/done", json={"note": "已回拨"}, headers=op_n).status_code == 200

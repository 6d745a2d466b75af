"""The lead's API without Asterisk: who may use it, the handover signed by two leads, the alert
acknowledgement log, and a centre's lead seeing only the centre's queues and seats."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from hotline.identity import Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import Bearer, use


def auth(username: str, role: Role, centre: str = "") -> Bearer:
    return Bearer(username, role, centre=centre)


def test_lead_routes_refuse_others(tmp_path: Path) -> None:
    with use(TestClient(web_app(Settings(var_dir=tmp_path, services=[])))) as client:
        for path in ("/api/lead/board", "/api/lead/alerts", "/api/lead/tickets", "/api/lead/handovers",
                     "/api/lead/reports", "/api/lead/alerts/log"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers=auth("op1024", Role.OPERATOR)).status_code == 403, path
        assert client.post("/api/lead/alerts/1/ack", headers=auth("qa", Role.QA)).status_code == 403
        page = client.get("/lead", headers={"Accept": "text/html"}, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_a_handover_is_signed_by_two_leads(tmp_path: Path) -> None:
    with use(TestClient(web_app(Settings(var_dir=tmp_path, services=[])))) as client:
        wang, li = auth("lead", Role.LEAD), auth("lead2", Role.LEAD)
        made = client.post("/api/lead/handovers", headers=wang,
                           json={"shift": "2026-11-23 白班", "notes": "8003 耳机故障，已报修", "tickets": [12, 15]})
        assert made.status_code == 201
        hid = made.json()["id"]
        assert client.post(f"/api/lead/handovers/{hid}/sign", headers=wang).status_code == 409  # not the same lead
        assert client.post(f"/api/lead/handovers/{hid}/sign", headers=li).json()["to_lead"] == "lead2"
        assert client.post(f"/api/lead/handovers/{hid}/sign", headers=li).status_code == 409  # signed once
        [row] = client.get("/api/lead/handovers", headers=li).json()
        assert (row["from_lead"], row["to_lead"], row["tickets"]) == ("lead", "lead2", "12,15")
        assert datetime.fromisoformat(row["to_signed_at"]).utcoffset() == timedelta(0)  # not naive
        assert client.post("/api/lead/handovers/999/sign", headers=li).status_code == 404
        assert client.post("/api/lead/handovers", headers=wang, json={"shift": ""}).status_code == 422


def test_an_acknowledged_alert_is_logged(tmp_path: Path) -> None:
    with use(TestClient(web_app(Settings(var_dir=tmp_path, services=[])))) as client:
        lead = auth("lead", Role.LEAD)
        runtime = client.app.state.lead
        [alert] = runtime.engine.emergency(7, "2026112300007", "燃气泄漏", 1795400000.0)
        assert client.get("/api/lead/alerts", headers=lead).json()[0]["title"] == "重大紧急工单"
        acked = client.post(f"/api/lead/alerts/{alert.id}/ack", headers=lead).json()
        assert acked["acked_by"] == "lead" and acked["acked_at"] is not None
        again = client.post(f"/api/lead/alerts/{alert.id}/ack", headers=auth("lead2", Role.LEAD)).json()
        assert again["acked_by"] == "lead"  # the first acknowledgement stands
        [logged] = client.get("/api/lead/alerts/log", headers=lead).json()
        assert (logged["kind"], logged["acked_by"], logged["detail"]) == ("emergency", "lead", "2026112300007 燃气泄漏")
        assert client.post("/api/lead/alerts/999/ack", headers=lead).status_code == 404


class _Bridge:
    """The three live views the board reads, as the CTI service gives them: the same seat dicts to
    every reader, as a web node's views are until the next picture."""

    def __init__(self) -> None:
        self._seats = [{"seat": "8001", "queues": ["hotline"], "signed_in": True, "state": "ready"},
                       {"seat": "8101", "queues": ["north"], "signed_in": True, "state": "ready"}]

    def queues(self) -> list[dict]:
        return [{"queue": "hotline", "waiting": 1}, {"queue": "north", "waiting": 2}]

    def seats(self) -> list[dict]:
        return list(self._seats)

    def calls(self) -> list[dict]:
        return [{"call_id": "a", "queue": "hotline", "waiting_s": 3.0}, {"call_id": "b", "queue": "north",
                                                                         "waiting_s": 5.0}]

    def seat_queues(self, seat: str) -> frozenset[str]:
        return frozenset(next((s["queues"] for s in self.seats() if s["seat"] == seat), ()))


def test_a_centre_lead_sees_only_the_centres_queues_and_seats(tmp_path: Path) -> None:
    with use(TestClient(web_app(Settings(var_dir=tmp_path, services=[], centres={"北区中心": ["north"]})))) as client:
        client.app.state.cti = _Bridge()
        mine = client.get("/api/lead/board", headers=auth("lead_n", Role.LEAD, centre="北区中心")).json()
        assert [q["queue"] for q in mine["queues"]] == ["north"]
        assert [s["seat"] for s in mine["seats"]] == ["8101"] and [c["call_id"] for c in mine["calls"]] == ["b"]
        everyone = client.get("/api/lead/board", headers=auth("lead", Role.LEAD)).json()
        assert len(everyone["queues"]) == 2 and len(everyone["seats"]) == 2
        assert everyone["seats"][0]["calls_today"] == 0 and everyone["seats"][0]["talk_s_today"] == 0
        assert all("calls_today" not in s for s in client.app.state.cti.seats())  # the shared views untouched
        client.app.state.cti = None


def test_the_roster_of_a_day(tmp_path: Path) -> None:
    with use(TestClient(web_app(Settings(var_dir=tmp_path, services=[])))) as client:
        lead = auth("lead", Role.LEAD)
        entry = {"day": "2026-11-23", "shift": "白班 08:00-16:00", "username": "op1024", "duty": "话务员",
                 "seat": "8001"}
        assert client.post("/api/lead/roster", headers=lead, json=entry).status_code == 201
        assert client.post("/api/lead/roster", headers=lead, json=entry).status_code == 409  # once per shift
        assert client.post("/api/lead/roster", headers=lead, json=entry | {"duty": "保洁"}).status_code == 422
        client.post("/api/lead/roster", headers=lead, json=entry | {"username": "lead", "duty": "班长", "seat": ""})
        rows = client.get("/api/lead/roster?day=2026-11-23", headers=lead).json()
        assert [(r["duty"], r["username"]) for r in rows] == [("班长", "lead"), ("话务员", "op1024")]
        assert client.get("/api/lead/roster?day=2026-11-24", headers=lead).json() == []
        assert client.delete(f"/api/lead/roster/{rows[0]['id']}", headers=lead).status_code == 204
        assert len(client.get("/api/lead/roster?day=2026-11-23", headers=lead).json()) == 1


def test_busy_and_wrap_up_spells_from_the_bus_reach_the_report(tmp_path: Path) -> None:
    import time

    from cti.domain import SeatStateChanged

    with use(TestClient(web_app(Settings(var_dir=tmp_path, services=[])))) as client:
        bus = client.app.state.bus
        t0 = time.time() - 600

        async def shift() -> None:
            for dt, state, prev in ((0, "ready", "signed_out"), (60, "busy", "ready"), (180, "ready", "busy"),
                                    (200, "wrap_up", "ready"), (230, "ready", "wrap_up")):
                await bus.publish(SeatStateChanged(at=t0 + dt, seat="8001", state=state, previous=prev,
                                                   reason="培训" if state == "busy" else "", operator="op1024"))

        client.portal.call(shift)
        lead = auth("lead", Role.LEAD)
        today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
        days = f"kind=range&day={today - timedelta(days=1)}&until={today}"  # also just after midnight
        deadline = time.monotonic() + 5
        while True:
            ops = client.get(f"/api/lead/reports?{days}", headers=lead).json()["calls"]["per_operator"]
            if ops and ops[0]["wrap_up_s"]:
                break
            assert time.monotonic() < deadline, ops
            time.sleep(0.1)
        assert [(o["operator"], o["busy_s"], o["wrap_up_s"], o["calls"]) for o in ops] == [("op1024", 120.0, 30.0, 0)]

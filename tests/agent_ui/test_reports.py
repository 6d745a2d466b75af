"""Report figures against a hand-computed fixture: known calls and tickets in, exact numbers out
(the numbers in the comments were worked out by hand, not by running the code)."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from agent_ui import reports
from agent_ui.reports import DepartmentTally
from agent_ui.reports_export import to_pdf, to_xlsx
from hotline.identity import Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import Bearer, use
from ticketing.digest import TicketFact

BJ = ZoneInfo("Asia/Shanghai")
PERIOD = reports.period_for("day", date(2026, 11, 22), BJ)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=BJ)


def bj(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BJ)


def call(n: int, offered: str, *, answered: bool = True, wait: float = 5, talk: float = 60, op: str = "",
         survey: int | None = None, lost: bool = False) -> dict:
    # the /api/calls shape: times in UTC ISO, as ticketing.calls.as_dict gives them
    return {"id": f"c{n}", "offered": bj(offered).astimezone(ZoneInfo("UTC")).isoformat(),
            "answered": bj(offered).isoformat() if answered else None, "wait_s": wait,
            "within_15s": answered and wait <= 15, "talk_s": talk if answered else 0.0,
            "abandoned": not answered and not lost, "lost": lost, "operator": op, "seat": "8001", "survey": survey}


CALLS = [
    call(1, "2026-11-22T08:10:00", wait=5, talk=120, op="op1", survey=1),
    call(2, "2026-11-22T08:40:00", wait=20, talk=60, op="op1", survey=3),
    call(3, "2026-11-22T09:05:00", wait=3, talk=180, op="op2", survey=2),
    call(4, "2026-11-22T09:30:00", answered=False, wait=30),
    call(5, "2026-11-22T23:59:59", wait=10, talk=30, op="op2"),
    call(6, "2026-11-23T00:00:00", wait=1, talk=10, op="op1"),  # the next day: out
    call(7, "2026-11-22T12:00:00", answered=False, lost=True),  # Asterisk stopped under it: out
    call(8, "2026-11-21T10:00:00", wait=4, talk=100, op="op1"),  # previous day
    call(9, "2026-11-21T10:20:00", answered=False, wait=50),  # previous day
]

def spell(operator: str, state: str, start: str, end: str) -> dict:
    return {"operator": operator, "state": state, "started_at": bj(start), "ended_at": bj(end)}


SPELLS = [  # seat state spells (local times)
    spell("op1", "busy", "2026-11-22T07:50:00", "2026-11-22T08:05:00"),
    spell("op1", "wrap_up", "2026-11-22T08:12:00", "2026-11-22T08:12:30"),
    spell("op2", "busy", "2026-11-21T23:50:00", "2026-11-22T00:10:00"),  # over midnight: 10 minutes in each day
    spell("op3", "busy", "2026-11-22T12:00:00", "2026-11-22T12:05:00"),
]

TICKETS = [
    TicketFact(1, bj("2026-11-22T09:00"), "投诉举报", "工单转办", "牡丹区", "住建局", "夜间施工噪音扰民",
               due_at=bj("2026-11-24T18:00"), replied_at=bj("2026-11-24T10:00"), accept_due=bj("2026-11-22T11:00"),
               accepted_at=bj("2026-11-22T10:00"), satisfaction="非常满意"),
    TicketFact(2, bj("2026-11-22T10:00"), "一般诉求", "工单转办", "牡丹区", "住建局", "中华路道路积水",
               due_at=bj("2026-11-23T18:00"), replied_at=bj("2026-11-24T09:00"), accept_due=bj("2026-11-22T12:00"),
               accepted_at=bj("2026-11-22T13:00"), satisfaction="不满意", returns=1, redo_count=1),
    TicketFact(3, bj("2026-11-22T11:00"), "咨询", "直接办理", "定陶区", "", "社保卡补办", satisfaction="满意"),
    TicketFact(4, bj("2026-11-22T15:00"), "一般诉求", "工单转办", "定陶区", "交通局", "公交站积水严重",
               due_at=bj("2026-11-24T12:00"), accept_due=bj("2026-11-22T17:00")),
    TicketFact(5, bj("2026-11-22T16:00"), "求助", "工单转办", "曹县", "交通局", "桥下积水车辆熄火",
               due_at=bj("2026-11-30T12:00"), accept_due=bj("2026-11-22T18:00"), accepted_at=bj("2026-11-22T17:00")),
    TicketFact(6, bj("2026-11-21T09:00"), "投诉举报", "工单转办", "牡丹区", "住建局", "广场舞噪音扰民",
               due_at=bj("2026-11-22T18:00"), replied_at=bj("2026-11-22T10:00")),
]


def test_call_figures_this_day_and_the_previous_one() -> None:
    f = reports.call_figures(CALLS, PERIOD, BJ, qa_scores={"op1": 88.5}, spells=SPELLS)
    # calls 1–5: 4 answered (3 within 15 s), 1 abandoned
    assert (f["offered"], f["answered"], f["abandoned"], f["within_rule"]) == (5, 4, 1, 3)
    assert (f["pct_within_rule"], f["pct_completion"], f["pct_abandoned"]) == (75.0, 80.0, 20.0)
    assert f["avg_wait_s"] == 9.5  # (5 + 20 + 3 + 10) / 4
    assert f["avg_talk_s"] == 97.5  # (120 + 60 + 180 + 30) / 4
    assert {h: n for h, n in enumerate(f["by_hour"]) if n} == {8: 2, 9: 2, 23: 1}  # local hours, not UTC
    assert (f["surveys"], f["pct_satisfied"]) == (3, 66.7)  # 满意 + 基本满意 of three
    assert f["per_operator"] == [
        {"operator": "op1", "calls": 2, "talk_s": 180.0, "avg_talk_s": 90.0, "busy_s": 900.0, "wrap_up_s": 30.0,
         "pct_within_rule": 50.0, "surveys": 2, "satisfied": 1, "pct_satisfied": 50.0, "qa_score": 88.5},
        {"operator": "op2", "calls": 2, "talk_s": 210.0, "avg_talk_s": 105.0, "busy_s": 600.0, "wrap_up_s": 0.0,
         "pct_within_rule": 100.0, "surveys": 1, "satisfied": 1, "pct_satisfied": 100.0, "qa_score": None},
        {"operator": "op3", "calls": 0, "talk_s": 0.0, "avg_talk_s": None, "busy_s": 300.0, "wrap_up_s": 0.0,
         "pct_within_rule": None, "surveys": 0, "satisfied": 0, "pct_satisfied": None, "qa_score": None},
    ]
    assert f["service_by_day"] == [{"day": "2026-11-22", "answered": 4, "pct_within_rule": 75.0}]
    p = reports.call_figures(CALLS, PERIOD.previous(), BJ, spells=SPELLS)
    assert [(o["operator"], o["busy_s"]) for o in p["per_operator"]] == [("op1", 0.0), ("op2", 600.0)]
    assert (p["offered"], p["answered"], p["abandoned"], p["pct_completion"], p["avg_wait_s"]) == (2, 1, 1, 50.0, 4.0)


def test_ticket_figures() -> None:
    t = reports.ticket_figures(TICKETS, PERIOD, NOW)
    assert t["tickets"] == 5
    assert {r["name"]: r["count"] for r in t["by_category"]} == {"一般诉求": 2, "投诉举报": 1, "咨询": 1, "求助": 1}
    assert t["by_category"][0] == {"name": "一般诉求", "count": 2}
    assert {r["name"]: r["count"] for r in t["by_department"]} == {"住建局": 2, "交通局": 2, "（未填）": 1}
    assert {r["name"]: r["count"] for r in t["by_district"]} == {"牡丹区": 2, "定陶区": 2, "曹县": 1}
    assert t["by_mode"] == [{"name": "工单转办", "count": 4}, {"name": "直接办理", "count": 1}]
    # judged: 1 on time, 2 late (replied late; past due and unreplied); 5 not yet due, 3 has no deadline
    assert (t["judged"], t["on_time"], t["pct_on_time"]) == (3, 1, 33.3)
    assert (t["rated"], t["pct_satisfied"]) == (3, 66.7)


def test_department_assessment_scores() -> None:
    entered = {"住建局": {"county_circulars": 1, "city_commendations": 1},
               "交通局": {"city_circulars": 1, "false_reports": 2}}
    scores = {d["department"]: d for d in
              map(reports.assess, reports.department_tallies(TICKETS, PERIOD, NOW, entered))}
    assert sorted(scores) == ["交通局", "住建局"]
    # 住建局: overdue 1 (T2), returned/redone 2 (T2), late acceptance 1 (T2), county circular 1 (−5),
    # very satisfied 1 (T1, +1), city commendation (+10): 80 − 1 − 2 − 1 − 5 + 1 + 10 = 82
    zj = scores["住建局"]
    assert (zj["results"], zj["score"]) == (82.0, 102.0)
    assert {d["item"]: d["points"] for d in zj["deductions"]} == {
        "超期工单": -1, "退回/重办工单": -2, "签收超时": -1, "县级通报": -5}
    assert {b["item"]: b["points"] for b in zj["bonuses"]} == {"回访非常满意": 1, "市级表扬": 10}
    # 交通局: T4 overdue and never accepted (−1 −1), a city circular (−10), two false reports (−2): 66
    jt = scores["交通局"]
    assert (jt["results"], jt["score"]) == (66.0, 86.0)
    # leadership and rules as assessed; results never below zero
    worst = reports.assess(DepartmentTally("卫健委", leadership=8, rules=9, counts=Counter(overdue=90)))
    assert (worst["results"], worst["score"]) == (0.0, 17.0)


def test_hotspots_and_periods() -> None:
    h = reports.hotspots(TICKETS, PERIOD, BJ)
    rising = {r["word"]: r for r in h["rising"]}
    assert rising["积水"] == {"word": "积水", "count": 3, "previous": 0, "change": 3}
    assert "噪音" not in rising  # one this day, one the day before: not rising
    assert {p["name"] for p in h["by_place"]} == {"牡丹区", "定陶区", "曹县"}
    assert [w["name"] for w in h["by_week"]] == ["2026-W47"]
    week = reports.period_for("week", date(2026, 11, 22), BJ)  # a Sunday: the week began Monday 16th
    assert (week.start, week.end) == (bj("2026-11-16T00:00"), bj("2026-11-23T00:00"))
    assert week.previous().label == "2026-11-09 至 2026-11-15"
    month = reports.period_for("month", date(2026, 12, 5), BJ)
    assert (month.start, month.end) == (bj("2026-12-01T00:00"), bj("2027-01-01T00:00"))


def test_exports_carry_the_same_figures(tmp_path: Path) -> None:
    data = reports.report(CALLS, TICKETS, PERIOD, BJ, NOW)
    from openpyxl import load_workbook

    wb = load_workbook(__import__("io").BytesIO(to_xlsx(data)))
    overview = {r[0]: r[1:] for r in wb["话务总览"].iter_rows(values_only=True)}
    assert overview["15 秒接通率"] == ("75.0 %", "100.0 %")
    assert overview["按时办结率"][0] == "33.3 %"
    depts = {r[0]: r[4] for r in wb["部门考核"].iter_rows(min_row=2, values_only=True)}
    # without the circulars and commendations entered by hand: 住建局 80 − 1 − 2 − 1 + 1, 交通局 80 − 1 − 1
    assert depts == {"住建局": 97.0, "交通局": 98.0}
    pdf = to_pdf(data)
    assert pdf.startswith(b"%PDF") and b"STSong-Light" in pdf


def test_the_other_channels_three_minute_figure_is_in_the_report_and_its_exports() -> None:
    # as Store.intake.figures gives them: this day 5 received, 3 handled in time, 2 late (one still waiting)
    today = {"received": 5, "handled": 4, "on_time": 3, "late": 2, "pct_on_time": 60.0, "pending": 1,
             "oldest_wait_s": 400.0, "target_s": 180}
    before = today | {"received": 2, "handled": 2, "on_time": 2, "late": 0, "pct_on_time": 100.0}
    data = reports.report(CALLS, TICKETS, PERIOD, BJ, NOW, intake=(today, before))
    # what waits now is the wallboard's, not the period's
    assert data["intake"] == {"received": 5, "handled": 4, "on_time": 3, "late": 2, "pct_on_time": 60.0,
                              "target_s": 180}
    assert (data["intake_previous"]["on_time"], data["intake_previous"]["pct_on_time"]) == (2, 100.0)
    from openpyxl import load_workbook

    wb = load_workbook(__import__("io").BytesIO(to_xlsx(data)))
    overview = {r[0]: r[1:] for r in wb["话务总览"].iter_rows(values_only=True)}
    assert overview["网络来件"] == ("5", "2") and overview["网络来件 3 分钟响应率"] == ("60.0 %", "100.0 %")
    assert overview["网络来件超时"] == ("2", "0")
    assert to_pdf(data).startswith(b"%PDF")
    # no figures at all (a store without submissions): zeros, and no rate rather than 0 %
    empty = reports.report(CALLS, TICKETS, PERIOD, BJ, NOW)["intake"]
    assert empty == {"received": 0, "handled": 0, "on_time": 0, "late": 0, "pct_on_time": None, "target_s": 180}


def test_report_routes_for_leads_only(tmp_path: Path) -> None:
    with use(TestClient(web_app(Settings(var_dir=tmp_path, services=[])))) as client:
        lead, op = Bearer("lead", Role.LEAD), Bearer("op1024", Role.OPERATOR, job_number="1024")
        got = client.get("/api/lead/reports?kind=week&day=2026-11-22", headers=lead).json()
        assert got["period"]["label"] == "2026-11-16 至 2026-11-22" and got["calls"]["offered"] == 0
        assert client.get("/api/lead/reports?day=22/11/2026", headers=lead).status_code == 422
        assert client.get("/api/lead/reports", headers=op).status_code == 403
        x = client.get("/api/lead/reports.xlsx?kind=month&day=2026-11-01", headers=lead)
        assert x.status_code == 200 and x.content[:2] == b"PK"
        assert client.get("/api/lead/reports.pdf", headers=lead).content.startswith(b"%PDF")
        # a city circular and a county commendation entered by hand count in the period they happened in
        for item, day in (("city_circulars", "2026-11-20"), ("county_commendations", "2026-11-21"),
                          ("county_circulars", "2026-11-23")):
            made = client.post("/api/lead/assessment", headers=lead,
                               json={"department": "住建局", "day": day, "item": item, "note": "市政府督查通报"})
            assert made.status_code == 201
        assert client.post("/api/lead/assessment", headers=lead,
                           json={"department": "住建局", "day": "2026-11-20", "item": "overdue"}).status_code == 422
        [dept] = client.get("/api/lead/reports?kind=week&day=2026-11-22", headers=lead).json()["departments"]
        assert (dept["department"], dept["results"], dept["score"]) == ("住建局", 75.0, 95.0)  # 80 − 10 + 5

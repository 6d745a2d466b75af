"""The service API on SQLite and PostgreSQL: lifecycle, visibility, confidentiality, bad input."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from tests.ticketing.conftest import intake
from ticketing.calendar import TZ
from ticketing.models import ConfidentialRead, Supervision, Ticket, TicketEvent
from ticketing.schemas import Forbidden, InvalidInput, NotFound
from ticketing.workflow import TransitionError


def count(engine, model) -> int:
    with engine.connect() as c:
        return c.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def test_full_lifecycle_with_deadlines_and_history(svc, people, depts, clock):
    t = svc.tickets.create(intake(), people.operator)
    assert t.status == "registered" and t.number.startswith("20261116")
    assert t.transfer_due == datetime(2026, 11, 18, 23, 59, 59, tzinfo=TZ)
    assert t.deadline_state == "green" and t.operator == "017"
    clock.advance(hours=2)
    t = svc.actions.transfer(t.id, depts["水务"], "请核实停水原因并答复", people.operator,
                             co_department_ids=[depts["城市"]])
    assert t.status == "transferred"
    assert [(d.name, d.is_lead) for d in t.departments] == [
        ("菏泽市水务集团有限公司", True),
        ("菏泽市城市管理局", False),
    ]
    assert t.accept_due.date() == date(2026, 11, 17)
    assert t.due_at.date() == date(2026, 11, 23)  # 求助: 5 working days from Mon 16 Nov
    clock.advance(hours=1)
    t = svc.actions.accept(t.id, people.water)
    t = svc.actions.act(t.id, "start", None, people.water)
    t = svc.actions.act(t.id, "request_extension", {"reason": "需更换主管道", "days": 3}, people.water)
    assert t.status == "extension_requested" and t.extension_requested_days == 3
    t = svc.actions.act(t.id, "approve_extension", {}, people.lead)
    assert t.due_at.date() == date(2026, 11, 26) and t.extension_days == 3
    clock.advance(days=2)
    t = svc.actions.reply(t.id, "已更换管道，恢复供水，已电话告知来电人", people.water)
    assert t.callback_due.date() == date(2026, 11, 23)  # Wed 18 → Thu, Fri, Mon
    t = svc.actions.callback(t.id, "不满意", "水压仍然很低", people.operator)
    # 回访不满意 → 重办 at once: back with the department, a new deadline, supervised
    assert t.status == "in_progress" and t.redo_count == 1 and t.supervision_count == 1
    assert t.due_at.date() == date(2026, 11, 25) and t.replied_at is None
    t = svc.actions.reply(t.id, "已调整加压泵，水压恢复", people.water)
    t = svc.actions.callback(t.id, "满意", "", people.operator)
    t = svc.actions.act(t.id, "close", {}, people.operator)
    t = svc.actions.act(t.id, "archive", {}, people.lead)
    assert t.status == "archived" and t.deadline_state == "none" and t.allowed_actions == []
    events = svc.tickets.history(t.id, people.lead)
    assert [e.action for e in events] == [
        "create",
        "register",
        "transfer",
        "accept",
        "start",
        "request_extension",
        "approve_extension",
        "reply",
        "callback",
        "supervise",
        "redo",
        "reply",
        "callback",
        "close",
        "archive",
    ]
    assert events[2].from_status == "registered" and events[2].to_status == "transferred"
    assert events[2].actor == "op8001" and "请核实停水原因" in events[2].note
    assert all(e.at.tzinfo is not None for e in events)


def test_illegal_move_refused_and_nothing_written(svc, people, depts, engine):
    t = svc.tickets.create(intake(), people.operator)
    before = count(engine, TicketEvent)
    with pytest.raises(TransitionError, match=r"已登记.*不能签收"):
        svc.actions.accept(t.id, people.admin)
    with pytest.raises(NotFound):
        svc.actions.accept(t.id, people.water)  # not transferred to it: it cannot even see it
    with pytest.raises(TransitionError, match="不能答复办结"):
        svc.actions.act(t.id, "reply", {"result": "x"}, people.admin)
    assert count(engine, TicketEvent) == before
    assert svc.tickets.get(t.id, people.lead).status == "registered"


def test_only_the_lead_department_acts(svc, people, depts):
    t = svc.tickets.create(intake(), people.operator)
    svc.actions.transfer(t.id, depts["水务"], "请办理", people.operator, co_department_ids=[depts["城市"]])
    with pytest.raises(Forbidden, match="牵头"):
        svc.actions.accept(t.id, people.city)  # co-handler may read but not accept
    assert svc.tickets.get(t.id, people.city).status == "transferred"


def test_returned_ticket_is_reassigned(svc, people, depts, clock):
    t = svc.tickets.create(intake(title="占道经营", matter_course="路口商贩占道经营"), people.operator)
    svc.actions.transfer(t.id, depts["水务"], "请办理", people.operator)
    clock.advance(hours=3)
    t = svc.actions.return_(t.id, "不属于供水职责，应转城管", people.water)
    assert t.status == "returned" and t.return_reason.startswith("不属于")
    t = svc.actions.transfer(t.id, depts["城市"], "属城管职责", people.operator)
    assert t.lead_department_id == depts["城市"] and [d.name for d in t.departments] == ["菏泽市城市管理局"]
    with pytest.raises(NotFound):
        svc.tickets.get(t.id, people.water)  # no longer its ticket
    clock.advance(hours=30)
    with pytest.raises(TransitionError, match="24小时"):
        svc.actions.return_(t.id, "也不是我们的", people.city)


def test_departments_see_only_their_tickets(svc, people, depts):
    mine = svc.tickets.create(intake(), people.operator)
    other = svc.tickets.create(intake(title="油烟扰民", caller_number="13900000000"), people.operator)
    svc.actions.transfer(mine.id, depts["水务"], "请办理", people.operator)
    svc.actions.transfer(other.id, depts["城市"], "请办理", people.operator)
    page = svc.tickets.search({}, people.water)
    assert [t.id for t in page.items] == [mine.id] and page.total == 1
    with pytest.raises(NotFound):
        svc.tickets.get(other.id, people.water)
    with pytest.raises(NotFound):
        svc.tickets.history(other.id, people.water)


def test_confidential_reporter_never_shown_to_departments_and_every_read_logged(svc, people, depts, engine):
    t = svc.tickets.create(
        intake(
            category="投诉举报",
            subcategory="举报",
            confidential=True,
            title="饭店后厨卫生差",
            caller_name="李举报",
            caller_number="13853099999",
        ),
        people.operator,
    )
    svc.actions.transfer(t.id, depts["市场"], "请依法查处", people.operator)
    market = people.water.__class__("market", people.water.role, department_id=depts["市场"])
    seen = svc.tickets.get(t.id, market)
    assert seen.masked and "李举报" not in seen.model_dump_json() and "13853099999" not in seen.model_dump_json()
    listed = svc.tickets.search({}, market).items[0]
    assert listed.caller_name == "（保密）" and listed.caller_number == "（保密）" and listed.contact == "（保密）"
    assert svc.tickets.search({"caller_number": "13853099999"}, market).total == 0  # no finding by identity
    full = svc.tickets.get(t.id, people.lead)
    assert not full.masked and full.caller_name == "李举报"
    with engine.connect() as c:
        reads = c.execute(
            sa.select(ConfidentialRead.username, ConfidentialRead.purpose, ConfidentialRead.masked).where(
                ConfidentialRead.ticket_id == t.id
            )
        ).all()
    assert ("market", "detail", True) in reads and ("market", "list", True) in reads
    assert ("lead1", "detail", False) in reads


def test_exports_mask_confidential_reporters_and_neutralise_formulas(svc, people, depts, engine):
    svc.tickets.create(intake(category="投诉举报", confidential=True, caller_name="王保密"), people.operator)
    svc.tickets.create(
        intake(title='=HYPERLINK("http://x")', caller_name="赵公开", caller_number="13900001111"),
        people.operator,
    )
    raw = svc.export.export({}, people.lead, "csv")
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][0] == "工单编号" and len(rows) == 3
    text = raw.decode("utf-8-sig")
    assert "王保密" not in text and "赵公开" in text
    assert any(r[8].startswith("'=HYPERLINK") for r in rows[1:])
    wb = load_workbook(io.BytesIO(svc.export.export({}, people.lead, "xlsx")))
    cells = [c.value for row in wb.active.iter_rows() for c in row]
    assert "王保密" not in cells and "（保密）" in cells
    with pytest.raises(Forbidden):
        svc.export.export({}, people.operator, "csv")
    with engine.connect() as c:
        assert (
            c.execute(
                sa.select(sa.func.count()).select_from(ConfidentialRead).where(ConfidentialRead.purpose == "export")
            ).scalar_one()
            == 2
        )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"title": "长" * 201}, "标题过长"),
        ({"matter_course": "长" * 4001}, "事件经过过长"),
        ({"confidential": "yes"}, "是否保密应为 true 或 false"),
        ({"title": 12345}, "标题应为文本"),
        ({"category": "吐槽"}, "诉求类别取值无效"),
        ({"handling_mode": "随便办"}, "办理方式取值无效"),
        ({"matter_course": "漏水\x00\x1b[31m"}, "事件经过不能包含控制字符"),
        ({"title": "   "}, "标题不能为空"),
        ({"owner": "me"}, "不认识的字段"),
    ],
)
def test_bad_input_is_refused_in_chinese_and_nothing_written(svc, people, engine, body, message):
    with pytest.raises(InvalidInput) as e:
        svc.tickets.create(intake(**body), people.operator)
    assert message in str(e.value)
    assert count(engine, Ticket) == 0 and count(engine, TicketEvent) == 0


def test_unknown_department_refused_and_the_ticket_unchanged(svc, people, depts, engine):
    t = svc.tickets.create(intake(), people.operator)
    events = count(engine, TicketEvent)
    with pytest.raises(InvalidInput, match="承办单位不存在"):
        svc.actions.transfer(t.id, 9999, "请办理", people.operator)
    with pytest.raises(InvalidInput, match="承办单位不存在"):
        svc.actions.transfer(t.id, depts["水务"], "请办理", people.operator, co_department_ids=[8888])
    got = svc.tickets.get(t.id, people.lead)
    assert got.status == "registered" and got.departments == [] and count(engine, TicketEvent) == events


def test_script_tags_are_stored_as_text(svc, people):
    t = svc.tickets.create(
        intake(title="<script>alert('x')</script>停水", matter_course="<img src=x onerror=alert(1)>"),
        people.operator,
    )
    got = svc.tickets.get(t.id, people.lead)
    assert got.title == "<script>alert('x')</script>停水"
    assert got.matter_course == "<img src=x onerror=alert(1)>"


def test_duplicates_proposed_at_intake_and_merge_counts_a_repeat(svc, people, depts, engine):
    first = svc.tickets.create(
        intake(
            matter_place="中华路与人民路交叉口",
            title="自来水管道破裂",
            matter_course="中华路与人民路交叉口自来水管道破裂，路面大量积水，请尽快维修",
            matter_demand="尽快派人抢修",
        ),
        people.operator,
    )
    svc.actions.transfer(first.id, depts["水务"], "请抢修", people.operator)
    noise = svc.tickets.create(
        intake(
            matter_place="中华路与人民路交叉口",
            title="工地夜间施工",
            caller_number="13900000002",
            matter_course="中华路与人民路交叉口有工地夜间施工，噪音扰民，影响休息",
            matter_demand="要求停止夜间施工",
        ),
        people.operator,
    )
    assert noise.duplicates == []
    again = svc.tickets.create(
        intake(
            matter_place="中华路与人民路交叉口",
            title="水管爆了",
            caller_number="13900000003",
            matter_course="人民路中华路路口水管爆了，水一直往外冒，路上都是水",
            matter_demand="赶紧来修",
        ),
        people.operator,
    )
    assert [d["id"] for d in again.duplicates] == [first.id]
    merged = svc.actions.act(again.id, "merge", {"duplicate_of": first.id}, people.operator)
    assert merged.status == "closed" and merged.duplicate_of_id == first.id
    original = svc.tickets.get(first.id, people.lead)
    assert original.repeat_count == 1 and original.supervision_count == 1
    with engine.connect() as c:
        reasons = c.execute(sa.select(Supervision.reason).where(Supervision.ticket_id == first.id)).scalars().all()
    assert reasons == ["repeat"]
    with pytest.raises(InvalidInput, match="不存在"):
        svc.actions.act(noise.id, "merge", {"duplicate_of": 99999}, people.operator)


def test_link_keeps_both_open(svc, people, depts):
    a = svc.tickets.create(intake(), people.operator)
    b = svc.tickets.create(intake(caller_number="13900000009"), people.operator)
    svc.actions.link(b.id, a.id, people.operator)
    svc.actions.link(a.id, b.id, people.operator)  # idempotent
    assert svc.tickets.get(a.id, people.lead).repeat_count == 1
    assert svc.tickets.get(b.id, people.lead).status == "registered"


def test_emergencies_are_supervised_at_once(svc, people):
    t = svc.tickets.create(intake(title="楼道燃气味很大", emergency=True, handling_mode="电话交办"), people.operator)
    assert t.supervision_count == 1
    assert [s.reason for s in svc.tickets.supervisions(t.id, people.lead)] == ["emergency"]


def test_sweep_supervises_near_and_overdue_once(svc, people, depts, clock):
    t = svc.tickets.create(intake(), people.operator)  # Mon: transfer due Wed
    assert svc.actions.sweep() == []
    clock.advance(days=1)  # Tue: 1 working day left → yellow
    (r,) = svc.actions.sweep()
    assert (r.ticket_id, r.state) == (t.id, "yellow")
    svc.actions.sweep()
    clock.advance(days=2)  # Thu: overdue
    (r,) = svc.actions.sweep()
    assert r.state == "red"
    assert [s.reason for s in svc.tickets.supervisions(t.id, people.lead)] == ["near_deadline", "overdue"]
    assert svc.tickets.search({"deadline_state": "red"}, people.lead).total == 1
    assert svc.tickets.search({"deadline_state": "green"}, people.lead).total == 0


def test_deadline_filters_agree_with_the_colours(svc, people, depts, clock):
    a = svc.tickets.create(intake(), people.operator)
    svc.actions.transfer(a.id, depts["水务"], "请办理", people.operator)  # accept due Tue
    svc.tickets.create(intake(caller_number="13900000001"), people.operator)  # transfer due Wed
    clock.advance(days=1, hours=1)  # Tue
    states = {t.id: t.deadline_state for t in svc.tickets.search({}, people.lead).items}
    for colour in ("green", "yellow", "red"):
        ids = {t.id for t in svc.tickets.search({"deadline_state": colour}, people.lead).items}
        assert ids == {i for i, s in states.items() if s == colour}


def test_caller_lookup_for_the_agi(svc, people, depts, clock):
    for i in range(3):
        svc.tickets.create(intake(title=f"第{i}次来电"), people.operator)
        clock.advance(days=1)
    other = svc.tickets.create(intake(caller_number="13900000000"), people.operator)
    svc.actions.act(other.id, "transfer", {"department_id": depts["水务"], "opinion": "x"}, people.operator)
    summary = svc.callers.summary("+86 138 5301 2345", limit=2)
    assert summary.number == "13853012345" and summary.total == 3 and summary.open == 3
    assert summary.repeat and summary.location
    assert [r.title for r in summary.recent] == ["第2次来电", "第1次来电"]
    assert summary.recent[0].deadline_state in ("green", "yellow")
    empty = svc.callers.summary("5551234")
    assert (empty.number, empty.total, empty.recent, empty.location) == ("05305551234", 0, [], "山东省菏泽市")
    history = svc.tickets.caller_history("13853012345", people.operator)
    assert len(history) == 3


def test_caller_flags(svc, people):
    svc.callers.set_flags("13853012345", people.lead, blacklisted=True)
    assert svc.callers.summary("13853012345").blacklisted
    with pytest.raises(Forbidden):
        svc.callers.set_flags("13853012345", people.operator, blacklisted=False)


def test_update_only_while_with_the_centre(svc, people, depts):
    t = svc.tickets.create(intake(), people.operator)
    t = svc.tickets.update(t.id, {"title": "丽景花园3号楼停水", "confidential": True}, people.operator)
    assert t.title == "丽景花园3号楼停水" and t.confidential
    assert svc.tickets.search({"q": "3号楼"}, people.lead).total == 1
    svc.actions.transfer(t.id, depts["水务"], "请办理", people.operator)
    with pytest.raises(TransitionError, match="不能再修改"):
        svc.tickets.update(t.id, {"title": "改"}, people.operator)


def test_calendar_overrides_through_the_service(svc, people, clock):
    with pytest.raises(Forbidden):
        svc.holidays.set_days([{"day": "2027-01-01", "workday": False}], people.lead)
    assert svc.holidays.status([2027])[0]["source"] == "fallback"
    svc.holidays.set_days([{"day": "2027-01-01", "workday": False, "note": "元旦"}], people.admin)
    assert svc.holidays.status([2027]) == [{"year": 2027, "source": "override", "warning": None}]
    with pytest.raises(InvalidInput):
        svc.holidays.set_days([{"day": "2027-02-30", "workday": False}], people.admin)


def test_knowledge_base_missing_info_flow(svc, people, depts):
    m = svc.kb.report_missing({"query": "新能源车充电桩安装补贴", "note": "来电人问小区充电桩"}, people.operator)
    assert [x.id for x in svc.kb.missing()] == [m.id]
    with pytest.raises(Forbidden):
        svc.kb.save({"title": "x", "body": "y"}, people.operator)
    a = svc.kb.save(
        {
            "title": "充电桩安装补贴",
            "body": "个人充电桩安装补贴政策……",
            "resolves": [m.id],
            "department_id": depts["城市"],
        },
        people.lead,
    )
    assert svc.kb.missing() == [] and svc.kb.missing(open_only=False)[0].article_id == a.id
    with pytest.raises(InvalidInput, match="承办单位不存在"):
        svc.kb.save({"title": "x", "body": "y", "department_id": 777}, people.lead)


def test_calls_link_to_tickets(svc, people, clock):
    from hotline.calls import FinishedCall

    t = svc.tickets.create(intake(), people.operator)
    at = clock.now.timestamp()
    cid = svc.calls.record(FinishedCall(call_id="1731.42", caller_num="13853012345", offered_at=at, ended_at=at + 60,
                                        seat="8001"))
    svc.calls.link_ticket("1731.42", t.id)
    assert svc.calls.record(FinishedCall(call_id="1731.42", caller_num="13853012345", offered_at=at,
                                         ended_at=at + 60, seat="8001")) == cid  # once per call
    assert [c["id"] for c in svc.calls.for_ticket(t.id)] == ["1731.42"]
    assert svc.calls.ticket_of("1731.42") == t.id and svc.calls.ticket_of("nope") is None
    with pytest.raises(LookupError):
        svc.calls.link_ticket("1731.43", 12345)


def test_caller_lookup_logs_confidential_reads(svc, people, engine):
    t = svc.tickets.create(intake(confidential=True, category="投诉举报"), people.operator)
    svc.callers.summary("13853012345")
    with engine.connect() as c:
        rows = c.execute(
            sa.select(ConfidentialRead.username, ConfidentialRead.purpose).where(ConfidentialRead.ticket_id == t.id)
        ).all()
    assert ("agi", "caller_lookup") in rows


def test_open_store_migrates_and_reads_the_limits(tmp_path):
    from hotline.settings import Settings
    from ticketing.store import open_store

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'h.db'}",
        ticket_completion_days={"咨询": 2},
        ticket_yellow_days=1,
        var_dir=tmp_path,
    )
    svc = open_store(settings)
    assert svc.ctx.limits.completion_days("咨询") == 2 and svc.ctx.limits.yellow_days == 1
    assert svc.ctx.area_code == "0530"
    assert svc.directory.list() == []  # migrated: the tables exist


def test_calendar_changes_reach_other_nodes_after_the_ttl(engine, clock, people, monkeypatch):
    import ticketing.context as context_module
    from ticketing.context import StoreContext
    from ticketing.store import Store

    node_a, node_b = Store.on(StoreContext(engine, clock=clock)), Store.on(StoreContext(engine, clock=clock))
    assert node_a.ctx.calendar().source(2027) == "fallback"
    node_b.holidays.set_days([{"day": "2027-01-01", "workday": False}], people.admin)
    assert node_a.ctx.calendar().source(2027) == "fallback"  # cached
    monkeypatch.setattr(context_module, "CALENDAR_TTL_S", 0)
    assert node_a.ctx.calendar().source(2027) == "override"


def test_warm_up_loads_jieba_and_the_geocoder():
    from ticketing import duplicates
    from ticketing.callers import location_of
    from ticketing.store import warm_up

    warm_up()
    assert duplicates._ready
    assert location_of.cache_info().currsize >= 2

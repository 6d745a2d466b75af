"""The work-order loop in the store: departments' notes, handlers and answers to supervision, both
callback ratings and the redo they may send back, attachments, the citizen's status and rating,
other channels' submissions and their 3-minute response, the worklists."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa

from hotline.identity import Principal, Role
from tests.ticketing.conftest import intake
from ticketing.models import Ticket
from ticketing.schemas import Forbidden, InvalidInput, NotFound
from ticketing.workflow import TransitionError

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200


def transferred(svc, people, depts, **over):
    t = svc.tickets.create(intake(**over), people.operator)
    return svc.actions.transfer(t.id, depts["水务"], "请核实处理", people.operator, co_department_ids=[depts["城市"]])


def test_a_lead_department_records_progress_a_co_handler_its_part_and_neither_replies_for_the_other(
        svc, people, depts):
    t = transferred(svc, people, depts)
    svc.actions.accept(t.id, people.water)
    svc.actions.act(t.id, "progress", {"note": "已派人员现场查看"}, people.water)
    svc.actions.act(t.id, "progress", {"note": "城管已清理占道"}, people.city)  # 协办: its own part
    with pytest.raises(Forbidden, match="牵头承办单位"):
        svc.actions.reply(t.id, "已处理", people.city)
    with pytest.raises(TransitionError, match="内容"):
        svc.actions.act(t.id, "progress", {"note": " "}, people.water)
    notes = [(e.actor, e.note) for e in svc.tickets.history(t.id, people.lead) if e.action == "progress"]
    assert notes == [("water", "已派人员现场查看"), ("city", "城管已清理占道")]
    assert svc.tickets.get(t.id, people.city).allowed_actions == ["progress"]  # a co-handler's buttons
    svc.actions.supervise(t.id, "请加快办理", people.lead)
    assert svc.tickets.get(t.id, people.city).allowed_actions == ["progress", "answer_supervision"]


def test_only_a_department_lead_assigns_a_handler_and_only_for_its_own_part(svc, people, depts):
    t = transferred(svc, people, depts)
    boss = replace(people.water, username="water-boss", dept_lead=True)
    assert "assign" not in svc.tickets.get(t.id, people.water).allowed_actions
    assert "assign" in svc.tickets.get(t.id, boss).allowed_actions
    with pytest.raises(Forbidden, match="负责人"):
        svc.actions.act(t.id, "assign", {"assignee": "water-staff"}, people.water)
    got = svc.actions.act(t.id, "assign", {"assignee": "water-staff", "note": "今天处理"}, boss)
    assert [(d.name, d.assignee) for d in got.departments] == [("菏泽市水务集团有限公司", "water-staff"),
                                                               ("菏泽市城市管理局", "")]
    assert got.status == "transferred"  # a choice of handler changes no state


def test_a_department_answers_the_oldest_open_supervision_note(svc, people, depts):
    t = transferred(svc, people, depts)
    svc.actions.supervise(t.id, "请加快办理", people.lead)
    svc.actions.supervise(t.id, "市民再次来电", people.lead)
    svc.actions.act(t.id, "answer_supervision", {"note": "已安排今天下午处理"}, people.water)
    notes = svc.tickets.supervisions(t.id, people.lead)
    assert [(n.note, n.answer, n.answered_by) for n in notes] == [("请加快办理", "已安排今天下午处理", "water"),
                                                                  ("市民再次来电", "", "")]
    svc.actions.act(t.id, "answer_supervision", {"note": "已回复市民", "supervision_id": notes[1].id}, people.city)
    with pytest.raises(InvalidInput, match="没有待回复的督办"):
        svc.actions.act(t.id, "answer_supervision", {"note": "又一条"}, people.water)


def test_callback_rates_process_and_result_and_unsatisfied_goes_back_until_the_lead_decides(svc, people, depts):
    t = transferred(svc, people, depts)
    svc.actions.accept(t.id, people.water)
    for round_ in range(3):
        svc.actions.reply(t.id, f"第{round_ + 1}次答复", people.water)
        t = svc.actions.act(t.id, "callback", {"satisfaction": "不满意", "satisfaction_process": "基本满意",
                                               "result": "水压仍然很低"}, people.operator)
        if round_ < 2:  # 重办: back with the department at once
            assert (t.status, t.redo_count, t.satisfaction_process) == ("in_progress", round_ + 1, "基本满意")
    assert (t.status, t.redo_count) == ("unsatisfied", 2)  # after two redos the lead decides
    with pytest.raises(TransitionError, match="值班长"):
        svc.actions.act(t.id, "close", {"reason": "已尽力"}, people.operator)
    t = svc.actions.act(t.id, "close", {"reason": "已多次协调，市民诉求超出政策"}, people.lead)
    assert t.status == "closed"
    callbacks = [e.note for e in svc.tickets.history(t.id, people.lead) if e.action == "callback"]
    assert callbacks[0] == "办理过程基本满意，办理结果不满意：水压仍然很低"


def test_the_query_code_is_the_centres_and_the_citizens_and_the_deadline_counts_working_days(svc, people, depts,
                                                                                            clock):
    t = transferred(svc, people, depts)  # Monday: 求助, 5 working days
    assert len(t.query_code) == 6 and t.query_code.isdigit()
    assert svc.tickets.get(t.id, people.water).query_code == ""
    assert t.working_days_left == 1  # accept by Tuesday
    svc.actions.accept(t.id, people.water)
    clock.advance(days=8)  # the next Tuesday: due Monday, a working day late
    assert svc.tickets.get(t.id, people.lead).working_days_left == -1


def test_the_public_status_answers_only_the_right_code_and_takes_one_rating(svc, people, depts):
    t = transferred(svc, people, depts)
    assert svc.public.status(t.number, "000000" if t.query_code != "000000" else "111111") is None
    assert svc.public.status("20990101000001", t.query_code) is None
    assert svc.public.status(t.number, "x' OR 1=1") is None
    got = svc.public.status(t.number, t.query_code)
    assert got.state == "已转交承办单位" and got.reply == "" and not got.may_rate and got.due is not None
    assert "张桂兰" not in repr(got) and "13853012345" not in repr(got)  # none of the reporter's data
    with pytest.raises(InvalidInput, match="答复后"):
        svc.public.rate(t.number, t.query_code, "满意")
    svc.actions.accept(t.id, people.water)
    svc.actions.reply(t.id, "已恢复供水", people.water)
    got = svc.public.status(t.number, t.query_code)
    assert got.state == "承办单位已答复，等待回访" and got.reply == "已恢复供水" and got.may_rate
    with pytest.raises(InvalidInput, match="评价须为"):
        svc.public.rate(t.number, t.query_code, "非常好")
    rated = svc.public.rate(t.number, t.query_code, "基本满意")
    assert rated.rating == "基本满意" and not rated.may_rate
    assert any(e.action == "citizen_rating" for e in svc.tickets.history(t.id, people.lead))


def test_attachments_are_typed_by_their_bytes_limited_kept_and_served_only_to_who_sees_the_ticket(
        svc, people, depts):
    t = transferred(svc, people, depts)
    a = svc.attachments.add(t.id, "现场照片.jpg", JPEG, people.water)
    assert (a.content_type, a.size, a.by) == ("image/jpeg", len(JPEG), "water")
    path, read = svc.attachments.open(t.id, a.id, people.operator)
    assert path.read_bytes() == JPEG and read.name == "现场照片.jpg"
    assert [x.id for x in svc.attachments.list(t.id, people.city)] == [a.id]  # the co-handler sees it
    market = Principal("market", Role.DEPARTMENT, department_id=depts["市场"])
    with pytest.raises(NotFound):
        svc.attachments.open(t.id, a.id, market)  # another department: as if there were no ticket
    with pytest.raises(InvalidInput, match="类型不支持"):
        svc.attachments.add(t.id, "x.jpg", b"<html><script>", people.water)
    with pytest.raises(InvalidInput, match="过大"):
        svc.attachments.add(t.id, "big.jpg", JPEG + b"\0" * 70_000, people.water)
    path.write_bytes(b"\xff\xd8\xff changed")
    with pytest.raises(NotFound, match="损坏"):
        svc.attachments.open(t.id, a.id, people.lead)
    assert any(e.action == "attach" and "现场照片" in e.note for e in svc.tickets.history(t.id, people.lead))


def test_submissions_wait_for_an_operator_and_the_three_minutes_are_judged(svc, people, clock):
    start = clock.now
    first = svc.intake.submit("web", {"name": "王五", "contact": "13953010001", "text": "小区门口的路灯坏了三天了"})
    again = svc.intake.submit("wechat", {"contact": "13953010002", "text": "公交站台积水严重", "external_id": "wx-1"})
    assert svc.intake.submit("wechat", {"contact": "13953010002", "text": "公交站台积水严重",
                                        "external_id": "wx-1"}).id == again.id  # a bridge's resend: kept once
    with pytest.raises(InvalidInput):
        svc.intake.submit("fax", {"contact": "13953010002", "text": "xxxxxx"})
    assert [s.id for s in svc.intake.pending()] == [first.id, again.id]
    clock.advance(minutes=2)
    ticket = svc.intake.confirm(first.id, intake(title="路灯不亮", caller_number="13953010001"), people.operator)
    assert ticket.channel == "网站"
    with pytest.raises(InvalidInput, match="已由op8001处理"):
        svc.intake.confirm(first.id, intake(), people.operator)  # no second ticket
    clock.advance(minutes=2)  # the second one is now 4 minutes old
    figures = svc.intake.figures(start)
    assert (figures["received"], figures["on_time"], figures["late"], figures["pending"]) == (2, 1, 1, 1)
    assert figures["oldest_wait_s"] == 240.0
    svc.intake.reject(again.id, "重复来件", people.operator)
    assert svc.intake.pending() == [] and svc.intake.figures(start)["pct_on_time"] == 50.0
    with pytest.raises(Forbidden):
        svc.intake.reject(first.id, "x", people.water)


def test_worklists_for_a_department_and_for_the_callbacks(svc, people, depts, clock, engine):
    fresh = transferred(svc, people, depts)
    late = transferred(svc, people, depts, caller_number="13853000002")
    svc.actions.accept(late.id, people.water)
    clock.advance(days=8)
    svc.actions.supervise(late.id, "超期未办结", people.lead)
    counters = svc.worklists.department_counters(people.water)
    assert counters["new"] == 1 and counters["overdue"] >= 2 and counters["supervised"] == 1
    with pytest.raises(Forbidden):
        svc.worklists.department_counters(people.operator)
    svc.actions.accept(fresh.id, people.water)
    svc.actions.reply(fresh.id, "已处理", people.water)
    svc.calls.link_ticket("cb.1", fresh.id)
    svc.calls.record_survey("cb.1", 2, "13853012345")
    [due] = svc.worklists.callbacks_due()
    assert (due["id"], due["ivr_survey"], due["deadline_state"]) == (fresh.id, 2, "green")
    assert [s["note"] for s in svc.worklists.supervisions()] == ["超期未办结"]
    assert svc.worklists.supervisions(department_id=depts["市场"]) == []


def test_the_confidential_read_log_is_for_leads(svc, people, depts):
    t = svc.tickets.create(intake(confidential=True, category="投诉举报"), people.operator)
    svc.tickets.get(t.id, people.operator)
    log = svc.tickets.confidential_reads(t.id, people.lead)
    assert {r["username"] for r in log} >= {"op8001"}
    with pytest.raises(Forbidden):
        svc.tickets.confidential_reads(t.id, people.operator)


def test_a_ticket_created_before_the_query_code_existed_cannot_be_found_with_an_empty_code(svc, people, engine):
    t = svc.tickets.create(intake(), people.operator)
    with engine.begin() as c:
        c.execute(sa.update(Ticket).where(Ticket.id == t.id).values(query_code=""))
    assert svc.public.status(t.number, "") is None and svc.public.status(t.number, "000000") is None


def test_working_days_left_is_none_without_a_running_deadline(svc, people):
    t = svc.tickets.create(intake(draft=True), people.operator)
    assert t.working_days_left is None and t.deadline_state == "none"

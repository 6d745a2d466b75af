"""Which outside numbers the app may dial (ticketing/dialable.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from hotline.calls import FinishedCall
from hotline.identity import Principal, Role
from ticketing.store import Store


def test_a_callback_goes_only_to_a_number_of_a_ticket_or_a_logged_call(svc: Store, people) -> None:
    out = svc.outside
    assert not out.may_call_back("13953012345") and not out.may_call_back("") and not out.may_call_back("abc")
    svc.tickets.create({"caller_number": "+86 139-5301-2345", "category": "咨询", "title": "路灯",
                        "contact": "王先生 0530-555 0000；13800000001"}, people.operator)
    assert out.may_call_back("13953012345")  # the caller's, written any way
    assert out.may_call_back("05305550000") and out.may_call_back("5550000")  # the contact's, local or long
    assert out.may_call_back("13800000001")
    assert not out.may_call_back("13800000002") and not out.may_call_back("0000")
    svc.calls.record(FinishedCall(call_id="1.7", caller_num="13700000007", offered_at=1795400000.0,
                                  ended_at=1795400030.0, queue="hotline", abandoned=True))
    assert out.may_call_back("13700000007")  # a missed call


def test_a_transfer_goes_only_to_a_departments_line_or_directory_phone(svc: Store, depts) -> None:
    admin = Principal("admin", Role.ADMIN)
    svc.directory.save({"name": "菏泽市供电公司", "phones": "0530-95598, 0530-5551111", "sip_line": "2004",
                        "duties": "停电"}, admin)
    out = svc.outside
    assert out.department_number("2004") and out.department_number("05305551111")
    assert out.department_number("5551111") and not out.department_number("5551112")
    assert not out.department_number("013800138000") and not out.department_number("")


def test_the_number_that_rings_a_department_is_its_line_else_its_first_phone_as_digits(svc: Store) -> None:
    """The console's 三方 / 转接 and the 回访's 三方 dial it, and the seat API takes only digits."""
    from ticketing.models import dial_line

    assert dial_line("2004", "0530-95598") == "2004"
    assert dial_line("", "值班 0530-555 1234，0530-5555678") == "05305551234"
    assert dial_line("", "见官网") == ""
    admin = Principal("admin", Role.ADMIN)
    saved = svc.directory.save({"name": "菏泽市园林局", "phones": "0530-555 2222（值班）"}, admin)
    assert saved.line == "05305552222" and saved.model_dump()["line"] == "05305552222"  # /api/departments has it
    assert svc.outside.department_number(saved.line)  # … and a 三方 to it is let through

"""Finished tickets from the previous system, in bulk: what a centre's cut-over relies on."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from ticketing.schemas import Forbidden


def _row(i: int, **over) -> dict:
    row = {
        "number": f"HZ2024{i:06d}",
        "status": "archived",
        "created_at": f"2024-03-{1 + i % 28:02d}T09:{i % 60:02d}:00+08:00",
        "closed_at": f"2024-04-{1 + i % 28:02d}T10:00:00+08:00",
        "category": "求助",
        "title": f"丽景花园第{i}次停水",
        "caller_number": "+86 138-5301-0001" if i % 2 else f"1385302{i:04d}",
        "caller_name": "张桂兰",
        "matter_course": "小区停水，没有接到通知",
        "lead_department": "菏泽市水务集团有限公司",
        "operator": "102",
        "reply_text": "管道抢修完毕，已恢复供水",
        "satisfaction": "满意",
    }
    row.update(over)
    return row


def test_an_import_writes_what_intake_writes_and_the_lookup_sees_it(svc, people, depts, clock):
    rows = [_row(i) for i in range(1, 8)]
    rows[2]["confidential"] = True
    rows[3]["co_departments"] = ["菏泽市城市管理局"]
    report = svc.imports.tickets([json.dumps(r, ensure_ascii=False) for r in rows], people.admin, batch=3)
    assert (report.read, report.imported, report.already_present, report.errors) == (7, 7, 0, [])

    summary = svc.callers.summary("13853010001")  # four of them came from this number (odd i), over 3 batches
    assert summary.total == 4 and summary.location.startswith("山东省")
    with svc.engine.connect() as c:
        first, last = c.execute(sa.text("SELECT first_seen, last_seen FROM caller WHERE number = '13853010001'")).one()
    assert str(first).startswith("2024-03-02") and str(last).startswith("2024-03-08")  # i = 1 … 7: days 2 … 8
    found = svc.tickets.search({"q": "停水", "per_page": 50}, people.lead)
    assert found.total == 7
    t = svc.tickets.search({"number": "HZ2024000004"}, people.lead).items[0]
    assert t.status == "archived" and t.operator == "102" and t.reply_text.startswith("管道抢修")
    assert t.created_at.isoformat().startswith("2024-03-05T01:04")  # 09:04 in China, stored as UTC
    assert {d.name for d in t.departments} == {"菏泽市水务集团有限公司", "菏泽市城市管理局"}
    assert [d.is_lead for d in t.departments] == [True, False]
    assert [e.action for e in svc.tickets.history(t.id, people.lead)] == ["create", "close", "import"]
    # the department sees its ticket, and a confidential reporter masked, as with any ticket
    secret = svc.tickets.search({"number": "HZ2024000003"}, people.water).items[0]
    assert secret.masked and secret.caller_number != "13853010001"
    assert svc.tickets.confidential_reads(secret.id, people.lead)


def test_a_rerun_skips_what_is_there_and_bad_rows_are_reported_by_line(svc, people, depts):
    good = [_row(i) for i in range(1, 4)]
    svc.imports.tickets(good, people.admin)
    bad = [
        _row(10, created_at="2024-03-01T09:00:00"),  # no zone: ambiguous
        _row(11, status="in_progress"),  # open tickets stay in the old system
        _row(12, lead_department="不存在的局"),
        _row(13, category="别的"),
        _row(14, unknown_field=1),
        "{not json",
        _row(15),
        _row(15, title="同一编号两次"),
    ]
    report = svc.imports.tickets(good + bad, people.admin)
    assert report.already_present == 3 and report.imported == 1
    lines = dict(report.errors)
    assert sorted(lines) == [4, 5, 6, 7, 8, 9, 11]
    assert "不存在的局" in lines[6] and "HZ2024000015" in lines[11]
    assert all(reason for reason in lines.values())
    assert svc.tickets.search({"q": "同一编号两次"}, people.lead).total == 0


def test_a_dry_run_writes_nothing_and_only_an_admin_imports(svc, people, depts):
    report = svc.imports.tickets([_row(1), _row(2)], people.admin, dry_run=True)
    assert report.imported == 2 and svc.tickets.search({}, people.lead).total == 0
    for who in (people.operator, people.lead, people.water):
        with pytest.raises(Forbidden):
            svc.imports.tickets([_row(1)], who)

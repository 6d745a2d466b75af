"""Deadline reminders end to end: a real SMTP server receives each threshold's e-mail (before due,
due, overdue and overdue again) as the clock moves, exactly once each across repeated and
concurrent sweeps, and never any of a confidential reporter's data."""

from __future__ import annotations

import asyncio
from datetime import datetime
from email.message import EmailMessage

import sqlalchemy as sa

from notify.models import Notification
from notify.sweep import ReminderSweep
from tests.notify.conftest import (
    CENTRE_EMAIL,
    REPORTER,
    WATER_EMAIL,
    City,
    Mailbox,
    open_ticket,
    rules,
    smtp_notifier,
    sweep,
)
from tests.ticketing.conftest import Clock
from ticketing.calendar import TZ
from ticketing.store import Store


def text_of(mail: EmailMessage) -> str:
    """Everything a reader of the mail sees, decoded (headers and body)."""
    return "\n".join(f"{k}: {v}" for k, v in mail.items()) + "\n" + mail.get_content()


def subjects(mails: list[EmailMessage]) -> dict[str, str]:
    return {m["To"]: m["Subject"] for m in mails}


async def step(s: ReminderSweep, store: Store, box: Mailbox) -> list[EmailMessage]:
    """One pass of the node's periodic work: the store's own deadline sweep (it opens automatic
    supervision), then the reminders; what arrived."""
    store.actions.sweep()
    await s.sweep_once()
    await asyncio.sleep(0)
    return box.take()


async def test_each_threshold_mails_the_centre_and_the_department_once_without_the_reporter(
        store: Store, city: City, clock: Clock, mailbox: Mailbox) -> None:
    t = open_ticket(store, city, confidential=True, **REPORTER)
    assert t.current_due == datetime(2026, 11, 23, 23, 59, 59, tzinfo=TZ)  # next Monday
    s = sweep(store, smtp_notifier(mailbox, sender="12345热线 <hotline@12345.example>"))

    assert await step(s, store, mailbox) == []  # five working days left: nothing yet
    clock.now = clock.now.replace(day=19)  # Thursday: two left
    assert await step(s, store, mailbox) == []

    clock.now = clock.now.replace(day=20)  # Friday: one working day left
    before = await step(s, store, mailbox)
    assert subjects(before) == {
        CENTRE_EMAIL: f"【12345政务服务热线】临期提醒：工单{t.number}还剩1个工作日到期",
        WATER_EMAIL: f"【12345政务服务热线】临期提醒：工单{t.number}还剩1个工作日到期",
    }
    clock.advance(hours=6)
    assert await step(s, store, mailbox) == []  # the same day again: already told
    clock.now = clock.now.replace(day=21)  # Saturday: still one working day left, still told
    assert await step(s, store, mailbox) == []

    clock.now = clock.now.replace(day=23, hour=8)  # Monday: the due day
    due = await step(s, store, mailbox)
    assert set(subjects(due).values()) == {f"【12345政务服务热线】到期提醒：工单{t.number}今天到期"}
    clock.now = clock.now.replace(hour=23, minute=59, second=58)
    assert await step(s, store, mailbox) == []

    clock.now = clock.now.replace(day=24, hour=9, minute=0)  # Tuesday: overdue
    late = await step(s, store, mailbox)
    assert set(subjects(late).values()) == {f"【12345政务服务热线】超期提醒：工单{t.number}已超期1个工作日"}
    clock.advance(hours=5)
    assert await step(s, store, mailbox) == []
    clock.now = clock.now.replace(day=25, hour=9)  # Wednesday: again, every working day
    again = await step(s, store, mailbox)
    assert set(subjects(again).values()) == {f"【12345政务服务热线】超期提醒：工单{t.number}已超期2个工作日"}
    assert await step(s, store, mailbox) == []

    mails = before + due + late + again
    assert len(mails) == 8 and {m["To"] for m in mails} == {CENTRE_EMAIL, WATER_EMAIL}
    for mail in mails:
        seen = text_of(mail)
        assert all(v not in seen for v in REPORTER.values()), seen
        assert f"工单编号：{t.number}" in seen and "标题：丽景花园停水" in seen
        assert "承办单位：菏泽市水务集团有限公司" in seen and "办结时限：2026-11-23 23:59" in seen
        link = "http://hotline.example/dept?ticket=" if mail["To"] == WATER_EMAIL else "http://hotline.example/tickets?ticket="
        assert f"查看工单：{link}{t.id}" in seen
    # the store opened its own near-deadline and overdue supervision: the reminders said it already
    assert {n.reason for n in store.tickets.supervisions(t.id, city.lead)} == {"near_deadline", "overdue"}

    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(Notification.kind, Notification.channel, Notification.status,
                                      Notification.transport, Notification.attempts)).all()
    stages = ("deadline_before", "deadline_due", "deadline_overdue", "deadline_overdue")
    assert sorted(rows) == sorted([(k, "email", "sent", "smtp", 1) for k in stages] * 2
                                  + [(k, "sms", "logged", "log", 1) for k in stages])  # the department's mobile


async def test_the_centre_alone_hears_of_its_own_deadlines(store: Store, city: City, clock: Clock,
                                                           mailbox: Mailbox) -> None:
    t = store.tickets.create({"category": "咨询", "title": "公积金提取咨询"}, city.operator)  # registered: to transfer
    assert t.status == "registered"
    clock.now = clock.now.replace(day=17)  # transfer within 2 working days: one left
    await sweep(store, smtp_notifier(mailbox)).sweep_once()
    [mail] = mailbox.wait(1)
    assert mail["To"] == CENTRE_EMAIL and "转办时限：2026-11-18 23:59" in mail.get_content()
    assert "承办单位：（尚未转办）" in mail.get_content()


async def test_a_new_deadline_starts_its_reminders_afresh_and_a_closed_ticket_has_none(
        store: Store, city: City, clock: Clock, mailbox: Mailbox) -> None:
    t = open_ticket(store, city)
    s = sweep(store, smtp_notifier(mailbox), centre_email="")
    clock.now = clock.now.replace(day=20)
    await s.sweep_once()
    assert [m["To"] for m in mailbox.take()] == [WATER_EMAIL]
    store.actions.act(t.id, "request_extension", {"days": 3, "reason": "需协调施工单位"}, city.water_staff)
    store.actions.act(t.id, "approve_extension", {}, city.lead)  # due three working days later
    await s.sweep_once()
    assert mailbox.take() == []
    clock.now = clock.now.replace(day=25)  # one working day before the extended deadline
    await s.sweep_once()
    [mail] = mailbox.take()
    assert "办结时限：2026-11-26 23:59" in mail.get_content()
    store.actions.reply(t.id, "已恢复供水", city.water_staff)  # the callback deadline is the centre's
    clock.now = clock.now.replace(day=30)
    await s.sweep_once()
    assert mailbox.take() == []


async def test_two_sweeps_at_once_send_each_reminder_once(store: Store, city: City, clock: Clock,
                                                          mailbox: Mailbox) -> None:
    """Two web nodes (or a restart mid-pass) over one database: the log's key decides."""
    tickets = [open_ticket(store, city, title=f"停水{i}号楼") for i in range(5)]
    clock.now = clock.now.replace(day=20)
    one, two = sweep(store, smtp_notifier(mailbox)), sweep(store, smtp_notifier(mailbox))
    results = await asyncio.gather(one.sweep_once(), two.sweep_once(), one.sweep_once())
    statuses = [d.status for r in results for d in r]  # the water company's mobile: by SMS, log only here
    assert (statuses.count("sent"), statuses.count("logged"), len(statuses)) == (10, 5, 15)
    mails = mailbox.wait(10)
    await asyncio.sleep(0.2)
    assert len(mails) == 10
    assert sorted((m["To"], m["Subject"]) for m in mails) == sorted(
        (to, f"【12345政务服务热线】临期提醒：工单{t.number}还剩1个工作日到期")
        for t in tickets for to in (CENTRE_EMAIL, WATER_EMAIL))
    assert await sweep(store, smtp_notifier(mailbox), **{}).sweep_once() == []


async def test_rules_come_from_the_settings(store: Store, city: City, clock: Clock, mailbox: Mailbox) -> None:
    """Three working days ahead, and overdue reminders every second working day."""
    t = open_ticket(store, city)
    s = ReminderSweep(store, smtp_notifier(mailbox), rules(before_days=3, overdue_every=2, centre_email=""))
    sent = []
    for day in (17, 18, 19, 20, 23, 24, 25, 26, 27, 30):
        clock.now = clock.now.replace(day=day)
        await s.sweep_once()
        sent += [(day, m["Subject"].split("：", 1)[1]) for m in mailbox.take()]
    n = t.number
    assert sent == [(18, f"工单{n}还剩3个工作日到期"), (23, f"工单{n}今天到期"), (24, f"工单{n}已超期1个工作日"),
                    (26, f"工单{n}已超期3个工作日"), (30, f"工单{n}已超期5个工作日")]

"""督办: a supervision note opened on a ticket is told to its lead department (e-mail and SMS),
once; the centre, which wrote it, is not told; a confidential ticket's note stays in the system."""

from __future__ import annotations

from notify.channels import SmsGateway, SmtpChannel
from notify.service import Notifier
from tests.notify.conftest import (
    REPORTER,
    WATER_EMAIL,
    WATER_MOBILE,
    City,
    Gateway,
    Mailbox,
    open_ticket,
    sweep,
)
from tests.ticketing.conftest import Clock
from ticketing.store import Store


def both(box: Mailbox, gw: Gateway) -> Notifier:
    return Notifier({"email": SmtpChannel(host=box.host, port=box.port, timeout_s=5),
                     "sms": SmsGateway(url=gw.url, token="gw-token", timeout_s=5)})


async def test_a_supervision_note_reaches_the_lead_department_once(
        store: Store, city: City, clock: Clock, mailbox: Mailbox, gateway: Gateway) -> None:
    t = open_ticket(store, city)
    s = sweep(store, both(mailbox, gateway), centre_mobile="13900000009")
    await s.sweep_once()
    assert mailbox.take() == [] and gateway.take() == []  # five working days left, nothing supervised

    clock.advance(hours=2)
    store.actions.supervise(t.id, "市民再次来电反映，请今天内联系并回复", city.lead)
    await s.sweep_once()
    [mail] = mailbox.take()
    assert mail["To"] == WATER_EMAIL  # the department only: the centre wrote the note
    assert mail["Subject"] == f"【12345政务服务热线】督办通知：工单{t.number}（中心督办）"
    body = mail.get_content()
    assert "督办意见：市民再次来电反映，请今天内联系并回复" in body and "督办时间：2026-11-16 11:30" in body
    assert "承办单位：菏泽市水务集团有限公司" in body and f"/dept?ticket={t.id}" in body
    [sms] = gateway.take()
    assert sms["json"]["to"] == WATER_MOBILE
    assert sms["json"]["text"] == (f"【12345政务服务热线】工单{t.number}「丽景花园停水」被督办（中心督办），"
                                   f"请及时办理并回复。详情：http://hotline.example/dept?ticket={t.id}")

    clock.advance(hours=1)
    await s.sweep_once()
    assert mailbox.take() == [] and gateway.take() == []  # told once
    store.actions.supervise(t.id, "第二次督办", city.lead)  # a new note is news again
    await s.sweep_once()
    assert [m["Subject"] for m in mailbox.take()] == [f"【12345政务服务热线】督办通知：工单{t.number}（中心督办）"]


async def test_a_confidential_tickets_note_stays_in_the_system(
        store: Store, city: City, clock: Clock, mailbox: Mailbox, gateway: Gateway) -> None:
    t = open_ticket(store, city, confidential=True, **REPORTER)
    store.actions.supervise(t.id, f"{REPORTER['caller_name']}再次来电，电话{REPORTER['contact']}", city.lead)
    await sweep(store, both(mailbox, gateway)).sweep_once()
    [mail] = mailbox.wait(1)
    body = mail.get_content()
    assert "督办意见：（保密工单，请登录系统查看）" in body
    assert all(v not in body for v in REPORTER.values())
    [sms] = gateway.take()
    assert all(v not in sms["json"]["text"] for v in REPORTER.values())


async def test_a_ticket_not_yet_with_a_department_waits_for_it(
        store: Store, city: City, clock: Clock, mailbox: Mailbox, gateway: Gateway) -> None:
    t = store.tickets.create({"category": "求助", "title": "燃气泄漏", "emergency": True}, city.operator)
    s = sweep(store, both(mailbox, gateway), centre_email="")
    await s.sweep_once()  # the emergency is supervised at intake: nobody to tell yet
    assert mailbox.take() == []
    store.actions.transfer(t.id, city.water, "请立即处置", city.operator)
    await s.sweep_once()
    # (with the reminder of its one working day to sign for it)
    [mail] = [m for m in mailbox.take() if "督办通知" in m["Subject"]]
    assert mail["Subject"].endswith("（突发紧急事项）") and mail["To"] == WATER_EMAIL


async def test_who_was_told_of_each_note_is_on_the_centres_list_and_the_tickets_panels(
        store: Store, city: City, clock: Clock, mailbox: Mailbox, gateway: Gateway, tmp_path) -> None:
    from fastapi.testclient import TestClient

    from agent_ui.app import WebParts, create_app
    from hotline.bus import InProcessBus
    from hotline.settings import Settings
    from notify.log import NotificationLog

    t = open_ticket(store, city)
    store.actions.supervise(t.id, "请今天内回复", city.lead)
    await sweep(store, both(mailbox, gateway)).sweep_once()
    [note] = store.worklists.supervisions()
    told = NotificationLog(store.engine).for_supervisions([note["id"]])[note["id"]]
    assert sorted((n["channel"], n["recipient"], n["status"]) for n in told) == [
        ("email", WATER_EMAIL, "sent"), ("sms", WATER_MOBILE, "sent")]
    from accounts import db as accounts_db
    from accounts.store import Accounts
    from testkit.auth import bearer

    accounts_db.migrate(store.engine)
    accounts = Accounts(store.engine)
    parts = WebParts(settings=Settings(var_dir=tmp_path), engine=store.engine, store=store, accounts=accounts,
                     bus=InProcessBus())
    with TestClient(create_app(parts)) as c:
        def get(path: str, who) -> dict:
            return c.get(path, headers=bearer(accounts, who)).json()

        [row] = get("/api/desk/supervisions", city.lead)
        assert {n["recipient"] for n in row["notified"]} == {WATER_EMAIL, WATER_MOBILE}
        assert all(n["supervision_id"] == note["id"] for n in row["notified"])
        assert {n["recipient"] for n in get(f"/api/notifications?ticket_id={t.id}", city.lead)["items"]} >= {
            WATER_EMAIL, WATER_MOBILE}
        mine = get(f"/api/dept/tickets/{t.id}", city.water_staff)["notified"]  # the department's own panel
        assert {n["recipient"] for n in mine} == {WATER_EMAIL, WATER_MOBILE}

"""Failed sends through the SMS gateway (HTTP 500, a timeout) are logged with their reason and
retried by the sweep after a back-off, until sent or out of attempts (then failed, visibly); the
log-only default records and sends nothing. Leases, takeovers and kills: test_outbox.py and
test_crash.py."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from hotline.settings import Settings
from notify.log import NotificationLog
from notify.models import Notification
from notify.outbox import MAX_ATTEMPTS
from notify.service import Notifier
from tests.notify.conftest import (
    CENTRE_MOBILE,
    WATER_EMAIL,
    WATER_MOBILE,
    City,
    Gateway,
    open_ticket,
    sms_notifier,
    sweep,
)
from tests.ticketing.conftest import Clock
from ticketing.store import Store


def rows(store: Store, channel: str = "sms") -> list[Notification]:
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(Notification).where(Notification.channel == channel)
                             .order_by(Notification.recipient)).all()
    return [Notification.model_validate(r._mapping) for r in found]


async def test_a_failing_gateway_is_retried_with_back_off_until_it_takes_the_message(
        store: Store, city: City, clock: Clock, gateway: Gateway) -> None:
    t = open_ticket(store, city)
    s = sweep(store, sms_notifier(gateway), centre_email="", centre_mobile=CENTRE_MOBILE)
    clock.now = clock.now.replace(day=20)  # one working day left

    gateway.mode = "error"
    await s.sweep_once()
    sent = gateway.take()
    assert sorted(r["json"]["to"] for r in sent) == [WATER_MOBILE, CENTRE_MOBILE]
    assert all(r["auth"] == "Bearer gw-token" for r in sent)
    text = sent[0]["json"]["text"]
    assert text.startswith(f"【12345政务服务热线】工单{t.number}「丽景花园停水」还剩1个工作日到期")
    assert "详情：http://hotline.example/" in text
    first = rows(store)
    assert [(r.status, r.attempts, r.error) for r in first] == [
        ("pending", 1, "短信网关拒绝发送：HTTP 500 internal error: modem offline")] * 2
    shown = [n for n in NotificationLog(store.engine).for_ticket(t.id) if n["channel"] == "sms"]
    assert [n["status_label"] for n in shown] == ["发送失败，等待重试（已尝试 1 次）"] * 2
    assert all(r.next_attempt_at == clock.now + timedelta(minutes=1) for r in first)

    await s.sweep_once()
    assert gateway.take() == []  # the back-off is not over

    gateway.mode = "slow"  # then the gateway hangs past the timeout
    clock.advance(minutes=1)
    await s.sweep_once()
    assert len(gateway.take()) == 2
    second = rows(store)
    assert [(r.status, r.attempts) for r in second] == [("pending", 2)] * 2
    assert all(r.error.startswith("短信网关在 0.5 秒内没有应答") for r in second)
    assert all(r.next_attempt_at == clock.now + timedelta(minutes=5) for r in second)

    gateway.mode = "ok"
    clock.advance(minutes=4)
    await s.sweep_once()
    assert gateway.take() == []
    clock.advance(minutes=1)
    await s.sweep_once()
    assert len(gateway.take()) == 2
    assert [(r.status, r.attempts, r.error, r.sent_at) for r in rows(store)] == [("sent", 3, "", clock.now)] * 2
    clock.advance(hours=2)
    await s.sweep_once()
    assert gateway.take() == []  # sent is sent


async def test_a_message_that_never_goes_through_is_given_up_after_the_last_attempt(
        store: Store, city: City, clock: Clock, gateway: Gateway) -> None:
    t = open_ticket(store, city)
    s = sweep(store, sms_notifier(gateway), centre_email="")
    clock.now = clock.now.replace(day=20)
    gateway.mode = "error"
    for _ in range(MAX_ATTEMPTS + 2):
        await s.sweep_once()
        clock.advance(hours=1)
    assert len(gateway.take()) == MAX_ATTEMPTS
    [row] = rows(store)
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", MAX_ATTEMPTS, None)
    assert "HTTP 500" in row.error
    [shown] = [n for n in NotificationLog(store.engine).for_ticket(t.id) if n["channel"] == "sms"]  # as the page says
    assert shown["status_label"] == f"发送失败，已停止重试（共尝试 {MAX_ATTEMPTS} 次）"
    assert shown["error"] == "短信网关拒绝发送：HTTP 500 internal error: modem offline"


async def test_the_demo_default_only_logs_and_records(store: Store, city: City, clock: Clock, gateway: Gateway,
                                                      tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    open_ticket(store, city)
    notifier = Notifier.from_settings(Settings(var_dir=tmp_path, services=[]))  # no SMTP host, no gateway URL
    clock.now = clock.now.replace(day=20)
    with caplog.at_level(logging.INFO, logger="notify.channels"):
        await sweep(store, notifier, centre_mobile=CENTRE_MOBILE).sweep_once()
    logged = rows(store, "email") + rows(store, "sms")
    assert sorted((r.recipient, r.status, r.transport, r.sent_at) for r in logged) == sorted(
        (to, "logged", "log", clock.now) for to in ("duty@12345.example", WATER_EMAIL, WATER_MOBILE, CENTRE_MOBILE))
    assert caplog.text.count("notification (log only)") == 4
    assert gateway.requests == []

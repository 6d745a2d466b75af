"""The channels on real sockets: e-mail to a local SMTP server (UTF-8, login, STARTTLS), the SMS
gateway played by a local HTTP server (success, 500, timeout), and log only; each failure says
why."""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from hotline.settings import Settings
from notify.channels import LogOnly, Message, SmsGateway, SmtpChannel, idempotency_key, message_id
from notify.service import Notifier
from tests.notify.conftest import Certificate, Gateway, Mailbox, free_port, serve_smtp

MAIL = Message("email", "water@dept.example", "【12345】临期提醒：工单 202611160001 还剩1个工作日到期",
               "菏泽市水务集团有限公司：\n\n工单编号：202611160001\n标题：丽景花园停水\n", ticket_id=1,
               kind="deadline_before", key="k1")
SMS = Message("sms", "13900000001", "", "【12345】工单202611160001「丽景花园停水」今天到期", ticket_id=1,
              kind="deadline_due", key="k2")


async def test_an_email_arrives_with_its_chinese_subject_and_body(mailbox: Mailbox) -> None:
    channel = SmtpChannel(host=mailbox.host, port=mailbox.port, sender="12345热线 <hotline@12345.example>")
    delivery = await Notifier({"email": channel}).send(MAIL)
    assert (delivery.status, delivery.transport, delivery.error) == ("sent", "smtp", "")
    [mail] = mailbox.wait(1)
    assert mail["Subject"] == MAIL.subject and mail["To"] == "water@dept.example"
    assert mail["From"].addresses[0].addr_spec == "hotline@12345.example"
    assert mail.get_content_charset() == "utf-8" and mail.get_content().replace("\r\n", "\n") == MAIL.body


async def test_an_email_logs_in_after_starttls(certificate: Certificate) -> None:
    box, ctl = serve_smtp(tls_context=certificate.server(), require_starttls=True)
    try:
        channel = SmtpChannel(host=box.host, port=box.port, user="hotline", password="s3cret", starttls=True,
                              tls=certificate.client())
        assert (await channel.send(MAIL)).status == "sent"
        assert box.wait(1) and box.logins == ["hotline"]
        # the same server refuses the mail of a client that would not encrypt
        plain = await Notifier({"email": SmtpChannel(host=box.host, port=box.port)}).send(MAIL)
        assert plain.status == "failed" and "被 SMTP 服务器拒绝（530 Must issue a STARTTLS" in plain.error
    finally:
        ctl.stop()


async def test_an_untrusted_certificate_fails_starttls_and_says_so(certificate: Certificate) -> None:
    box, ctl = serve_smtp(tls_context=certificate.server())
    try:
        got = await Notifier({"email": SmtpChannel(host=box.host, port=box.port, starttls=True)}).send(MAIL)
        assert got.status == "failed" and "STARTTLS 加密失败" in got.error and "CERTIFICATE_VERIFY_FAILED" in got.error
        assert box.mails == []
    finally:
        ctl.stop()


async def test_smtp_failures_say_why(mailbox: Mailbox) -> None:
    async def send(**kw) -> str:
        channel = SmtpChannel(**({"host": mailbox.host, "port": mailbox.port, "timeout_s": 2} | kw))
        delivery = await Notifier({"email": channel}).send(MAIL)
        assert delivery.status == "failed" and delivery.transport == "smtp"
        return delivery.error

    assert "无法连接 SMTP 服务器 127.0.0.1:" in await send(port=free_port())
    assert "不支持 STARTTLS" in await send(starttls=True)
    assert "SMTP 登录被拒绝（用户 hotline：535" in await send(user="hotline", password="wrong")
    assert mailbox.mails == []

    # a server that accepts the connection and never greets: the timeout, not a hang
    silent = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(silent.accept()[0]), daemon=True).start()
    try:
        why = await send(port=silent.getsockname()[1], timeout_s=0.5)
        assert why == f"SMTP 服务器 127.0.0.1:{silent.getsockname()[1]} 在 0.5 秒内没有应答"
    finally:
        for s in (*held, silent):
            s.close()


async def test_the_sms_gateway_gets_json_with_the_bearer_token(gateway: Gateway) -> None:
    delivery = await SmsGateway(url=gateway.url, token="gw-token").send(SMS)
    assert (delivery.status, delivery.transport) == ("sent", "sms_gateway")
    [req] = gateway.requests
    assert req == {"path": "/sms/send", "auth": "Bearer gw-token", "key": idempotency_key("k2"),
                   "json": {"to": "13900000001", "text": SMS.body}}


async def test_every_send_of_one_message_is_recognisably_the_same(mailbox: Mailbox, gateway: Gateway) -> None:
    """A re-send after a crash (notify/outbox.py's at-least-once edge) carries the first one's
    Message-ID, derived from the outbox key; the SMS gateway gets the same Idempotency-Key."""
    channel = SmtpChannel(host=mailbox.host, port=mailbox.port, sender="12345热线 <hotline@12345.example>")
    other = replace(MAIL, key="k1-other")
    for m in (MAIL, MAIL, other, replace(MAIL, key=""), replace(MAIL, key="")):
        assert (await channel.send(m)).status == "sent"
    ids = [m["Message-ID"] for m in mailbox.wait(5)]
    assert ids[0] == ids[1] == message_id("k1", "12345.example") == "<" + idempotency_key("k1") + "@12345.example>"
    assert ids[2] == message_id("k1-other", "12345.example") != ids[0]
    assert len(set(ids)) == 4  # a message without a key: a fresh id each time (no outbox behind it)
    sms = SmsGateway(url=gateway.url)
    for m in (SMS, SMS, replace(SMS, key="k3")):
        await sms.send(m)
    assert [r["key"] for r in gateway.take()] == [idempotency_key("k2")] * 2 + [idempotency_key("k3")]


async def test_sms_gateway_failures_say_why(gateway: Gateway) -> None:
    notifier = Notifier({"sms": SmsGateway(url=gateway.url, token="t", timeout_s=0.5)})
    gateway.mode = "error"
    got = await notifier.send(SMS)
    assert (got.status, got.error) == ("failed", "短信网关拒绝发送：HTTP 500 internal error: modem offline")
    gateway.mode = "slow"
    got = await notifier.send(SMS)
    assert got.status == "failed" and got.error.startswith("短信网关在 0.5 秒内没有应答")
    closed = f"http://127.0.0.1:{free_port()}/sms"
    got = await Notifier({"sms": SmsGateway(url=closed)}).send(SMS)
    assert got.status == "failed" and got.error.startswith(f"无法连接短信网关 {closed}")
    assert len(gateway.requests) == 2


async def test_the_defaults_only_log_and_send_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier.from_settings(Settings(var_dir=tmp_path, services=[]))
    assert all(isinstance(c, LogOnly) for c in notifier.channels.values())
    with caplog.at_level(logging.INFO, logger="notify.channels"):
        assert await notifier.send(SMS) == await notifier.send(MAIL)
    assert (await notifier.send(SMS)).status == "logged"
    assert "notification (log only) sms → 13900000001" in caplog.text


async def test_settings_choose_smtp_and_the_gateway(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, services=[], smtp_host="mail.example", smtp_port=587, smtp_user="u",
                        smtp_password="p", smtp_starttls=True, sms_gateway_url="https://sms.example/send",
                        sms_gateway_token="tok")
    channels = Notifier.from_settings(settings).channels
    assert channels["email"] == SmtpChannel(host="mail.example", port=587, sender="hotline@localhost", user="u",
                                            password="p", starttls=True, timeout_s=10.0)
    assert channels["sms"] == SmsGateway(url="https://sms.example/send", token="tok", timeout_s=10.0)
    assert "tok" not in repr(channels) and "'p'" not in repr(channels)
    unknown = await Notifier(channels).send(Message("fax", "1", "", "x"))  # type: ignore[arg-type]
    assert unknown.status == "failed" and "未配置通知渠道“fax”" in unknown.error

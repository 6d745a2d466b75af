"""The ways out: e-mail over SMTP, an SMS gateway over HTTP, and a log-only channel.

Each channel takes a :class:`Message` and answers a :class:`Delivery`, or raises
:class:`ChannelError` saying in Chinese (with the technical cause) why nothing went out: the
notification log keeps that text and the ticket's page shows it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import ClassVar, Literal, Protocol

import httpx

log = logging.getLogger(__name__)

ChannelName = Literal["email", "sms"]


@dataclass(frozen=True, slots=True)
class Message:
    """One notification to one recipient over one channel.

    ``key`` is its idempotency key in the notification log; ``department_id`` its audience (a
    department, or None for the centre); ``ticket_id`` and ``kind`` say what it is about.
    """

    channel: ChannelName
    to: str
    subject: str
    body: str
    ticket_id: int | None = None
    kind: str = ""
    key: str = ""
    department_id: int | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    status: Literal["sent", "failed", "logged"]
    transport: str  # smtp / sms_gateway / log: what carried it (or failed to)
    error: str = ""


class ChannelError(Exception):
    """Why a channel sent nothing, in words for the people reading the log."""


class Channel(Protocol):
    transport: ClassVar[str]

    async def send(self, message: Message) -> Delivery: ...


@dataclass(frozen=True)
class SmtpChannel:
    """E-mail over SMTP with the standard library, in a worker thread (smtplib blocks)."""

    transport: ClassVar[str] = "smtp"
    host: str
    port: int = 25
    sender: str = "hotline@localhost"
    user: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = False
    timeout_s: float = 10.0
    tls: ssl.SSLContext | None = None  # None: the system's trusted authorities

    async def send(self, message: Message) -> Delivery:
        await asyncio.to_thread(self._send, message)
        return Delivery("sent", self.transport)

    def _send(self, message: Message) -> None:
        mail = EmailMessage()  # the default policy encodes a Chinese subject (RFC 2047) and body (UTF-8)
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=True)
        domain = self.sender.rpartition("@")[2].strip("> ") or "localhost"
        # one key, one Message-ID: a send repeated after a crash (notify/outbox.py) is the same message
        mail["Message-ID"] = message_id(message.key, domain) if message.key else make_msgid(domain=domain)
        mail.set_content(message.body, charset="utf-8")
        where = f"{self.host}:{self.port}"
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                smtp.ehlo()
                if self.starttls:
                    if not smtp.has_extn("starttls"):
                        raise ChannelError(f"SMTP 服务器 {where} 不支持 STARTTLS（设置要求加密）")
                    smtp.starttls(context=self.tls or ssl.create_default_context())
                    smtp.ehlo()
                if self.user:
                    smtp.login(self.user, self.password)
                smtp.send_message(mail)
        except TimeoutError:
            raise ChannelError(f"SMTP 服务器 {where} 在 {self.timeout_s:g} 秒内没有应答") from None
        except smtplib.SMTPNotSupportedError as e:
            raise ChannelError(f"SMTP 服务器 {where} 不支持所需功能（{_text(e)}）") from None
        except smtplib.SMTPAuthenticationError as e:
            raise ChannelError(f"SMTP 登录被拒绝（用户 {self.user}：{e.smtp_code} {_text(e.smtp_error)}）") from None
        except smtplib.SMTPRecipientsRefused as e:
            why = "；".join(f"{code} {_text(msg)}" for code, msg in e.recipients.values())
            raise ChannelError(f"收件人 {message.to} 被 SMTP 服务器拒绝（{why}）") from None
        except smtplib.SMTPSenderRefused as e:
            why = f"{e.smtp_code} {_text(e.smtp_error)}"
            raise ChannelError(f"发件人 {self.sender} 被 SMTP 服务器拒绝（{why}）") from None
        except smtplib.SMTPResponseException as e:
            raise ChannelError(f"SMTP 服务器拒绝发送（{e.smtp_code} {_text(e.smtp_error)}）") from None
        except smtplib.SMTPServerDisconnected as e:
            if "timed out" in str(e):  # smtplib turns a read timeout into a disconnection
                raise ChannelError(f"SMTP 服务器 {where} 在 {self.timeout_s:g} 秒内没有应答") from None
            raise ChannelError(f"SMTP 服务器 {where} 断开了连接（{_text(e)}）") from None
        except smtplib.SMTPException as e:
            raise ChannelError(f"SMTP 出错：{_text(e)}") from None
        except ssl.SSLError as e:  # before OSError: it is one
            raise ChannelError(f"与 SMTP 服务器 {where} 建立 STARTTLS 加密失败（{e.reason or e}）") from None
        except OSError as e:
            raise ChannelError(f"无法连接 SMTP 服务器 {where}（{e.strerror or e}）") from None


@dataclass(frozen=True)
class SmsGateway:
    """SMS through an HTTP gateway: ``POST {"to", "text"}`` as JSON with a bearer token; any
    answer but 2xx is a failure."""

    transport: ClassVar[str] = "sms_gateway"
    url: str
    token: str = field(default="", repr=False)
    timeout_s: float = 10.0

    async def send(self, message: Message) -> Delivery:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if message.key:  # the same on every send of one message: a gateway that honours it sends once
            headers["Idempotency-Key"] = idempotency_key(message.key)
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                res = await client.post(self.url, json={"to": message.to, "text": message.body}, headers=headers)
        except httpx.TimeoutException:
            raise ChannelError(f"短信网关在 {self.timeout_s:g} 秒内没有应答（{self.url}）") from None
        except httpx.HTTPError as e:
            raise ChannelError(f"无法连接短信网关 {self.url}（{type(e).__name__}：{e}）") from None
        if not res.is_success:
            raise ChannelError(f"短信网关拒绝发送：HTTP {res.status_code} {res.text.strip()[:200]}")
        return Delivery("sent", self.transport)


@dataclass(frozen=True)
class LogOnly:
    """Nothing leaves the machine: the message is written to the log and recorded as ``logged``
    (the demo's default, and any channel not configured)."""

    transport: ClassVar[str] = "log"

    async def send(self, message: Message) -> Delivery:
        log.info("notification (log only) %s → %s: %s", message.channel, message.to,
                 message.subject or message.body[:80])
        return Delivery("logged", self.transport)


def idempotency_key(key: str) -> str:
    """The outbox key as a token fit for a header (the key holds an address or a number).

    >>> idempotency_key("deadline_due:7:20261123T235959:0:sms:13900000001")
    'notify-88bd47f7a9df135aaa751bd47253e6fe'
    """
    return "notify-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def message_id(key: str, domain: str) -> str:
    """The Message-ID of every send of the message under ``key``: a re-send (the at-least-once
    edge of notify/outbox.py) is recognisable as the same message, and folded by clients that
    de-duplicate by it.

    >>> message_id("deadline_due:7:20261123T235959:0:email:a@b.example", "12345.example")
    '<notify-c279fcc48c82b8070364611ab2a7cd01@12345.example>'
    """
    return f"<{idempotency_key(key)}@{domain}>"


def _text(value: object) -> str:
    """An SMTP reply's text (bytes on the wire) as a string."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)

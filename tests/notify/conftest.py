"""Fixtures of the notification tests: a real SMTP server (aiosmtpd) and a stdlib HTTP server
playing the SMS gateway, both on 127.0.0.1; the ticket store on SQLite and PostgreSQL (the
ticket store tests' ``engine``), with the notification log beside it, on an injected clock."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from hotline.identity import Principal, Role
from notify import db as notify_db
from notify.channels import LogOnly, SmsGateway, SmtpChannel
from notify.reminders import Rules
from notify.service import Notifier
from notify.sweep import ReminderSweep
from tests.support.browser import free_port
from tests.support.postgres import postgres_server  # noqa: F401  (session fixture)
from tests.support.tls import self_signed
from tests.ticketing.conftest import Clock, backend, engine, intake  # noqa: F401  (fixtures)
from ticketing.calendar import TZ
from ticketing.context import StoreContext
from ticketing.store import Store

WATER_EMAIL, WATER_MOBILE = "water@dept.example", "13900000001"
CITY_EMAIL = "city@dept.example"
CENTRE_EMAIL, CENTRE_MOBILE = "duty@12345.example", "13900000009"
# the confidential reporter: none of it may reach a message
REPORTER = {"caller_name": "张桂兰", "caller_number": "13853012345", "contact": "13853099999",
            "caller_address": "牡丹区长江路88号3单元502"}


# --- the SMTP server -------------------------------------------------------------------------

@dataclass
class Mailbox:
    """What the local SMTP server received, parsed."""

    host: str = "127.0.0.1"
    port: int = 0
    mails: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(message_from_bytes(envelope.original_content or envelope.content, policy=policy.default))
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"hotline", b"s3cret")
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    def take(self) -> list[EmailMessage]:
        out = list(self.mails)
        self.mails.clear()
        return out

    def wait(self, n: int, timeout: float = 10) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.mails) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.mails


def serve_smtp(**kwargs: Any) -> tuple[Mailbox, Controller]:
    box = Mailbox(port=free_port())
    # PLAIN only: smtplib falls back to LOGIN after a refused PLAIN, and aiosmtpd's LOGIN does not
    # take smtplib's initial response (the exchange hangs until the timeout)
    ctl = Controller(box, hostname=box.host, port=box.port, authenticator=box.authenticate,
                     auth_exclude_mechanism=["LOGIN"], **kwargs)
    ctl.start()
    return box, ctl


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A plain SMTP server (no TLS, login allowed without it)."""
    box, ctl = serve_smtp(auth_require_tls=False)
    try:
        yield box
    finally:
        ctl.stop()


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    cert, key = self_signed(tmp_path, "127.0.0.1", "IP:127.0.0.1")
    return Certificate(cert, key)


# --- the SMS gateway -------------------------------------------------------------------------

@dataclass
class Gateway:
    """A local HTTP server playing the SMS gateway; ``mode`` says how it answers the next posts."""

    url: str = ""
    mode: str = "ok"  # ok | error (HTTP 500) | slow (answers after ``slow_s``)
    slow_s: float = 2.0
    requests: list[dict[str, Any]] = field(default_factory=list)

    def take(self) -> list[dict[str, Any]]:
        out = list(self.requests)
        self.requests.clear()
        return out


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            gw.requests.append({"path": self.path, "auth": self.headers.get("authorization"),
                                "key": self.headers.get("idempotency-key"), "json": json.loads(body)})
            if gw.mode == "slow":
                time.sleep(gw.slow_s)
            code, text = (500, "internal error: modem offline") if gw.mode == "error" else (200, '{"ok": true}')
            data = text.encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    gw.url = f"http://127.0.0.1:{server.server_address[1]}/sms/send"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gw
    finally:
        server.shutdown()
        server.server_close()


# --- the store, the departments, a ticket --------------------------------------------------

@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 16, 9, 30, tzinfo=TZ))  # a Monday of a normal working week


@pytest.fixture
def store(engine: sa.Engine, clock: Clock, tmp_path: Path) -> Store:  # noqa: F811 (the fixture by name)
    """The ticket store (ticketing's ``engine`` fixture: SQLite, then PostgreSQL) with the
    notification log migrated beside it."""
    notify_db.migrate(engine)
    return Store.on(StoreContext(engine, clock=clock, files=tmp_path / "attachments"))


@dataclass
class City:
    water: int
    city: int

    operator = Principal("op8001", Role.OPERATOR, job_number="8001")
    lead = Principal("lead1", Role.LEAD)

    @property
    def water_staff(self) -> Principal:
        return Principal("water", Role.DEPARTMENT, department_id=self.water)


@pytest.fixture
def city(store: Store) -> City:
    admin = Principal("admin", Role.ADMIN)
    water = store.directory.save({"name": "菏泽市水务集团有限公司", "duties": "供水 停水",
                                  "notify_email": WATER_EMAIL, "notify_mobile": WATER_MOBILE}, admin)
    city = store.directory.save({"name": "菏泽市城市管理局", "duties": "占道经营", "notify_email": CITY_EMAIL}, admin)
    return City(water=water.id, city=city.id)


def open_ticket(store: Store, city: City, **over: Any) -> Any:
    """A ticket transferred to the water company and signed for: its completion deadline runs
    (求助: 5 working days, so due next Monday when opened on a Monday)."""
    t = store.tickets.create(intake(**over), city.operator)
    store.actions.transfer(t.id, city.water, "请核实处理", city.operator, co_department_ids=[city.city])
    return store.actions.accept(t.id, city.water_staff)


def rules(**over: Any) -> Rules:
    base = {"centre_email": CENTRE_EMAIL, "centre_mobile": "", "link_base": "http://hotline.example"}
    return Rules(**(base | over))


def smtp_notifier(box: Mailbox, **over: Any) -> Notifier:
    return Notifier({"email": SmtpChannel(host=box.host, port=box.port, timeout_s=5, **over), "sms": LogOnly()})


def sms_notifier(gw: Gateway, timeout_s: float = 0.5) -> Notifier:
    return Notifier({"email": LogOnly(), "sms": SmsGateway(url=gw.url, token="gw-token", timeout_s=timeout_s)})


def sweep(store: Store, notifier: Notifier, **over: Any) -> ReminderSweep:
    return ReminderSweep(store, notifier, rules(**over))

"""``GET /api/notifications?ticket_id=N`` on the real app: the centre sees a ticket's
notifications, a department only those sent to it and only for tickets it handles; and the app
the composition root builds runs the reminder sweep with the configured channels."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from hotline.identity import Principal, Role
from hotline.settings import Settings
from launch.compose import web_app
from notify.models import Notification
from testkit.auth import Bearer, use
from tests.notify.conftest import REPORTER, WATER_EMAIL, Mailbox
from tests.ticketing.conftest import intake

ADMIN = Principal("admin", Role.ADMIN)
OPERATOR = Principal("op1024", Role.OPERATOR, job_number="1024")
LEAD = Principal("lead", Role.LEAD)


def bearer(p: Principal) -> Bearer:
    return Bearer(p)


def dept(department_id: int | None, name: str = "dept") -> Principal:
    return Principal(name, Role.DEPARTMENT, department_id=department_id)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    with use(TestClient(web_app(Settings(var_dir=tmp_path_factory.mktemp("var"), services=[])))) as client:
        store = client.app.state.store
        water = store.directory.save({"name": "水务集团", "notify_email": WATER_EMAIL}, ADMIN).id
        city = store.directory.save({"name": "城管局", "notify_email": "city@dept.example"}, ADMIN).id
        shared = store.tickets.create(intake(confidential=True, **REPORTER), OPERATOR)
        store.actions.transfer(shared.id, water, "请处理", OPERATOR, co_department_ids=[city])
        own = store.tickets.create(intake(title="水表漏水"), OPERATOR)
        store.actions.transfer(own.id, water, "请处理", OPERATOR)
        now = store.ctx.clock()
        # the rows as the outbox leaves them, written as they are: the app's own sweep runs beside
        # this test and would take a pending row up (the outbox's behaviour is test_outbox.py's)
        sent = {"status": "sent", "transport": "smtp", "sent_at": now, "attempts": 1}
        retry = {"status": "pending", "transport": "smtp", "error": "连接被拒绝", "attempts": 1,
                 "next_attempt_at": now + timedelta(hours=1)}
        logged = {"status": "logged", "transport": "log", "sent_at": now, "attempts": 1}
        with store.engine.begin() as conn:
            for n, (to, dept_id, end) in enumerate([("duty@12345.example", None, sent), (WATER_EMAIL, water, retry),
                                                     ("city@dept.example", city, logged)]):
                conn.execute(sa.insert(Notification.__table__).values(
                    key=f"test:{n}", ticket_id=shared.id, department_id=dept_id, kind="deadline_before",
                    channel="email", recipient=to, subject=f"提醒{n}", body="正文", created_at=now, **end))
        yield client, {"water": water, "city": city, "shared": shared.id, "own": own.id}


def get(client: TestClient, who: Principal | None, ticket_id: Any) -> Any:
    return client.get("/api/notifications", params={"ticket_id": ticket_id}, headers=bearer(who) if who else {})


def test_anonymous_is_refused(app) -> None:
    client, ids = app
    res = get(client, None, ids["shared"])
    assert res.status_code == 401 and "登录" in res.json()["detail"]


@pytest.mark.parametrize("who", [OPERATOR, LEAD, Principal("qa", Role.QA), ADMIN])
def test_the_centre_sees_every_notification_of_the_ticket_newest_first(app, who: Principal) -> None:
    client, ids = app
    res = get(client, who, ids["shared"])
    assert res.status_code == 200
    body = res.json()
    assert body["ticket_id"] == ids["shared"]
    assert [(i["recipient"], i["audience"], i["status"]) for i in body["items"]] == [
        ("city@dept.example", "department", "logged"), (WATER_EMAIL, "department", "pending"),
        ("duty@12345.example", "centre", "sent")]
    failed = body["items"][1]
    assert failed | {"id": 0, "created_at": "", "next_attempt_at": ""} == {
        "id": 0, "ticket_id": ids["shared"], "supervision_id": None,
        "kind": "deadline_before", "kind_label": "临期提醒",
        "channel": "email",
        "channel_label": "邮件", "transport": "smtp", "audience": "department", "department_id": ids["water"],
        "recipient": WATER_EMAIL, "subject": "提醒1", "body": "正文", "status": "pending",
        "status_label": "发送失败，等待重试（已尝试 1 次）",
        "error": "连接被拒绝", "attempts": 1, "created_at": "", "sent_at": None, "next_attempt_at": ""}
    assert get(client, who, ids["own"]).json()["items"] == []


def test_reading_them_logs_no_confidential_read(app) -> None:
    client, ids = app
    reads = client.app.state.store.tickets.confidential_reads
    before = reads(ids["shared"], LEAD)
    for who in (LEAD, OPERATOR, dept(ids["water"], "water")):
        assert get(client, who, ids["shared"]).status_code == 200
    assert reads(ids["shared"], LEAD) == before


def test_a_department_sees_only_what_was_sent_to_it_on_tickets_it_handles(app) -> None:
    client, ids = app
    water, city = dept(ids["water"], "water"), dept(ids["city"], "city")
    assert [i["recipient"] for i in get(client, water, ids["shared"]).json()["items"]] == [WATER_EMAIL]
    assert [i["recipient"] for i in get(client, city, ids["shared"]).json()["items"]] == ["city@dept.example"]
    assert get(client, water, ids["own"]).json() == {"ticket_id": ids["own"], "items": []}
    res = get(client, city, ids["own"])  # the city does not handle this one
    assert (res.status_code, res.json()["detail"]) == (404, "工单不存在或无权查看")
    res = get(client, dept(None), ids["shared"])
    assert (res.status_code, res.json()["detail"]) == (403, "账号未关联承办单位")


@pytest.mark.parametrize("bad", ["", "abc", "-1", "1.5", "9" * 13])
def test_a_bad_ticket_id_is_refused_in_chinese(app, bad: str) -> None:
    client, _ = app
    res = get(client, LEAD, bad)
    assert (res.status_code, res.json()["detail"]) == (422, "请提供工单编号 ticket_id（正整数）")


def test_an_unknown_ticket_is_not_found(app) -> None:
    client, _ = app
    assert get(client, LEAD, 999999).status_code == 404


def test_the_web_node_sweeps_and_mails_through_the_configured_smtp(tmp_path: Path, mailbox: Mailbox) -> None:
    settings = Settings(var_dir=tmp_path, services=[], smtp_host=mailbox.host, smtp_port=mailbox.port,
                        notify_sweep_s=0.1, notify_link_base="https://12345.example.gov.cn/")
    with use(TestClient(web_app(settings))) as client:
        store = client.app.state.store
        water = store.directory.save({"name": "水务集团", "notify_email": WATER_EMAIL}, ADMIN).id
        t = store.tickets.create(intake(), OPERATOR)
        store.actions.transfer(t.id, water, "请处理", OPERATOR)
        store.actions.supervise(t.id, "请加快办理", LEAD)
        mails = [m for m in mailbox.wait(2) if "督办通知" in m["Subject"]]
        assert [m["To"] for m in mails] == [WATER_EMAIL]
        assert f"查看工单：https://12345.example.gov.cn/dept?ticket={t.id}" in mails[0].get_content()
        items = client.get("/api/notifications", params={"ticket_id": t.id}, headers=bearer(LEAD)).json()["items"]
        assert {(i["kind"], i["status"], i["transport"]) for i in items} >= {("supervision", "sent", "smtp")}

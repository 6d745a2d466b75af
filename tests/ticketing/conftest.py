"""Fixtures of the ticket store tests: every store test runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from hotline.db import make_engine
from hotline.identity import Principal, Role
from tests.support import migrated
from tests.support.postgres import postgres_server  # noqa: F401  (session fixture)
from ticketing.calendar import TZ
from ticketing.context import StoreContext
from ticketing.db import migrate
from ticketing.store import Store


class Clock:
    """An injected "now" that tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


@pytest.fixture
def clock() -> Clock:
    # a Monday in a normal working week of 2026
    return Clock(datetime(2026, 11, 16, 9, 30, tzinfo=TZ))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request) -> str:
    return request.param


@pytest.fixture
def engine(backend: str, tmp_path, request) -> Iterator[sa.Engine]:
    # a new database of its own, migrated: a copy of the one migrated once this session (tests.support.migrated)
    if backend == "sqlite":
        url = migrated.sqlite_url(tmp_path / "tickets.db", migrate)
        name = None
    else:
        server = request.getfixturevalue("postgres_server")
        url = migrated.postgres_url(server, migrate)
        name = url.rsplit("/", 1)[-1]
    eng = make_engine(url)
    migrate(eng)  # at head already: nothing to do, as on any restart
    yield eng
    eng.dispose()
    if name:
        server.drop_database(name)


@pytest.fixture
def svc(engine: sa.Engine, clock: Clock, tmp_path) -> Store:
    return Store.on(StoreContext(engine, clock=clock, files=tmp_path / "attachments", max_attachment_bytes=64 * 1024))


@dataclass
class People:
    operator: Principal
    lead: Principal
    qa: Principal
    admin: Principal
    water: Principal  # 水务集团
    city: Principal  # 城管局


@pytest.fixture
def depts(svc: Store) -> dict[str, int]:
    admin = Principal("admin", Role.ADMIN)
    out = {}
    for name, duties in [
        ("菏泽市水务集团有限公司", "供水 停水 漏水 水管破裂"),
        ("菏泽市城市管理局", "占道经营 油烟 夜间施工噪音 路灯"),
        ("菏泽市市场监督管理局", "食品安全 消费维权"),
    ]:
        out[name[3:5]] = svc.directory.save({"name": name, "duties": duties}, admin).id
    return out


@pytest.fixture
def people(depts: dict[str, int]) -> People:
    return People(
        operator=Principal("op8001", Role.OPERATOR, display_name="话务员", job_number="017"),
        lead=Principal("lead1", Role.LEAD),
        qa=Principal("qa1", Role.QA),
        admin=Principal("admin", Role.ADMIN),
        water=Principal("water", Role.DEPARTMENT, department_id=depts["水务"]),
        city=Principal("city", Role.DEPARTMENT, department_id=depts["城市"]),
    )


def intake(**over) -> dict:
    """A realistic intake body; tests override what they care about."""
    body = {
        "category": "求助",
        "title": "丽景花园停水",
        "caller_number": "13853012345",
        "caller_name": "张桂兰",
        "contact": "13853012345",
        "district": "牡丹区",
        "matter_place": "牡丹区长江路丽景花园",
        "matter_time": "前天晚上",
        "matter_course": "小区从前天晚上开始停水，没有接到停水通知",
        "matter_demand": "尽快恢复供水",
    }
    body.update(over)
    return body

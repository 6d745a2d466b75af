"""The wired routes over real sockets against a real ticket store (SQLite in a temp folder)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from agi import service
from hotline.db import make_engine
from hotline.identity import Principal, Role
from hotline.settings import Settings
from tests.agi.fakes import AgiClient, Recorder
from tests.ticketing.conftest import intake
from ticketing.context import StoreContext
from ticketing.db import migrate
from ticketing.store import Store

REPEAT = "13853012345"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'tickets.db'}")
    migrate(engine)
    clock = Clock()
    svc = Store.on(StoreContext(engine, clock=clock))
    op = Principal("op", Role.OPERATOR, job_number="007")
    clock.now = datetime.now(UTC) - timedelta(days=10)
    old = svc.tickets.create(intake(caller_number=REPEAT), op)  # registered 10 days ago: transfer deadline passed
    clock.now = datetime.now(UTC) - timedelta(days=1)
    svc.tickets.create(intake(caller_number=REPEAT, title="又停水了"), op)  # and again yesterday: a repeat caller
    clock.now = datetime.now(UTC)
    yield svc, old
    engine.dispose()


@pytest.fixture
async def wired(store, tmp_path):
    svc, old = store
    settings = Settings(var_dir=tmp_path, agi_port=0, service_hours="00:00-24:00")
    on_survey, on_cb = Recorder(), Recorder()
    lookups = service.TicketLookups(svc, settings.cti_timezone)
    srv = service.server(settings, lookups, on_survey=on_survey, on_callback_request=on_cb,
                         job_number={"8001": "015"}.get)
    await srv.start()
    yield srv, old, on_survey, on_cb
    await srv.stop(grace=0.5)
    lookups.close()


async def test_lookup_of_a_repeat_caller_with_an_overdue_ticket(wired) -> None:
    srv, old, *_ = wired
    client = AgiClient("127.0.0.1", srv.port, callerid=REPEAT, variables={"HL_SEATS": "2"})
    await client.run()
    v = client.variables
    assert v["__HL_LOCATION"] == "山东省菏泽市" and v["__HL_TICKETS"] == "2" and v["__HL_OPEN"] == "2"
    assert v["__HL_REPEAT"] == "1" and v["__HL_OVERDUE"] == "1" and v["__HL_FLAGS"] == "repeat,overdue"
    assert v["__HL_PRIORITY"] == "10" and "HL_ROUTE" not in v and "HL_LOOKUP" not in v  # queue, ok: defaults
    assert f",{old.number}:red:已登记:求助:丽景花园停水" in v["__HL_RECENT"]  # the pop's history: status, title


async def test_a_blacklisted_number_is_routed_to_the_warning(wired, store) -> None:
    svc, _ = store
    svc.callers.set_flags("13900000000", Principal("lead", Role.LEAD), blacklisted=True)
    client = AgiClient("127.0.0.1", wired[0].port, callerid="13900000000", variables={"HL_SEATS": "2"})
    await client.run()
    assert client.variables["HL_ROUTE"] == "harass" and client.variables["__HL_FLAGS"] == "blacklist"


async def test_fifty_lookups_at_once_all_answer(wired) -> None:
    clients = [AgiClient("127.0.0.1", wired[0].port, callerid=f"1395301{i:04d}", variables={"HL_SEATS": "1"})
               for i in range(50)]
    await asyncio.gather(*(c.run() for c in clients))
    assert all("HL_LOOKUP" not in c.variables and c.variables["__HL_LOCATION"] for c in clients)


async def test_status_query_and_survey_and_job_number_through_the_routes(wired) -> None:
    srv, old, on_survey, _ = wired
    wrong = "000000" if old.query_code != "000000" else "111111"
    client = AgiClient("127.0.0.1", srv.port, script="status", keys=[old.number, wrong, old.number, old.query_code])
    commands = await client.run()
    played = [c[2] for c in commands if c[:2] == ["EXEC", "Playback"]]
    assert played[0] == "hotline/status-notfound"  # the number alone, with a wrong code, says nothing
    assert played[-1].startswith("hotline/status-is&hotline/status/registered&hotline/goodbye")
    client = AgiClient("127.0.0.1", srv.port, script="survey", keys=["2"], uniqueid="77.1")
    await client.run()
    assert on_survey.calls == [("77.1", "13953012345", 2)] and client.variables["HL_SAT"] == "2"
    client = AgiClient("127.0.0.1", srv.port, script="jobno", variables={"MEMBERNAME": "8001"})
    commands = await client.run()
    assert ["EXEC", "Playback", "hotline/operator-pre&digits/0&digits/1&digits/5&hotline/operator-post"] in commands


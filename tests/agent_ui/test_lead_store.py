"""The lead's store on SQLite and on a real PostgreSQL: what it writes comes back (times aware, in
UTC), what it must refuse it refuses, and agent_ui's migrations build exactly agent_ui's models."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from agent_ui.db import VERSION_TABLE, migrate
from agent_ui.lead import LeadStore
from agent_ui.lead.models import SeatSpell
from agent_ui.lead.store import Conflict, NotFound
from tests.support.postgres import postgres_server  # noqa: F401  (session fixture)

BEIJING = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=BEIJING)




class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(engine: sa.Engine, clock: Clock) -> LeadStore:
    return LeadStore(engine, clock=clock)


def utc(iso: str) -> datetime:
    moment = datetime.fromisoformat(iso)
    assert moment.utcoffset() == timedelta(0), iso  # a browser reads a naive time as its own local time
    return moment


def test_acknowledgements_are_logged_latest_first(store: LeadStore) -> None:
    for n, who in enumerate(("lead", "lead2")):
        store.log_ack(kind="emergency", key=f"ticket:{n}", title="重大紧急工单", detail="燃气泄漏" * 100, queue="",
                      seat="", raised_at=T0 + timedelta(minutes=n), acked_by=who,
                      acked_at=T0 + timedelta(minutes=n, seconds=30))
    latest, first = store.ack_log()
    assert (latest["acked_by"], first["acked_by"]) == ("lead2", "lead")
    assert set(first) == {"kind", "title", "detail", "queue", "seat", "raised_at", "acked_by", "acked_at"}
    assert len(first["detail"]) == 255  # the column's length, not a database error
    assert utc(first["raised_at"]) == T0 and utc(first["acked_at"]) == T0 + timedelta(seconds=30)
    assert [a["acked_by"] for a in store.ack_log(limit=1)] == ["lead2"]


def test_spells_overlapping_a_period_in_the_states_the_report_counts(store: LeadStore) -> None:
    for offset_min, minutes, state in ((0, 10, "busy"), (20, 5, "wrap_up"), (30, 5, "ready"), (120, 5, "busy")):
        start = T0 + timedelta(minutes=offset_min)
        store.add_spells([("8001", "op1024", state, "培训" * 40, start, start + timedelta(minutes=minutes))])
    got = store.spells(T0 + timedelta(minutes=5), T0 + timedelta(minutes=60))
    assert [(s["operator"], s["state"]) for s in got] == [("op1024", "busy"), ("op1024", "wrap_up")]
    assert got[0]["started_at"] == T0 and got[0]["started_at"].utcoffset() == timedelta(0)  # whole, aware
    assert store.spells(T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)) == []  # ends are exclusive
    with Session(store.engine) as s:
        reason, seconds = s.exec(select(SeatSpell.reason, SeatSpell.seconds).order_by(SeatSpell.id)).first()
    assert (len(reason), seconds) == (64, 600.0)


def test_a_handover_is_countersigned_once_by_another_lead(store: LeadStore, clock: Clock) -> None:
    hid = store.create_handover(shift="2026-11-23 白班", from_lead="lead", notes="8003 耳机故障", tickets=[12, 15])
    [row] = store.handovers()
    assert (row["id"], row["from_lead"], row["to_lead"], row["tickets"]) == (hid, "lead", "", "12,15")
    assert utc(row["created_at"]) == T0 and row["to_signed_at"] is None
    with pytest.raises(Conflict, match="两位班长"):
        store.sign_handover(hid, "lead")
    clock.now = T0 + timedelta(hours=8)
    store.sign_handover(hid, "lead2")
    with pytest.raises(Conflict, match="已由接班班长签字"):
        store.sign_handover(hid, "lead3")
    [row] = store.handovers()
    assert row["to_lead"] == "lead2" and utc(row["to_signed_at"]) == T0 + timedelta(hours=8)
    with pytest.raises(NotFound, match="交接记录不存在"):
        store.sign_handover(hid + 1, "lead2")
    later = store.create_handover(shift="2026-11-23 中班", from_lead="lead2", notes="", tickets=[])
    assert [h["id"] for h in store.handovers()] == [later, hid] and [h["id"] for h in store.handovers(1)] == [later]


def test_the_roster_refuses_a_person_twice_on_one_shift(store: LeadStore) -> None:
    day = date(2026, 11, 23)
    entry = {"day": day, "shift": "白班 08:00-16:00", "username": "op1024", "duty": "话务员", "seat": "8001",
             "created_by": "lead"}
    first = store.add_roster(**entry)
    with pytest.raises(Conflict, match="op1024 已排在该班次"):
        store.add_roster(**entry)
    store.add_roster(**entry | {"shift": "夜班 00:00-08:00"})  # another shift is another row
    store.add_roster(**entry | {"username": "lead", "duty": "班长", "seat": ""})
    store.add_roster(**entry | {"day": day + timedelta(days=1)})
    rows = store.roster(day)
    assert [(r["shift"][:2], r["duty"], r["username"]) for r in rows] == [
        ("夜班", "话务员", "op1024"), ("白班", "班长", "lead"), ("白班", "话务员", "op1024")]
    assert rows[2] == entry | {"id": first}
    store.remove_roster(first)
    store.remove_roster(first)  # already gone: nothing to do
    assert [r["id"] for r in store.roster(day)] == [rows[0]["id"], rows[1]["id"]]


def test_assessment_entries_summed_per_department_and_item_over_whole_days(store: LeadStore) -> None:
    water, city = "水务集团", "城管局"
    for day, department, item, count in ((22, water, "city_circulars", 1), (23, water, "city_circulars", 2),
                                         (23, water, "false_reports", 1), (25, city, "county_commendations", 3),
                                         (26, city, "county_commendations", 9)):
        store.add_assessment(department=department, day=date(2026, 11, day), item=item, count=count, note="",
                             entered_by="lead")
    entered = store.entered(date(2026, 11, 22), date(2026, 11, 26))  # the 26th is the next period's
    assert {k: dict(v) for k, v in entered.items()} == {
        water: {"city_circulars": 3, "false_reports": 1}, city: {"county_commendations": 3}}
    assert store.entered(date(2026, 11, 27), date(2026, 11, 28)) == {}


def test_times_must_be_aware(store: LeadStore) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive"):
        store.add_spells([("8001", "", "busy", "", datetime(2026, 11, 23, 9), datetime(2026, 11, 23, 10))])


def test_the_migrations_build_exactly_the_models(engine: sa.Engine) -> None:
    # a column added to a model without its migration (or the reverse) shows up here, on both backends
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    from agent_ui.approvals import SeatApproval
    from agent_ui.dialing import CallbackDial
    from agent_ui.lead.models import TABLES

    ours = {SeatApproval.__tablename__, CallbackDial.__tablename__, *TABLES}
    assert set(sa.inspect(engine).get_table_names()) - {VERSION_TABLE} == ours  # no table without a model

    def include(obj, name, type_, _reflected, _compare_to) -> bool:
        # other packages' tables share the metadata (and, in a deployment, the database)
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table is None or table in ours

    with engine.connect() as c:
        ctx = MigrationContext.configure(c, opts={"include_object": include})
        assert compare_metadata(ctx, SQLModel.metadata) == []
    migrate(engine)  # already at head: nothing to do


def test_the_lead_tables_keep_their_server_defaults_and_zones(engine: sa.Engine) -> None:
    """What compare_metadata leaves out: the server defaults (it cannot compare an empty string) and,
    on PostgreSQL, whether a time keeps its zone."""
    from sqlmodel import SQLModel

    from agent_ui.lead.models import TABLES

    inspector = sa.inspect(engine)
    for name in TABLES:
        model = SQLModel.metadata.tables[name]
        for column in inspector.get_columns(name):
            mine = model.c[column["name"]]
            if mine.primary_key:
                continue  # PostgreSQL's default is its sequence
            stored = column["default"] and re.sub(r"::[a-z ]+$", "", column["default"]).strip("'")
            assert stored == (mine.server_default.arg if mine.server_default else None), (name, column)
            if engine.dialect.name == "postgresql" and isinstance(column["type"], sa.DateTime):
                assert column["type"].timezone and mine.type.impl.timezone, (name, column)

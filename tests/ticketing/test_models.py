"""Tables and migrations: aware times on both backends, migrations up and down."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic import command
from sqlmodel import Session

from ticketing.db import TABLES, alembic_config, migrate
from ticketing.models import Ticket


def test_times_come_back_aware_and_equal(engine):
    beijing = timezone(timedelta(hours=8))
    moment = datetime(2026, 10, 1, 8, 30, 15, 123456, tzinfo=beijing)
    with Session(engine) as s:
        t = Ticket(category="咨询", title="x", created_at=moment, updated_at=moment, due_at=moment)
        s.add(t)
        s.commit()
        tid = t.id
    with Session(engine) as s:
        got = s.get(Ticket, tid)
        assert got.created_at == moment and got.created_at.tzinfo is not None
        assert got.created_at.utcoffset() == timedelta(0)  # stored and returned as UTC
        assert got.due_at == datetime(2026, 10, 1, 0, 30, 15, 123456, tzinfo=UTC)


def test_naive_times_are_refused(engine):
    with Session(engine) as s:
        s.add(Ticket(category="咨询", title="x", created_at=datetime(2026, 1, 1), updated_at=datetime(2026, 1, 1)))
        with pytest.raises(sa.exc.StatementError, match="naive"):
            s.commit()


def test_migrations_run_twice_and_go_down_and_up(engine):
    migrate(engine)  # already at head: nothing to do
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    tables = set(sa.inspect(engine).get_table_names())
    assert "ticket" not in tables and "ticket_fts" not in tables
    migrate(engine)
    assert {"ticket", "ticket_event", "department", "article", "calendar_day"} <= set(
        sa.inspect(engine).get_table_names()
    )


def test_the_caller_lookup_is_indexed(engine):
    idx = {i["name"]: i["column_names"] for i in sa.inspect(engine).get_indexes("ticket")}
    assert idx["ix_ticket_caller_created"] == ["caller_number", "created_at"]
    assert idx["ix_ticket_status_category_created"] == ["status", "category", "created_at"]  # migration 0002
    with engine.connect() as c:
        if engine.dialect.name == "sqlite":
            plan = " ".join(
                str(r)
                for r in c.exec_driver_sql(
                    "EXPLAIN QUERY PLAN SELECT id FROM ticket WHERE caller_number = '1' "
                    "ORDER BY created_at DESC LIMIT 5"
                )
            )
            assert "ix_ticket_caller_created" in plan and "SCAN ticket" not in plan
        else:
            c.exec_driver_sql("SET enable_seqscan = off")  # tiny table: ask whether the index can serve
            plan = " ".join(
                str(r)
                for r in c.exec_driver_sql(
                    "EXPLAIN SELECT id FROM ticket WHERE caller_number = '1' ORDER BY created_at DESC LIMIT 5"
                )
            )
            assert "ix_ticket_caller_created" in plan


def test_postgres_full_text_index_is_trigram(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    with engine.connect() as c:
        assert c.exec_driver_sql("SHOW server_encoding").scalar() == "UTF8"
        assert c.exec_driver_sql("SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'").scalar() == "pg_trgm"
        # CJK characters make trigrams only with a UTF-8 LC_CTYPE
        assert c.exec_driver_sql("SELECT array_length(show_trgm('噪音扰民'), 1)").scalar() >= 2


def test_the_migrations_build_exactly_the_models(engine):
    # a column added to a model without its migration (or the reverse) shows up here, on both backends
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    for module in ("accounts.models", "agent_ui.approvals", "recordings.models"):
        importlib.import_module(module)  # their tables join the same metadata, as in a whole run

    def ours(obj, name, type_, _reflected, _compare_to) -> bool:
        # other packages' tables share the metadata (and, in a deployment, the database)
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        if table is not None and table not in TABLES:
            return False
        return not (type_ == "index" and name and name.endswith(("_trgm", "_bigram")))  # PostgreSQL's full-text indexes

    with engine.connect() as c:
        ctx = MigrationContext.configure(c, opts={"include_object": ours})
        assert compare_metadata(ctx, SQLModel.metadata) == []

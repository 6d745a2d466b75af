"""Engines, units of work and migrations: the same code on SQLite (default) and PostgreSQL.

Every package keeps its own tables and its own Alembic history (its own version table) on the
one database; :func:`upgrade` runs one package's scripts and :func:`run_package_env` is the body
of each package's ``env.py``.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session


class UTCDateTime(TypeDecorator):
    """A timezone-aware datetime stored in UTC on every backend."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: pass an aware datetime")
        value = value.astimezone(UTC)
        # SQLite keeps no zone: store the UTC wall time and re-attach UTC on the way out.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


T = TypeVar("T")
IN_CHUNK = 500  # values in one ``IN (…)``: far under every database's limit on a statement's parameters


def in_chunks(values: list[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    """``values`` in slices for ``IN (…)`` queries: one statement for a few, several for thousands."""
    for i in range(0, len(values), size):
        yield values[i:i + size]


def make_engine(url: str, **kwargs) -> sa.Engine:
    """An engine with the per-backend settings the stores rely on."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")  # readers (AGI lookups) never wait for a writer
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # psycopg prepares a statement after its 5th run and PostgreSQL may then plan it once for any
    # parameters: a full-text search (LIKE '%…%') planned without its word walks the whole table by
    # date for a word nothing contains (25 ms at 20 000 tickets, seconds at a million). Keep the
    # prepared parse, plan each run with its values.
    connect_args = {"options": "-c plan_cache_mode=force_custom_plan", **kwargs.pop("connect_args", {})}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


MIGRATION_LOCK_KEY = 0x686F746C  # "hotl": PostgreSQL advisory lock held while a process migrates


@contextmanager
def migration_lock(engine: sa.Engine) -> Iterator[None]:
    """One process migrates at a time: the web app, the bridge and FastAGI started together on a new
    database would otherwise each create the same tables, and all but one die ("table … already
    exists"). A file lock beside an SQLite database; an advisory lock on PostgreSQL (any machine)."""
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        if not path or path == ":memory:":
            yield
            return
        with open(f"{path}.migrate-lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            conn.commit()


def upgrade(engine: sa.Engine, script_location: Path, revision: str = "head") -> None:
    """Run one package's Alembic scripts on ``engine`` (each package keeps its own version table)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def run_package_env(tables: set[str], version_table: str) -> None:
    """The body of a package's Alembic ``env.py``: the connection ``upgrade`` handed in, and only
    the package's own tables (the others share the database and the metadata)."""
    from alembic import context
    from sqlmodel import SQLModel

    def include(obj, name, type_, reflected, compare_to) -> bool:
        return not (type_ == "table" and name not in tables)

    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=SQLModel.metadata, version_table=version_table,
                      include_object=include, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


@contextmanager
def session_scope(engine: sa.Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll everything back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


Select = TypeVar("Select", bound=sa.Select[Any])


def log_filter(stmt: Select, at: Any, since: datetime | None, until: datetime | None,
               equals: Iterable[tuple[Any, object]] = ()) -> Select:
    """A log's filters, one rule for every log and register: each (column, value) whose value is
    given ("" and None are not), and the time window ``[since, until)`` on the ``at`` column."""
    for column, value in equals:
        if value is not None and value != "":
            stmt = stmt.where(column == value)
    if since is not None:
        stmt = stmt.where(at >= since)
    if until is not None:
        stmt = stmt.where(at < until)
    return stmt


def page_of(s: Session, stmt: Select, *order: Any, limit: int, offset: int = 0) -> tuple[int, list[Any]]:
    """(how many rows ``stmt`` matches, one page of them in ``order``): a log's table with a pager."""
    total = s.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar_one()
    rows = s.execute(stmt.order_by(*order).offset(max(0, offset)).limit(max(1, limit))).all()
    return total, [row[0] if len(row) == 1 else tuple(row) for row in rows]

"""The ticket store's migrations and the prepared reads of a caller's path.

Engines, units of work and the Alembic runner every package shares are :mod:`hotline.db`.
"""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from hotline.db import make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "ticketing_alembic_version"  # other packages may run their own Alembic on the same DB
TABLES = frozenset({  # ticketing's own: other packages keep theirs in the same database and metadata
    "department", "caller", "ticket", "ticket_department", "ticket_event", "supervision", "ticket_link",
    "call_record", "confidential_read", "article", "missing_info", "calendar_day", "attachment",
    "intake_submission",
})


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("version_table", VERSION_TABLE)
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(target: str | sa.Engine, revision: str = "head") -> None:
    """Bring the ticketing tables to ``revision`` (the app calls this at start)."""
    engine = make_engine(target) if isinstance(target, str) else target
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    maintain(engine)
    if isinstance(target, str):
        engine.dispose()


def maintain(engine: sa.Engine) -> None:
    """Refresh the planner's statistics (SQLite has no autovacuum/autoanalyze; call it daily too).

    Without them SQLite may drive a "full text + status" query from the status index and probe
    the FTS table row by row: seconds instead of milliseconds on a million tickets.
    """
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA optimize")


class PreparedQuery:
    """A read compiled once for an engine's dialect and run on a pooled DBAPI cursor.

    For the few reads on a caller's path (the AGI lookup runs before every call reaches the
    queue): SQLAlchemy's per-execution work (cache key, execution context, result wrapping)
    costs two to three times the query itself on SQLite. Parameters and results still go
    through the column types' own bind and result processors, so values come back exactly as
    the ORM would give them, on SQLite and PostgreSQL alike.
    """

    def __init__(self, engine: sa.Engine, statement: sa.Select) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self.engine = engine
        self.sql = compiled.string
        self.positional = compiled.positional
        self.order = list(compiled.positiontup or compiled.binds)
        self.binds = {
            name: (bp.type.dialect_impl(dialect).bind_processor(dialect), bp.value)
            for name, bp in compiled.binds.items()
        }
        columns = list(statement.selected_columns)
        self.row = namedtuple("Row", [c.key for c in columns])  # type: ignore[misc]
        self.results = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]

    def params(self, values: dict[str, object]) -> tuple | dict:
        out = {}
        for name in self.order:
            process, default = self.binds[name]
            value = values.get(name, default)
            out[name] = process(value) if process is not None else value
        return tuple(out[name] for name in self.order) if self.positional else out

    def all(self, **values: object) -> list:
        conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            try:
                cur.execute(self.sql, self.params(values))
                rows = cur.fetchall()
            finally:
                cur.close()
        finally:
            conn.close()  # back to the pool
        procs = self.results
        return [self.row(*(p(v) if p is not None else v for p, v in zip(procs, r, strict=True))) for r in rows]

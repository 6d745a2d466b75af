"""The notification log's own migrations, beside the other packages' on the same database."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from hotline.db import upgrade

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "notify_alembic_version"
TABLES = frozenset({"notification"})


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    upgrade(engine, MIGRATIONS, revision)

"""The account table's own migrations, beside the other packages' on the same database."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from hotline.db import upgrade

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "accounts_alembic_version"
TABLES = frozenset({"account", "account_session", "login_attempt", "audit_event"})


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    upgrade(engine, MIGRATIONS, revision)

"""agent_ui's own tables (accounts, approvals, the lead's), migrated beside ticketing's on the same database."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from hotline.db import make_engine, upgrade

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "agent_ui_alembic_version"


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    upgrade(engine, MIGRATIONS, revision)


__all__ = ["make_engine", "migrate"]

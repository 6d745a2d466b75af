"""recordings' own tables, migrated beside ticketing's on the same database (own version table)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from hotline.db import make_engine, upgrade

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "recordings_alembic_version"


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the recordings tables to ``revision`` (the app and the worker call this at start)."""
    upgrade(engine, MIGRATIONS, revision)


__all__ = ["make_engine", "migrate"]

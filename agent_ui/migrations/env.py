"""Alembic environment for agent_ui/ (accounts); the connection comes from ``agent_ui.db.migrate``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import agent_ui.accounts
import agent_ui.approvals  # noqa: F401
from agent_ui.db import VERSION_TABLE

OURS = {"account", "seat_approval"}


def _include(obj, name, type_, reflected, compare_to) -> bool:
    return not (type_ == "table" and name not in OURS)


connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=SQLModel.metadata, version_table=VERSION_TABLE,
                  include_object=_include, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()

"""Alembic environment for ticketing/: uses a connection handed in by ``ticketing.db.migrate``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import ticketing.models  # noqa: F401  (registers the tables on the metadata)
from hotline.db import make_engine
from ticketing.db import TABLES, VERSION_TABLE

config = context.config
target_metadata = SQLModel.metadata


def _include(obj, name, type_, reflected, compare_to) -> bool:
    # Only our tables: other packages share the database and the metadata.
    return not (type_ == "table" and name not in ticketing_tables())


def ticketing_tables() -> set[str]:
    return {t.name for t in SQLModel.metadata.sorted_tables if t.name in TABLES}


def run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_object=_include,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        run(conn)

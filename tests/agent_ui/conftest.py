"""The web room's own tables on SQLite and on a real PostgreSQL, for the tests of its stores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from agent_ui.db import migrate
from hotline.db import make_engine
from tests.support import migrated
from tests.support.postgres import postgres_server  # noqa: F401  (session fixture)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path) -> Iterator[sa.Engine]:
    server = request.getfixturevalue("postgres_server") if request.param == "postgres" else None
    # a new database of its own, migrated: a copy of the one migrated once this session (tests.support.migrated)
    eng = make_engine(migrated.postgres_url(server, migrate) if server
                      else migrated.sqlite_url(tmp_path / "ui.db", migrate))
    migrate(eng)  # at head already: nothing to do, as on any restart
    yield eng
    eng.dispose()
    if server:
        server.drop_database(eng.url.database)

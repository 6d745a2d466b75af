"""The web room's own tables on SQLite and on a real PostgreSQL, for the tests of its stores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from agent_ui.db import migrate
from hotline.db import make_engine
from tests.support.postgres import postgres_server  # noqa: F401  (session fixture)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path) -> Iterator[sa.Engine]:
    server = request.getfixturevalue("postgres_server") if request.param == "postgres" else None
    eng = make_engine(server.create_database() if server else f"sqlite:///{tmp_path / 'ui.db'}")
    migrate(eng)
    yield eng
    eng.dispose()
    if server:
        server.drop_database(eng.url.database)

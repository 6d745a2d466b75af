"""The session's throwaway PostgreSQL server as a pytest fixture (the server: testkit.postgres).

Tests skip only when the server binaries are absent. Use it from a conftest::

    from tests.support.postgres import postgres_server  # noqa: F401  (the fixture)

    def test_x(postgres_server):
        url = postgres_server.create_database("mytest")
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit.postgres import PostgresServer, start_server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the whole session; skipped only if PostgreSQL is not installed."""
    try:
        server = start_server()
    except LookupError as e:
        pytest.skip(str(e))
    try:
        yield server
    finally:
        server.stop()

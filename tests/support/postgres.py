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

_shared: list[PostgresServer] = []  # the one server of this session
_users = [0]  # how many conftests and modules' session fixtures hold it


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the whole session; skipped only if PostgreSQL is not installed.

    Each conftest and test module that imports this fixture has a session fixture of its own; they
    all hand out the same server (each test makes databases of its own on it), started by the first
    and stopped when the last is torn down at the end of the session."""
    if not _shared:
        try:
            # the tests of every folder share it: room for the connections they all hold at once
            _shared.append(start_server(max_connections=200))
        except LookupError as e:
            pytest.skip(str(e))
    _users[0] += 1
    try:
        yield _shared[0]
    finally:
        _users[0] -= 1
        if _users[0] == 0:
            _shared.pop().stop()

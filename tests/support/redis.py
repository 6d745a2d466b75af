"""Throwaway redis-servers as pytest fixtures (the server: testkit.redis).

``redis_server``: one for the module; ``own_redis``: one for the test alone, to stop, pause or
flush. Tests skip only when redis-server is absent. Import them where used::

    from tests.support.redis import own_redis, redis_server  # noqa: F401  (the fixtures)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit.redis import RedisServer, start_server


def _redis() -> Iterator[RedisServer]:
    try:
        server = start_server()
    except LookupError as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.close()


redis_server = pytest.fixture(scope="module", name="redis_server")(_redis)
own_redis = pytest.fixture(name="own_redis")(_redis)

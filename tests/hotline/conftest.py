"""Fixtures for the hotline package's tests (the spare Asterisk is tests/conftest.py's)."""

from collections.abc import AsyncIterator

import pytest

from testkit.redis import RedisServer
from tests.hotline.test_redis_bus import Buses
from tests.support.redis import own_redis, redis_server  # noqa: F401  (the fixtures)


@pytest.fixture
async def buses(redis_server: RedisServer) -> AsyncIterator[Buses]:  # noqa: F811
    """RedisBus instances of one test on the module's redis-server, closed at its end."""
    made = Buses(redis_server)
    yield made
    await made.close()

"""Fixtures for the hotline package's tests (the spare Asterisk is tests/conftest.py's)."""

from tests.support.redis import own_redis, redis_server  # noqa: F401  (the fixtures)

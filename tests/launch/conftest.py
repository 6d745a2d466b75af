"""The launch tests: the session's PostgreSQL for the backup of a PostgreSQL centre."""

from tests.support.postgres import postgres_server  # noqa: F401  (the fixture)
from tests.support.redis import own_redis, redis_server  # noqa: F401  (the fixtures)

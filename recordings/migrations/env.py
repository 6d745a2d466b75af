"""Alembic environment for recordings/; the connection comes from ``recordings.db.migrate``."""

from __future__ import annotations

from hotline.db import run_package_env
from recordings.db import VERSION_TABLE
from recordings.models import OURS

run_package_env(OURS, VERSION_TABLE)

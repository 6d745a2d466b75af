"""Alembic environment for accounts/; the connection comes from ``accounts.db.migrate``."""

from __future__ import annotations

import accounts.models  # noqa: F401  (registers the table on the metadata)
from accounts.db import TABLES, VERSION_TABLE
from hotline.db import run_package_env

run_package_env(set(TABLES), VERSION_TABLE)

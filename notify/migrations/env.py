"""Alembic environment for notify/; the connection comes from ``notify.db.migrate``."""

from __future__ import annotations

import notify.models  # noqa: F401  (registers the table on the metadata)
from hotline.db import run_package_env
from notify.db import TABLES, VERSION_TABLE

run_package_env(set(TABLES), VERSION_TABLE)

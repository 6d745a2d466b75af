"""Alembic environment for cti/ (the CTI leases' terms); the connection comes from ``cti.lease.migrate``."""

from __future__ import annotations

from cti.lease import TABLES, VERSION_TABLE
from hotline.db import run_package_env

run_package_env(set(TABLES), VERSION_TABLE)

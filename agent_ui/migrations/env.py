"""Alembic environment for agent_ui/; the connection comes from ``agent_ui.db.migrate``."""

from __future__ import annotations

import agent_ui.approvals
import agent_ui.dialing
import agent_ui.lead.models  # noqa: F401  (they register their tables on the metadata)
from agent_ui.db import VERSION_TABLE
from hotline.db import run_package_env

OURS = {"seat_approval", "lead_alert_ack", "seat_spell", "roster", "shift_handover",
        "dept_assessment_entry", "callback_dial"}

run_package_env(OURS, VERSION_TABLE)

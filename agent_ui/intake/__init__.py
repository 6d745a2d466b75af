"""网络来件: the operators' queue of submissions from the other channels (``/intake``) and the
bridges' authenticated entry (``POST /api/intake/{channel}``); the citizens' own web form is
agent_ui.public's."""

from __future__ import annotations

from agent_ui.intake.bridge import router as bridge_router
from agent_ui.intake.routes import router

__all__ = ["bridge_router", "router"]

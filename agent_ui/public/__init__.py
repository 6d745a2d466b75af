"""What citizens use without an account: the status page with its rating, and the web form.

Public surface: ``router``, :class:`PublicLimits` (``app.state.public_limits``; made on first use)
and :class:`SlidingWindow`.
"""

from __future__ import annotations

from agent_ui.public.limiter import PublicLimits, SlidingWindow
from agent_ui.public.routes import router

__all__ = ["PublicLimits", "SlidingWindow", "router"]

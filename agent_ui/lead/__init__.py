"""The team lead (班长): the wallboard and its alerts, approvals, callbacks, handover, roster and reports.

Public surface: ``router`` (the pages and ``/api/lead/*``, which find the runtime at
``app.state.lead``), :class:`LeadRuntime` (the alert feed the composition root wires and starts),
:class:`LeadConfig`, :class:`LeadAlert` (the bus event), :class:`LeadStore` (the lead's own
tables; their models are ``agent_ui.lead.models``).
"""

from __future__ import annotations

from agent_ui.lead.routes import router
from agent_ui.lead.runtime import LeadAlert, LeadConfig, LeadRuntime
from agent_ui.lead.store import LeadStore
from agent_ui.lead.transcripts import router as transcripts_router

__all__ = ["LeadAlert", "LeadConfig", "LeadRuntime", "LeadStore", "router", "transcripts_router"]

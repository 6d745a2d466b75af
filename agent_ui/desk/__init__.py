"""The centre's ticket desk (工单中心) and callback work (回访): pages and the reads behind them.

Public surface: ``router`` (``/tickets``, ``/callbacks`` and ``/api/desk/*``).
"""

from __future__ import annotations

from agent_ui.desk.routes import router

__all__ = ["router"]

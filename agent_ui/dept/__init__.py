"""The department portal (承办单位工作台): a department's tickets, their steps, attachments and its
own assessment. Public surface: ``router`` (the ``/dept`` page and ``/api/dept/*``)."""

from __future__ import annotations

from agent_ui.dept.routes import router

__all__ = ["router"]

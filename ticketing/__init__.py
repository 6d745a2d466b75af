"""The ticket store (工单): intake to archive on working-day deadlines.

Public surface (import from here or the named module):

- ``ticketing.db``: ``make_engine(url)``, ``migrate(url_or_engine)`` (run at app start).
- ``ticketing.service``: ``TicketService`` (create/update/act/get/search/history/export,
  ``recent_for_number`` for the AGI, ``sweep`` for reminders, directory and knowledge base),
  ``service_from_settings()`` for the wiring.
- ``ticketing.routes``: ``router`` (FastAPI) for ``/api/tickets``, ``/api/kb``, ``/api/departments``,
  ``/api/callers``, ``/api/calendar``.
- ``ticketing.seed``: ``seed_demo(engine, tickets=300)`` for the demo city.
- ``ticketing.service.warm_up()``: load jieba and the number geocoder at start (~2 s), so the
  first intake and the first AGI lookup are not slow.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "TicketService": "ticketing.service",
    "service_from_settings": "ticketing.service",
    "migrate": "ticketing.db",
    "make_engine": "ticketing.db",
    "seed_demo": "ticketing.seed",
    "warm_up": "ticketing.service",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    # lazy: agi/ imports the package for one lookup and should not pay for jieba or openpyxl
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)

"""The ticket store (工单): intake to archive on working-day deadlines, and the call log.

Public surface:

- ``ticketing.store``: ``open_store(settings)`` → a :class:`~ticketing.store.Store` whose parts
  are the store's concerns (``tickets``, ``actions``, ``export``, ``callers``, ``directory``,
  ``kb``, ``holidays``, ``calls``); ``warm_up()`` loads jieba and the number geocoder at start.
- ``ticketing.db``: ``migrate(engine)`` (the composition root runs it at start).
- ``ticketing.routes``: ``router`` (FastAPI) for ``/api/tickets``, ``/api/kb``, ``/api/departments``,
  ``/api/callers``, ``/api/calendar``; it serves the store the app holds as ``app.state.store``.
- ``ticketing.schemas``: what comes in and goes out (``TicketRead``, ``CallerSummary``…) and the
  errors (``InvalidInput``, ``NotFound``, ``Forbidden``; ``ticketing.workflow.TransitionError``).
- ``ticketing.seed``: ``seed_demo(store, tickets=300)`` for the demo city.
"""

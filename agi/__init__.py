"""FastAGI and IVR: the part of a call before and after a human.

Public surface:

- ``agi.service.run(settings, *, tickets=None, on_survey=None, on_callback_request=None,
  job_number=None, started=None)``: serve on settings.agi_host:agi_port until cancelled
  (``hotline agi``, or a task in the app's lifespan).
- ``agi.service.server(settings, tickets, **same)`` → ``(FastAgiServer, TicketLookups)`` not
  started, for callers that manage the lifetime themselves (tests, bench).
- Callbacks (default: ``ticketing.calls.CallLog``, see ``call_log_hooks``):
  ``on_survey(uniqueid, caller, score: int | None)`` (1 满意, 2 基本满意, 3 不满意;
  None when asked three times without a valid key), ``on_callback_request(uniqueid, caller,
  reason, message)`` with reason ``after_hours`` | ``no_seat`` | ``overflow`` and ``message`` the
  recording base of a voice message (留言), or ""; ``job_number(seat) -> str |
  None`` (default: settings.agi_job_numbers, else the seat itself).
- ``agi.protocol``: the pure protocol (``parse_env``, ``parse_reply``, ``Splitter``, ``command``).

Scripts (``AGI(agi://host:port/<script>)`` in asterisk-config/extensions.conf): ``lookup``,
``closed``, ``overflow``, ``survey``, ``status``, ``jobno``.
"""

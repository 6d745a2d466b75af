"""FastAGI and IVR: the part of a call before and after a human.

Public surface:

- ``agi.service.server(settings, lookups, on_survey=…, on_callback_request=…, job_number=…)`` →
  a ``FastAgiServer`` on settings.agi_host:agi_port, not started; ``agi.service.TicketLookups(store)``
  runs the ticket store's reads off the loop. The composition root (``launch.compose``) builds,
  starts and stops them for ``hotline agi`` and for a web node with the ``agi`` role.
- Callbacks (the root wires them to ``ticketing.calls.CallLog`` with ``call_log_hooks``):
  ``on_survey(uniqueid, caller, score: int | None)`` (1 满意, 2 基本满意, 3 不满意;
  None when asked three times without a valid key), ``on_callback_request(uniqueid, caller,
  reason, message)`` with reason ``after_hours`` | ``no_seat`` | ``overflow`` and ``message`` the
  recording base of a voice message (留言), or ""; ``job_number(seat) -> str |
  None`` (the root: whoever is signed in at the seat, else settings.agi_job_numbers, else the seat).
- ``agi.protocol``: the pure protocol (``parse_env``, ``parse_reply``, ``Splitter``, ``command``).

Scripts (``AGI(agi://host:port/<script>)`` in asterisk-config/extensions.conf): ``lookup``,
``closed``, ``overflow``, ``survey``, ``status``, ``jobno``.
"""

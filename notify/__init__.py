"""Notifications (通知): deadline reminders and supervision notes, told to the people outside the
screens (a department's mailbox and mobile, the centre's duty address) through one outbound
interface.

Public surface:

- ``notify.channels``: :class:`~notify.channels.Message` and :class:`~notify.channels.Delivery`,
  the channels (e-mail over SMTP, an SMS gateway over HTTP, log only);
- ``notify.service``: :class:`~notify.service.Notifier` (``await notifier.send(message)``), built
  from the settings;
- ``notify.sweep``: :class:`~notify.sweep.ReminderSweep`, the periodic task of a web node, and
  ``deliver_due`` (send what the outbox holds due);
- ``notify.outbox``: :class:`~notify.outbox.Outbox`, a row per message under its idempotency key,
  claimed under a lease, finished with the claim's token, retried with back-off, given up visibly
  (what survives a ``kill -9`` at any moment, and the one at-least-once edge, is said there);
- ``notify.log``: the notification log as the pages read it;
- ``notify.db``: ``migrate(engine)``; ``notify.routes``: ``router`` (``GET /api/notifications``).

The edges' floor: it reads the ticket store through its public parts and is wired by
``launch.compose``; nothing below imports it.
"""

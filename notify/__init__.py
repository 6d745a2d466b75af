"""Notifications (通知): deadline reminders and supervision notes, told to the people outside the
screens (a department's mailbox and mobile, the centre's duty address) through one outbound
interface.

Public surface:

- ``notify.channels``: :class:`~notify.channels.Message` and :class:`~notify.channels.Delivery`,
  the channels (e-mail over SMTP, an SMS gateway over HTTP, log only);
- ``notify.service``: :class:`~notify.service.Notifier` (``await notifier.send(message)``), built
  from the settings;
- ``notify.sweep``: :class:`~notify.sweep.ReminderSweep`, the periodic task of a web node;
- ``notify.log``: the notification log (sent once per idempotency key, failures retried);
- ``notify.db``: ``migrate(engine)``; ``notify.routes``: ``router`` (``GET /api/notifications``).

The edges' floor: it reads the ticket store through its public parts and is wired by
``launch.compose``; nothing below imports it.
"""

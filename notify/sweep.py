"""The reminder sweep, a task of every web node: deadline reminders at their thresholds, supervision
notes to the department, and the retries of failed sends.

Each pass plans every message that is due *now* (pure rules over the store's reads), claims in
the notification log those never claimed before, sends them through the :class:`Notifier` and
records how it went. Planning the same message twice is harmless: its key is already logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from notify import reminders
from notify.channels import Delivery, Message
from notify.log import NotificationLog
from notify.reminders import Rules
from notify.service import Notifier
from ticketing.store import Store

log = logging.getLogger(__name__)

PARALLEL = 8  # sends at once: a slow SMTP server delays the pass, not each message after the other


class ReminderSweep:
    def __init__(self, store: Store, notifier: Notifier, rules: Rules, *, every_s: float = 60.0,
                 clock: Callable[[], datetime] | None = None, notifications: NotificationLog | None = None) -> None:
        self.store = store
        self.notifier = notifier
        self.rules = rules
        self.every_s = every_s
        self.clock = clock or store.ctx.clock  # the store's: tests move one clock for both
        self.log = notifications or NotificationLog(store.engine)

    def plan(self) -> list[Message]:
        """Every message due now (blocking: reads the store)."""
        now = self.clock()
        cal = self.store.ctx.calendar()
        depts = {d.id: d for d in self.store.directory.list(include_inactive=True)}
        horizon = cal.add_working_days(now, max(0, self.rules.before_days))  # the last due day worth a word
        out: list[Message] = []
        for t in self.store.worklists.running_deadlines(horizon):
            assert t.due is not None
            st = reminders.stage(t.due, now, cal, self.rules.before_days, self.rules.overdue_every)
            if st is not None:
                out += reminders.deadline_messages(t, st, depts.get(t.department_id or 0), self.rules)
        notes = self.store.worklists.supervisions(open_only=True)
        facts = self.store.worklists.deadline_facts(n["ticket_id"] for n in notes)
        for note in notes:
            t = facts.get(note["ticket_id"])
            if t is not None and t.department_id is not None:
                out += reminders.supervision_messages(note, t, depts.get(t.department_id), self.rules)
        return out

    async def sweep_once(self) -> list[Delivery]:
        """One pass: new messages and due retries, each sent once; how each went."""
        messages = await asyncio.to_thread(self.plan)
        now = self.clock()
        claimed = await asyncio.to_thread(self.log.claim_new, messages, now)
        claimed += await asyncio.to_thread(self.log.claim_retries, now)
        limit = asyncio.Semaphore(PARALLEL)

        async def deliver(notification_id: int, message: Message) -> Delivery:
            async with limit:
                delivery = await self.notifier.send(message)
            await asyncio.to_thread(self.log.finish, notification_id, delivery, self.clock())
            return delivery

        return list(await asyncio.gather(*(deliver(i, m) for i, m in claimed)))

    async def run(self) -> None:
        """Until cancelled; a failed pass is logged and the next one comes as usual."""
        while True:
            try:
                sent = await self.sweep_once()
                if sent:
                    log.info("notifications: %d handled (%d failed)", len(sent),
                             sum(d.status == "failed" for d in sent))
            except Exception:  # the sweep must never take the node down
                log.exception("notification sweep failed")
            await asyncio.sleep(self.every_s)

"""The reminder sweep, a task of every web node: deadline reminders at their thresholds, supervision
notes to the department, and the retries of failed sends.

Each pass plans every message that is due *now* (pure rules over the store's reads) and enqueues
it in the outbox under its idempotency key: planning the same message twice, on two nodes or
after a restart, adds nothing. Then it sends what the outbox holds due (new messages, retries
past their back-off, claims whose sender died), each claimed under a lease just before it is
sent and finished with the claim's token (notify/outbox.py says what that guarantees).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from notify import reminders
from notify.channels import Delivery, Message
from notify.outbox import Outbox
from notify.reminders import Rules
from notify.service import Notifier
from ticketing.store import Store

log = logging.getLogger(__name__)

PARALLEL = 8  # sends at once: a slow SMTP server delays the pass, not each message after the other
PER_PASS = 2000  # claims per pass at most: a huge backlog is worked off over several passes


async def deliver_due(outbox: Outbox, notifier: Notifier, clock: Callable[[], datetime],
                      parallel: int = PARALLEL, limit: int = PER_PASS) -> list[Delivery]:
    """Send every message due in the outbox, ``parallel`` at a time; how each went.

    Each sender claims one message, sends it, finishes it and claims the next: a claim's lease
    starts when its own send does, not when a long batch began."""
    await asyncio.to_thread(outbox.reap, clock())
    out: list[Delivery] = []

    async def sender() -> None:
        while len(out) < limit:
            claim = await asyncio.to_thread(outbox.claim, clock())
            if claim is None:
                return
            delivery = await notifier.send(claim.message)
            await asyncio.to_thread(outbox.finish, claim, delivery, clock())
            out.append(delivery)

    await asyncio.gather(*(sender() for _ in range(parallel)))
    return out


class ReminderSweep:
    def __init__(self, store: Store, notifier: Notifier, rules: Rules, *, every_s: float = 60.0,
                 clock: Callable[[], datetime] | None = None, outbox: Outbox | None = None) -> None:
        self.store = store
        self.notifier = notifier
        self.rules = rules
        self.every_s = every_s
        self.clock = clock or store.ctx.clock  # the store's: tests move one clock for both
        self.outbox = outbox or Outbox(store.engine)

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
        """One pass: the messages due now enqueued, then everything due in the outbox sent; how
        each send went."""
        messages = await asyncio.to_thread(self.plan)
        await asyncio.to_thread(self.outbox.enqueue, messages, self.clock())
        return await deliver_due(self.outbox, self.notifier, self.clock)

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

"""The store's periodic work on a web node: deadline reminders on the bus, the database's statistics.

A ticket turning yellow or red is announced once per ticket and colour (the sweep opens the
automatic supervision itself); SQLite refreshes its planner statistics once a day (it has no
autovacuum/autoanalyze).
"""

from __future__ import annotations

import asyncio
import logging
import time

from hotline.bus import Bus
from ticketing.db import maintain
from ticketing.schemas import TicketReminder
from ticketing.store import Store

log = logging.getLogger(__name__)

SWEEP_S = 300  # deadline colours are working days: every five minutes is plenty
MAINTAIN_S = 24 * 3600


class Housekeeping:
    def __init__(self, store: Store, bus: Bus) -> None:
        self.store = store
        self.bus = bus
        self._reminded: set[tuple[int, str]] = set()

    def sweep_once(self) -> list[TicketReminder]:
        """The reminders not yet given: one per ticket and colour."""
        fresh = []
        for r in self.store.actions.sweep():
            if (r.ticket_id, r.state) not in self._reminded:
                self._reminded.add((r.ticket_id, r.state))
                fresh.append(r)
        return fresh

    async def run(self) -> None:
        """Until cancelled; a failure is logged and the loop goes on."""
        last_maintain = 0.0
        while True:
            try:
                for reminder in await asyncio.to_thread(self.sweep_once):
                    self.bus.publish_nowait(reminder)  # recorded as sent: a Redis bus away keeps it until back
                if time.monotonic() - last_maintain > MAINTAIN_S:
                    await asyncio.to_thread(maintain, self.store.engine)
                    last_maintain = time.monotonic()
            except Exception:  # housekeeping must never take the node down
                log.exception("ticket sweep failed")
            await asyncio.sleep(SWEEP_S)

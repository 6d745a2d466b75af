"""The ticket store, put together: one part per concern, all on one database and one clock.

``open_store(settings)`` is what the composition root calls; every other package reaches the
store through the parts of the :class:`Store` it is given:

- ``tickets``: intake, reads, search, duplicate proposals (:mod:`ticketing.tickets`);
- ``actions``: the workflow steps, links, the deadline sweep (:mod:`ticketing.actions`);
- ``export``: CSV/XLSX (:mod:`ticketing.export`);
- ``callers``: the AGI's pre-queue lookup and the leads' number flags (:mod:`ticketing.callers`);
- ``directory``: departments and the department suggestion (:mod:`ticketing.directory`);
- ``kb``: the knowledge base and 查无信息 (:mod:`ticketing.kb`);
- ``holidays``: the working-day calendar's admin schedule (:mod:`ticketing.holidays`);
- ``digest``: the lead's queue, open emergencies and the reports' facts (:mod:`ticketing.digest`);
- ``worklists``: a department's counters, the callback worklist, open supervision notes (:mod:`ticketing.digest`);
- ``attachments``: files on a ticket, served with its access rules (:mod:`ticketing.attachments`);
- ``intake``: other channels' submissions and their 3-minute response (:mod:`ticketing.intake`);
- ``public``: the citizen's status page and rating by number and query code (:mod:`ticketing.public`);
- ``calls``: the call log and the callback list, the one writer of finished calls (:mod:`ticketing.calls`);
- ``imports``: finished tickets from the centre's previous system, in bulk (:mod:`ticketing.importer`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from hotline.db import make_engine
from ticketing.actions import TicketActions
from ticketing.attachments import Attachments
from ticketing.callers import Callers, location_of
from ticketing.calls import CallLog
from ticketing.context import StoreContext
from ticketing.db import migrate
from ticketing.deadlines import Limits
from ticketing.dialable import OutsideNumbers
from ticketing.digest import Digest, Worklists
from ticketing.directory import Directory
from ticketing.export import Exporter
from ticketing.holidays import Holidays
from ticketing.importer import Importer
from ticketing.intake import Intake
from ticketing.kb import KnowledgeBase
from ticketing.models import utcnow
from ticketing.public import PublicDesk
from ticketing.tickets import Tickets


@dataclass(frozen=True)
class Store:
    ctx: StoreContext
    tickets: Tickets
    actions: TicketActions
    export: Exporter
    callers: Callers
    directory: Directory
    kb: KnowledgeBase
    holidays: Holidays
    digest: Digest
    worklists: Worklists
    attachments: Attachments
    intake: Intake
    public: PublicDesk
    calls: CallLog
    outside: OutsideNumbers  # which outside numbers the centre may dial
    imports: Importer

    @property
    def engine(self) -> sa.Engine:
        return self.ctx.engine

    @classmethod
    def on(cls, ctx: StoreContext) -> Store:
        directory = Directory(ctx)
        tickets = Tickets(ctx, directory)
        return cls(ctx=ctx, tickets=tickets, actions=TicketActions(ctx, tickets, directory),
                   export=Exporter(ctx, tickets), callers=Callers(ctx), directory=directory,
                   kb=KnowledgeBase(ctx, directory), holidays=Holidays(ctx), digest=Digest(ctx),
                   worklists=Worklists(ctx), attachments=Attachments(ctx, tickets), intake=Intake(ctx, tickets),
                   public=PublicDesk(ctx), calls=CallLog(ctx.engine, ctx.area_code), outside=OutsideNumbers(ctx),
                   imports=Importer(ctx, directory))


def context_from(settings: Any, engine: sa.Engine, clock: Callable[[], datetime] = utcnow) -> StoreContext:
    """The store's limits and rules from the settings (``ticket_*`` and the local area code)."""
    return StoreContext(
        engine,
        limits=Limits(yellow_days=settings.ticket_yellow_days, completion=dict(settings.ticket_completion_days)),
        clock=clock,
        area_code=settings.local_area_code,
        duplicate_window=timedelta(days=settings.ticket_duplicate_window_days),
        duplicate_threshold=settings.ticket_duplicate_threshold,
        files=settings.attachments_path,
        max_attachment_bytes=settings.attachments_max_mb * 2**20,
    )


def open_store(settings: Any, engine: sa.Engine | None = None, *, migrate_db: bool = True) -> Store:
    """The store on the configured database (``settings.db_url`` unless ``engine`` is given),
    migrated to head."""
    engine = engine or make_engine(settings.db_url)
    if migrate_db:
        migrate(engine)
    return Store.on(context_from(settings, engine))


def warm_up() -> None:
    """Load jieba's dictionary and the phone-number geocoder now, not on the first call (≈2 s)."""
    from ticketing import duplicates

    duplicates.warm_up()
    location_of("05305550000")
    location_of("13800000000")

"""The composition root: every hotline process is put together here, and only here.

``hotline up`` and ``hotline web`` serve :func:`web_app` (the web room with the services the
setting ``HOTLINE_SERVICES`` gives this node in-process); ``hotline cti`` and ``hotline agi`` run
:func:`serve` with one role and no web; ``hotline transcribe`` runs :func:`transcribe` and
``hotline seed`` :func:`seed`. So a
standalone process wires the same parts as the combined one: a CTI bridge anywhere writes the
call log and files the recordings; a FastAGI server anywhere stores the survey and the callback
requests.

Roles: ``cti`` (the AMI bridge, the call-log writer, the recordings catalog), ``agi`` (FastAGI),
``web`` (the app, the lead's alert runtime, the deadline housekeeping), ``listen`` (a listening node:
the live transcript's AudioSocket server and recognisers; ``hotline listen`` runs it alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

import recordings.db
import recordings.service
from accounts import db as accounts_db
from accounts.sessions import Sessions
from accounts.store import Accounts
from accounts.throttle import LoginThrottle
from hotline.board import Board, board_of
from hotline.bus import Bus, Envelope
from hotline.db import make_engine, migration_lock
from hotline.outbox import Outbox
from hotline.settings import Settings
from launch.filing import CallFiler
from launch.preflight import announce_setup, first_admin, refuse_unsafe
from launch.witness import CallWitness
from notify import db as notify_db
from notify.reminders import Rules
from notify.service import Notifier
from notify.sweep import ReminderSweep
from ticketing import db as ticketing_db
from ticketing.housekeeping import Housekeeping
from ticketing.store import Store, context_from, warm_up

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

    from agi.server import FastAgiServer
    from agi.service import TicketLookups
    from cti.domain import OutboundEnded
    from cti.leader import Candidate, Lease
    from cti.service import BridgeDesk, CentreLive, CtiService, Live
    from live import ListenNode

log = logging.getLogger(__name__)

ROLES = frozenset({"cti", "agi", "web", "listen"})
HISTORY_S = 24 * 3600  # the bridge's rolling figures look back 24 h


@dataclass
class Node:
    """One process's parts, wired; :meth:`start` and :meth:`stop` run them in order."""

    settings: Settings
    roles: frozenset[str]
    engine: sa.Engine
    store: Store
    accounts: Accounts
    bus: Bus  # in this process, or a Redis stream every node of the centre shares (HOTLINE_BUS_URL)
    cti: CtiService | None = None
    agi: FastAgiServer | None = None
    lookups: TicketLookups | None = None
    lead: Any = None  # agent_ui.lead.LeadRuntime on a web node
    notifier: Notifier | None = None  # e-mail and SMS out, on a web node (its reminder sweep uses it)
    filer: CallFiler | None = None  # finished calls into the call log, journaled and retried
    leader: Candidate | None = None  # the bridge runs only while this node holds the Asterisk server's lease
    board: Board | None = None  # beside a Redis bus: the bridges' live pictures and call-control requests
    desk: BridgeDesk | None = None  # the active bridge's side of the board
    live: CentreLive | None = None  # the centre's live state and call control, from the board (web, agi)
    # beside a Redis bus the centre may have several web nodes: the one holding this lease runs what
    # must happen once for the centre (the lead's alert rules and spells, the deadline toasts)
    duties: Candidate | None = None
    listen: ListenNode | None = None  # the live transcript's recognisers (role listen)
    _duty: list[asyncio.Task[None]] = field(default_factory=list)
    freeze_heap: bool = False  # a long-running server's process: see :func:`freeze`
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _active: list[asyncio.Task[None]] = field(default_factory=list)  # the active bridge's own: stopped with it
    _unlisten: list[Any] = field(default_factory=list)

    async def start(self) -> None:
        await self.bus.start()  # first: a Redis bus that does not answer stops the node here, said plainly
        if self.board is not None:
            await self.board.start()
        if self.live is not None:
            await self.live.start()
        await asyncio.to_thread(warm_up)  # jieba and the geocoder: not on the first caller's lookup
        if self.listen is not None:  # before the bridge: its first answered call finds a node with room
            await self.listen.start()
        if self.cti is not None and self.leader is not None:
            self.follow_finished_calls()  # before any call can end
            # alone (`hotline up` on one box) it wins here, before the web serves; else it stands by
            await self.leader.campaign()
            self._spawn(self.leader.run(), "cti-leader")
        if self.agi is not None:
            await self.agi.start()
        if "web" in self.roles:
            if self.notifier is not None:  # every node may sweep: the notification outbox leases each message
                sweep = ReminderSweep(self.store, self.notifier, Rules.from_settings(self.settings),
                                      every_s=self.settings.notify_sweep_s)
                self._spawn(sweep.run(), "reminders")
            if self.lead is not None:
                self.lead.take_duty(self.duties is None)
                await self.lead.start()
            if self.duties is None:
                await self.take_duties(0)
            else:
                await self.duties.campaign()
                self._spawn(self.duties.run(), "web-duties")
        if self.freeze_heap:
            freeze()

    async def stop(self) -> None:
        if self.lead is not None:
            await self.lead.stop()
        for task in self._tasks:  # the leader's among them: it stops the bridge, then gives the lease back
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await _cancel(self._active)
        await _cancel(self._duty)
        if self.agi is not None:
            with contextlib.suppress(Exception):
                await self.agi.stop()
        if self.lookups is not None:
            self.lookups.close()
        if self.cti is not None:
            await self.cti.stop()
        for unlisten in self._unlisten:
            unlisten()
        if self.filer is not None:  # the calls handed over last are filed, or journaled for the next start
            await asyncio.to_thread(self.filer.close)
        self._unlisten.clear()
        if self.live is not None:
            await self.live.stop()
        if self.listen is not None:
            await self.listen.stop()
        if self.board is not None:
            await self.board.close()
        await self.bus.close()  # after the bridge: what it published last still goes out
        self.engine.dispose()

    @property
    def live_cti(self) -> Live | None:
        """What the web room and the AGI ask about the live state: the centre's through the board
        beside a Redis bus, else this process's bridge (or none)."""
        return self.live if self.live is not None else self.cti

    # --- the active bridge: started when this node wins the lease, stopped when it loses it -------

    async def activate(self, term: int) -> None:
        """Won: the bridge logs in (its login resyncs calls and seats from Asterisk), and with it
        what belongs to the active bridge: the outbox's retries, the witness, the recordings catalog."""
        assert self.cti is not None
        history = await asyncio.to_thread(self.store.calls.recent, datetime.now(UTC) - timedelta(seconds=HISTORY_S))
        self.cti.state.stats.clear()  # from the call log alone: what the previous holder filed counts too
        log.info("CTI rolling figures rebuilt from %d logged calls", self.cti.state.seed_history(history))
        await self.cti.start(wait=None)  # Asterisk may come later: the link keeps trying
        log.warning("CTI bridge active (term %d): consuming AMI from %s:%s", term, self.settings.ami_host,
                    self.settings.ami_port)
        if self.filer is not None:
            self._spawn_active(self.filer.run(), "call-filing")  # first: what a crash left in the outbox
            # Asterisk's own records: the calls no bridge saw (the last holder died) are rebuilt
            witness = CallWitness(self.settings, self.store.calls, self.filer, self.cti)
            self._spawn_active(witness.run(), "call-witness")
        self._spawn_active(recordings.service.catalog_loop(self.settings, self.engine, self.store.calls), "catalog")
        if self.desk is not None:  # the centre's other nodes see this server's state and send it their actions
            self._spawn_active(self.desk.run(), "cti-desk")

    async def deactivate(self, term: int) -> None:
        """Lost (or stopping): no more AMI at once, then the active bridge's tasks."""
        assert self.cti is not None
        await self.cti.stop()
        await _cancel(self._active)
        log.warning("CTI bridge standing by (term %d ended)", term)

    # --- the centre's duties: one web node runs them ------------------------------------------

    async def take_duties(self, term: int) -> None:
        if term:
            log.warning("web duties (term %d): the lead's alert rules and the deadline toasts run on this node", term)
        if self.lead is not None:
            self.lead.take_duty(True)
        self._duty.append(asyncio.get_running_loop().create_task(Housekeeping(self.store, self.bus).run(),
                                                                 name="housekeeping"))

    async def drop_duties(self, term: int) -> None:
        if self.lead is not None:
            self.lead.take_duty(False)
        await _cancel(self._duty)
        log.warning("web duties (term %d ended): this node follows the node on duty", term)

    def _spawn_active(self, coro: Any, name: str) -> None:
        self._active.append(asyncio.get_running_loop().create_task(coro, name=name))

    # --- the call log and the recordings catalog follow the bus ------------------------------

    def follow_finished_calls(self) -> None:
        """Every ``CallCompleted`` on the bus is filed (launch/filing.py: journaled, retried until
        stored, a burst in one batch) on the filer's thread: the bus calls its listeners on the AMI
        read path, which must not wait for the disk or the database. A callback's end
        (``OutboundEnded``) registers its recording with who dialled it; the call log does not file
        it (not a queue call)."""
        from cti.domain import CallCompleted, OutboundEnded

        filer = self.filer
        assert filer is not None, "a node that follows finished calls has a filer"

        def on_envelope(env: Envelope) -> None:
            if isinstance(env.event, CallCompleted):
                filer.submit(env.event.call)
            elif isinstance(env.event, OutboundEnded):
                asyncio.get_running_loop().run_in_executor(None, self.file_callback, env.event)

        self._unlisten.append(self.bus.add_listener(on_envelope))

    def file_callback(self, ended: OutboundEnded) -> None:
        """A callback's recording into the catalog (logged, not retried: the spool scan still adopts
        its files, with its ticket, if this fails)."""
        assert self.filer is not None, "a node that follows finished calls has a filer"
        f = self.filer
        recordings.service.register_outbound(f.engine, f.settings, f.calls, base=ended.recording_base,
                                             call_id=ended.call_id, seat=ended.seat, job_number=ended.job_number,
                                             number=ended.number)

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coro, name=name))


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    tasks.clear()


def roles_of(settings: Settings, *, web: bool) -> frozenset[str]:
    """This node's roles: the in-process services of ``HOTLINE_SERVICES`` (``transcribe`` runs as
    worker processes beside it, see ``hotline up``), and the web room when it serves one."""
    wanted = {r for r in settings.services if r in ROLES} | ({"web"} if web else set())
    return frozenset(wanted)


def build(settings: Settings, roles: Iterable[str]) -> Node:
    """Open the database, migrate every package's tables, and wire the parts of ``roles``."""
    roles = frozenset(roles)
    unknown = roles - ROLES
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; known: {sorted(ROLES)}")
    engine = make_engine(settings.db_url)
    with migration_lock(engine):  # processes started together: one creates the tables, the others wait
        ticketing_db.migrate(engine)
        accounts_db.migrate(engine)
        recordings.db.migrate(engine)
        if roles & {"cti", "web"} and engine.dialect.name == "postgresql":
            from cti import lease

            lease.migrate(engine)  # the leases' terms (SQLite keeps its one term in the lock file)
        if "web" in roles:
            from agent_ui.db import migrate as migrate_web

            migrate_web(engine)
            notify_db.migrate(engine)
        accounts = accounts_from(settings, engine)
        if "web" in roles and settings.mode == "demo":
            accounts.ensure_demo()  # production creates none: its first admin comes from a setup token
    store = Store.on(context_from(settings, engine))
    node = Node(settings, roles, engine, store, accounts, bus_of(settings))
    node.board = board_of(node.bus)
    node.filer = CallFiler(store.calls, engine, settings, Outbox(settings.call_outbox_dir))
    if "cti" in roles:
        from cti.service import BridgeDesk, CtiService

        node.cti = CtiService.from_settings(settings, bus=node.bus)
        node.leader = node.cti.leader = _candidate(node)
        if node.board is not None:
            node.desk = BridgeDesk(node.cti, node.board, owned=settings.seats)
    if node.board is not None and roles & {"web", "agi"}:
        from cti.service import CentreLive

        # every server's bridge, this node's own among them (it may be the standby): one way for all
        node.live = CentreLive(node.board)
    if "agi" in roles:
        _wire_agi(node)
    if "listen" in roles:
        from live import listen_node

        node.listen = listen_node(settings, node.bus, store, engine)
    if "web" in roles:
        from agent_ui.lead import LeadConfig, LeadRuntime, LeadStore

        node.notifier = Notifier.from_settings(settings)
        node.lead = LeadRuntime(LeadConfig.from_settings(settings), LeadStore(engine), node.bus, node.live_cti,
                                store.digest, store.calls)
        if node.board is not None:  # a bus shared by several web nodes: one of them is on duty
            node.duties = _duty_candidate(node)
    return node


def bus_of(settings: Settings) -> Bus:
    """The bus of ``HOTLINE_BUS_URL``: in this process by default, or a Redis stream shared by the
    centre's nodes (started by :meth:`Node.start`)."""
    from hotline.redis_bus import bus_from_url

    return bus_from_url(settings.bus_url.get_secret_value(), timeout=settings.bus_timeout_s)


def accounts_from(settings: Settings, engine: sa.Engine) -> Accounts:
    """The account store with the session limits and the sign-in throttle of the settings."""
    sessions = Sessions(engine, idle_s=settings.session_idle_minutes * 60,
                        absolute_s=settings.session_absolute_hours * 3600)
    throttle = LoginThrottle(engine, per_account=settings.login_max_failures_account,
                             per_client=settings.login_max_failures_client,
                             window_s=settings.login_window_minutes * 60)
    return Accounts(engine, sessions=sessions, throttle=throttle)


def cti_lease(settings: Settings, engine: sa.Engine, name: str = "") -> Lease:
    """The Asterisk server's lease (or the lease ``name``), on the database the node uses: a
    PostgreSQL advisory lock (any number of machines), or a flock beside the SQLite database (one
    machine)."""
    from cti.lease import FileLease, PgLease, holder_id, lock_file, pg_conninfo

    name = name or settings.cti_lease_name or f"{settings.ami_host}:{settings.ami_port}"
    if engine.dialect.name == "postgresql":
        return PgLease(pg_conninfo(engine.url), name, holder_id(), timeout_s=settings.cti_lease_timeout_s,
                       dead_s=settings.cti_lease_dead_s)
    return FileLease(lock_file(engine.url.database, settings.var_dir, name), name, holder_id())


def _candidate(node: Node) -> Candidate:
    from cti.leader import Candidate

    settings = node.settings
    if settings.cti_lease_margin_s < 1:
        log.warning("CTI lease: HOTLINE_CTI_LEASE_DEAD_S should exceed check + timeout by a second or more")
    return Candidate(cti_lease(settings, node.engine), on_active=node.activate, on_standby=node.deactivate,
                     check_s=settings.cti_lease_check_s, timeout_s=settings.cti_lease_timeout_s)


def _duty_candidate(node: Node) -> Candidate:
    from cti.leader import Candidate

    settings, prefix = node.settings, getattr(node.bus, "prefix", "hotline")
    return Candidate(cti_lease(settings, node.engine, f"web-duties:{prefix}"), on_active=node.take_duties,
                     on_standby=node.drop_duties, check_s=settings.cti_lease_check_s,
                     timeout_s=settings.cti_lease_timeout_s, label="web duty lease")


def _wire_agi(node: Node) -> None:
    from agi.service import TicketLookups, call_log_hooks, job_numbers_from, server

    settings = node.settings
    node.lookups = TicketLookups(node.store, settings.cti_timezone)
    on_survey, on_callback_request = call_log_hooks(node.store.calls, node.lookups)
    by_setting = job_numbers_from(settings)
    cti = node.live_cti

    def job_number(seat: str) -> str:
        """首问负责制: whoever is signed in at the seat (known where the bridge runs), else the setting."""
        return (cti.job_number_at(seat) if cti is not None else "") or by_setting(seat)

    node.agi = server(settings, node.lookups, on_survey=on_survey, on_callback_request=on_callback_request,
                      job_number=job_number)


# --- entry points ------------------------------------------------------------------------------

def web_app(settings: Settings, *, freeze_heap: bool = False, preflight: bool = False) -> FastAPI:
    """The web room with this node's services; they start and stop with the app's lifespan.
    ``preflight``: production's refusals first, and its first admin's setup token (served entry points)."""
    from agent_ui.app import WebParts, create_app

    node = build(settings, roles_of(settings, web=True))
    if preflight:
        refuse_unsafe(settings, node.accounts, node.engine)
        token = first_admin(settings, node.accounts)
        if token:
            announce_setup(settings, token)
    node.freeze_heap = freeze_heap
    parts = WebParts(settings=settings, engine=node.engine, store=node.store, accounts=node.accounts, bus=node.bus,
                     cti=node.live_cti, lead=node.lead)
    return create_app(parts, node)


def server_config(settings: Settings, **overrides: Any) -> uvicorn.Config:
    """How the console is served, the same for ``hotline up``, ``hotline web`` and the benchmarks.

    No permessage-deflate: the console's messages are a few KB on an office LAN, and compressing
    each one for each operator cost the single event loop more than the bytes it saved (a burst
    of 50 pops went out ≈ 10 ms later with it).
    """
    import uvicorn

    options: dict[str, Any] = {
        "host": settings.web_host, "port": settings.web_port, "proxy_headers": False,
        "ws_per_message_deflate": False, "log_level": "info",
    }
    if settings.tls:  # HTTPS and WSS on the same port; the session cookie is then Secure
        options |= {"ssl_certfile": str(settings.tls_certfile), "ssl_keyfile": str(settings.tls_keyfile)}
    return uvicorn.Config(web_app(settings, freeze_heap=True, preflight=True), **(options | overrides))


async def serve(settings: Settings, roles: Iterable[str], *, started: asyncio.Event | None = None,
                stop: asyncio.Event | None = None) -> None:
    """``hotline cti`` / ``hotline agi``: run the roles without a web room until ``stop`` is set
    (or the task is cancelled)."""
    node = await asyncio.to_thread(build, settings, roles)
    refuse_unsafe(settings, node.accounts, node.engine)
    node.freeze_heap = True
    await node.start()
    log.info("hotline running: %s", ", ".join(sorted(node.roles)))
    if started is not None:
        started.set()
    try:
        await (stop.wait() if stop is not None else asyncio.Event().wait())
    finally:
        await node.stop()


class SeedRefused(RuntimeError):
    """``hotline seed`` will not write demo data here (production, or real tickets), unless forced."""


def seed(settings: Settings, tickets: int, *, force: bool = False) -> dict[str, int]:
    """``hotline seed``: the demo city into the configured database, never over real work."""
    from ticketing.seed import seed_demo, ticket_origins

    node = build(settings, set())
    try:
        if not force:
            if settings.mode == "production":
                raise SeedRefused("生产模式不写入演示数据（确需写入请加 --force）")
            origins = ticket_origins(node.engine)
            real = origins["real"]
            if real and not origins["demo"]:  # a demo's own database holds the demo and what people tried in it
                raise SeedRefused(f"数据库中已有 {real} 张真实工单，不写入演示数据（确需写入请加 --force）")
        return seed_demo(node.engine, tickets=tickets)
    finally:
        node.engine.dispose()


def transcribe(settings: Settings, workers: int | None = None, *, drain: bool = False) -> dict[str, Any]:
    """``hotline transcribe``: the Vosk workers over the recordings backlog."""
    return recordings.service.run(settings, workers, drain=drain)


# the young generation's size before a collection: Python's 700 collected gen 0 some 20 times a second
# in a node taking a burst of calls (each request, event and picture makes and drops thousands of
# containers), and every tenth pass took gen 1 along, 10–50 ms on a web node whose two cores were
# busy. At 20 000 a burst's work is collected about 30 times less often: in bench/screen_pop.py
# (200 calls, two web nodes, ninth session) the app's CPU a call fell from 11.1–11.3 to 8.4–9.5 ms
# while the bare baseline's, run beside it, stayed at 2.6–3.0, and the wrap-up clicks were done 3–4.5
# times sooner. Objects that die by their reference count, most of them, never reach a collection.
GC_YOUNG = 20_000


def freeze() -> None:
    """After start-up, for a long-running process: ~200 000 objects live from start-up to shutdown
    (libraries, the directory, the dictionaries); a full collection walking them stalled the event
    loop for 100 ms+, and every pop of a burst arrived that much later. Frozen, collections skip them.
    Then the young generation is collected less often (``GC_YOUNG``); the older two keep Python's
    ratios."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])

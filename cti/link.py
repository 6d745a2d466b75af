"""The AMI link: panoramisk 1.4 behind one class, with the fixes the spike found necessary.

* Bytes go through :class:`cti.protocol.FrameParser` (split on bytes, decode whole frames), so
  a Chinese caller name cut between TCP reads survives; panoramisk's per-chunk
  ``decode(errors='ignore')`` never sees the bytes. panoramisk still does what it is good
  at: action ids and matching responses (including list responses) to futures.
* Login is ours and confirmed: panoramisk's ``connect()`` returns when TCP opens and a refused
  login raises nothing. Bad credentials raise :class:`AmiLoginError` and stop the retries.
* A ping watchdog (``asyncio.wait_for(Ping, ping_timeout)``) notices a silent dead link
  (SIGSTOPped Asterisk, dead route) and forces a reconnect; panoramisk's own ping never
  checks the reply.
* Every action is bounded by ``asyncio.wait_for`` (and given up at once when the link drops);
  nothing is queued while disconnected
  (panoramisk would replay stale call-control actions after ``FullyBooted``).
* Logged in is not ready: a restarting Asterisk accepts a Login ~0.1 s before ``app_queue`` is
  loaded (``QueueStatus`` → "Invalid/unknown command"), so the link waits for ``FullyBooted``
  (sent at login when already booted, else when booting ends) before it calls itself up.
* Reconnect with exponential back-off; after every (re)login the ``on_login`` hook runs (the
  service resynchronises from ``QueueStatus`` / ``CoreShowChannels`` there). A failed hook
  drops the connection and retries: a link must not stay up on a state it could not reconcile.
* The link pumps: each event frame is decoded (:mod:`cti.protocol`), given to ``handle`` (the
  state machines) and what that returns goes to ``publish`` (the bus), with nobody in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from cti.events import AmiEvent
from cti.protocol import EventFactory, Frame, FrameParser
from hotline.bus import DomainEvent

log = logging.getLogger(__name__)


class AmiError(Exception):
    pass


class AmiLoginError(AmiError):
    """Asterisk refused the credentials (retrying would not help)."""


class AmiNotConnected(AmiError):
    pass


class AmiNotSent(AmiNotConnected):
    """Not logged in: the action never left (unlike a link lost while waiting for its answer)."""


class AmiTimeout(AmiError):
    pass


class _Protocol(AMIProtocol):
    """panoramisk's protocol with our byte-level parser in front of it."""

    def __init__(self, link: AmiLink) -> None:
        super().__init__()
        self.link = link
        self.parser = FrameParser()

    def data_received(self, data: bytes) -> None:  # type: ignore[override]
        link = self.link
        link.last_rx = time.monotonic()
        for frame in self.parser.iter_feed(data):
            try:
                link._on_frame(self, frame)
            except Exception:  # one bad frame or consumer bug must not kill the link
                link.frame_errors += 1
                log.exception("AMI: failed to handle %r", frame)


class _Manager(Manager):
    """panoramisk's Manager minus its own reconnect loop: :class:`AmiLink` supervises."""

    link: AmiLink

    def connection_lost(self, exc: Any) -> None:
        self._connected = False
        if self.pinger:
            self.pinger.cancel()
            self.pinger = None
        self.link._connection_lost(exc)


def _message(frame: Frame) -> Message:
    msg = Message(dict(frame.headers), "\n".join(frame.lines))
    msg.frame = frame  # kept so list answers can become typed events without re-parsing
    return msg


class AmiLink:
    """One supervised AMI connection. Create and :meth:`start` it inside the running loop."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        handle: Callable[[AmiEvent], Iterable[DomainEvent]],
        publish: Callable[[DomainEvent], object],
        on_login: Callable[[], Awaitable[None]] | None = None,
        on_status: Callable[[bool, str], None] | None = None,
        ping_interval: float = 3.0,
        ping_timeout: float = 5.0,
        action_timeout: float = 10.0,
        connect_timeout: float = 3.0,
        boot_timeout: float = 30.0,
        backoff: tuple[float, float] = (0.2, 2.0),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host, self.port, self.username, self.secret = host, port, username, secret
        self.handle = handle
        self.publish = publish
        self.on_login = on_login
        self.on_status = on_status
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.action_timeout = action_timeout
        self.connect_timeout = connect_timeout
        self.boot_timeout = boot_timeout
        self.backoff = backoff
        self.clock = clock
        self.factory = EventFactory()
        self.logged_in = False
        self.logins = 0
        self.disconnects = 0
        self.frame_errors = 0
        self.last_rx = 0.0
        self.version: str | None = None
        self._mgr: _Manager | None = None
        self._protocol: _Protocol | None = None
        self._lost: asyncio.Event | None = None
        self._booted: asyncio.Event | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._first_login: asyncio.Future[None] | None = None
        self._closing = False

    # ------------------------------------------------------------------ public

    async def start(self, wait: float | None = 10.0) -> None:
        """Connect and log in; with ``wait``, return only once logged in (or raise)."""
        loop = asyncio.get_running_loop()
        self._closing = False  # closed, then started again: a standby bridge elected once more (cti/leader.py)
        # panoramisk objects are created here, inside the running loop
        self._mgr = _Manager(
            host=self.host,
            port=self.port,
            loop=loop,
            encoding="utf-8",
            ping_delay=10**6,  # its own pinger is useless (never checks the reply): ours runs
            ping_interval=10**6,
            protocol_factory=lambda: _Protocol(self),
        )
        self._mgr.link = self
        self._first_login = loop.create_future()
        self._supervisor = asyncio.create_task(self._supervise(), name="ami-link")
        if wait is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._first_login), wait)
            except TimeoutError:
                raise AmiNotConnected(f"no AMI login at {self.host}:{self.port} within {wait} s") from None

    async def close(self) -> None:
        self._closing = True
        self._drop_connection()  # wakes the supervisor even if a cancel gets lost (3.11 wait_for race)
        if self._supervisor:
            self._supervisor.cancel()
            await asyncio.wait({self._supervisor}, timeout=2)

    async def send(self, action: dict[str, Any], *, as_list: bool | None = False, within: float | None = None):
        """Send one action; its response (or list of messages with ``as_list=True``).

        ``as_list=False`` is the default because panoramisk 1.4 otherwise waits forever for a
        list after ``QueueAdd`` ("Added interface to queue").
        """
        if not self.logged_in or self._mgr is None:
            raise AmiNotSent(f"AMI not logged in; {action.get('Action')} not sent")
        return await self._send(action, as_list, within)

    async def query(self, action: dict[str, Any], within: float | None = None) -> list[AmiEvent]:
        """A list action (``QueueStatus``, ``CoreShowChannels``…) → its events, typed."""
        reply = await self.send(action, as_list=True, within=within)
        msgs = reply if isinstance(reply, list) else [reply]
        first = msgs[0] if msgs else None
        if first is not None and "response" in first and not first.success:
            raise AmiError(f"{action.get('Action')} failed: {first.get('Message')}")
        now = self.clock()
        return [self.factory.build(m.frame, now) for m in msgs if "event" in m and hasattr(m, "frame")]

    def stats(self) -> dict[str, Any]:
        p = self._protocol
        return {
            "logged_in": self.logged_in,
            "logins": self.logins,
            "disconnects": self.disconnects,
            "frames": p.parser.frames if p else 0,
            "malformed": p.parser.malformed if p else 0,
            "unknown_events": sum(self.factory.unknown.values()),
            "event_errors": self.factory.errors + self.frame_errors,
            "version": self.version,
        }

    # ------------------------------------------------------------------ internals

    async def _send(self, action: dict[str, Any], as_list: bool | None, within: float | None):
        """Send and wait at most ``within`` s, and not at all once the link is lost."""
        assert self._mgr is not None
        limit = within or self.action_timeout
        fut = self._mgr.send_action(dict(action), as_list=as_list)
        lost = self._lost
        waiter = asyncio.ensure_future(lost.wait()) if lost is not None else None
        try:
            # asyncio.wait_for on the answer, raced against the link going down: a Login sent to
            # a dying Asterisk must not hold the reconnect for the whole timeout
            await asyncio.wait_for(
                asyncio.wait({fut, *([waiter] if waiter else [])}, return_when=asyncio.FIRST_COMPLETED), limit
            )
        except TimeoutError:
            pass
        finally:
            if waiter is not None:
                waiter.cancel()
        if fut.done() and not fut.cancelled():
            return fut.result()
        fut.cancel()
        p = self._protocol
        if p is not None:  # forget it: a late answer must not resolve anything
            for k in [k for k, a in p.responses.items() if a.future is fut]:
                p.responses.pop(k, None)
        if lost is not None and lost.is_set():
            raise AmiNotConnected(f"{action.get('Action')}: AMI link lost before the answer")
        raise AmiTimeout(f"{action.get('Action')}: no answer within {limit} s")

    def _on_frame(self, protocol: _Protocol, frame: Frame) -> None:
        h = frame.headers
        aid = h.get("ActionID")
        if aid is not None and isinstance(aid, str) and aid in protocol.responses:
            protocol.handle_message(_message(frame))
            return
        name = h.get("Event")
        if name is None:
            return  # a response to an action we gave up on
        out = self.handle(self.factory.build(frame, self.clock()))  # the state's verdict, to the bus
        if out:
            publish = self.publish
            for e in out:
                publish(e)
        if name == "FullyBooted" and self._booted is not None:
            self._booted.set()
        elif name == "Shutdown":
            log.warning("AMI: Asterisk is shutting down")
            self._drop_connection()

    def _connection_lost(self, exc: Any) -> None:
        if self._lost is not None:
            self._lost.set()

    def _drop_connection(self) -> None:
        p = self._protocol
        if p is not None and not p.closed:
            with contextlib.suppress(Exception):
                p.transport.abort()
        if self._lost is not None:
            self._lost.set()

    def _status(self, up: bool, detail: str) -> None:
        if self.on_status is not None:
            try:
                self.on_status(up, detail)
            except Exception:
                log.exception("AMI status callback failed")

    async def _supervise(self) -> None:
        delay = self.backoff[0]
        while not self._closing:
            connected = False
            try:
                await self._connect_and_login()
                connected = True
                delay = self.backoff[0]
                await self._serve()
            except AmiLoginError as exc:
                self._status(False, str(exc))
                if self._first_login and not self._first_login.done():
                    self._first_login.set_exception(exc)
                log.error("AMI: %s; not retrying", exc)
                self._drop_connection()
                return
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, AmiError) as exc:
                log.warning("AMI: connection to %s:%s failed: %s", self.host, self.port, exc)
            finally:
                was = self.logged_in
                self.logged_in = False
                self._drop_connection()
                if connected or was:
                    self.disconnects += 1
                    self._status(False, "AMI link lost")
            if self._closing:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff[1])

    async def _connect_and_login(self) -> None:
        assert self._mgr is not None
        loop = asyncio.get_running_loop()
        self._lost = asyncio.Event()
        self._booted = asyncio.Event()
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(self._mgr.config["protocol_factory"], self.host, self.port),
            self.connect_timeout,
        )
        self._protocol = protocol
        done = loop.create_future()
        done.set_result((transport, protocol))
        self._mgr.connection_made(done)  # panoramisk wires protocol ↔ manager (no login: no username)
        if self._mgr.pinger:
            self._mgr.pinger.cancel()
            self._mgr.pinger = None
        reply = await self._send(
            {"Action": "Login", "Username": self.username, "Secret": self.secret, "Events": "on"},
            False,
            self.connect_timeout,
        )
        if not reply.success:
            raise AmiLoginError(f"AMI login as {self.username!r} refused: {reply.get('Message')}")
        await self._until_booted()
        self.version = protocol.parser.version
        self.logged_in = True
        self.logins += 1
        log.info("AMI: logged in to %s:%s (Asterisk Call Manager %s)", self.host, self.port, self.version)
        self._status(True, f"logged in (#{self.logins})")
        if self.on_login is not None:
            try:
                await self.on_login()
            except Exception as exc:
                log.exception("AMI: on_login hook (resync) failed; reconnecting")
                raise AmiError(f"on_login hook failed: {exc}") from exc
        if self._first_login and not self._first_login.done():
            self._first_login.set_result(None)  # start() returns logged in *and* resynchronised

    async def _until_booted(self) -> None:
        assert self._booted is not None and self._lost is not None
        lost = asyncio.ensure_future(self._lost.wait())
        booted = asyncio.ensure_future(self._booted.wait())
        try:
            await asyncio.wait({lost, booted}, timeout=self.boot_timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            booted.cancel()
        if self._booted.is_set():
            return
        if self._lost.is_set():
            raise AmiNotConnected("AMI link lost before Asterisk was fully booted")
        raise AmiTimeout(f"Asterisk not fully booted within {self.boot_timeout} s of the login")

    async def _serve(self) -> None:
        """Until the link is lost: ping, and give up on a link that does not answer."""
        assert self._lost is not None
        while not self._lost.is_set() and not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self.ping_interval)
                return
            try:
                await self._send({"Action": "Ping"}, False, self.ping_timeout)
            except AmiTimeout:
                log.error("AMI: no answer to Ping within %s s: link is dead, reconnecting", self.ping_timeout)
                return

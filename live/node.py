"""A listening node: the AudioSocket server, one recogniser per leg, and what it says on the bus.

It runs in the web app on one box (``HOTLINE_SERVICES`` with ``listen``, the default) or alone on
any number of recognition machines (``hotline listen``): recognition is where the cores go
(≈ 0.15 core-second per second of a leg here), so each node says every ``every_s`` how many legs it
holds (:class:`hotline.listening.ListenerStatus`) and the bridge sends a call's legs to one with
room (admission, not overload). A node that falls behind says it is overloaded, drops the leg
that fell behind (its call is transcribed after it ends, as before) and takes no new calls until
it has caught up; the call itself, its pop and its recording never wait for recognition.

What is heard goes out as :class:`TranscriptLine` (partials throttled, finals as they settle), and
each final is written to the database (``recordings.live_legs``) and given to the call's
:class:`live.assist.Assistant`, whose articles, proposals and flags go out too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cti.domain import CallCompleted, CallConferenced, OutboundEnded, SeatState, SeatStateChanged
from hotline.bus import Bus, DomainEvent, Envelope, follow
from hotline.listening import AssistOffered, LegsAssigned, ListenerStatus, LiveFlagRaised, LiveState, TranscriptLine
from live.assist import Assistant, Help
from live.engine import Engine, Heard
from live.legs import Leg, LegRecogniser, lower_priority
from live.receiver import BROKEN_ENDS, CLEAN_ENDS, Receiver

log = logging.getLogger(__name__)
CALL_ENDS = (CallCompleted, OutboundEnded)  # a queue call's end, a callback's (回拨 / 回访)
# the kinds :meth:`ListenNode._wanted` looks at: a bus shared between processes rebuilds only these here
FOLLOWED = (LegsAssigned, *CALL_ENDS, SeatStateChanged, CallConferenced)

SaveLeg = Callable[..., None]  # recordings.live_legs.save's keywords
LEGS_PER_CORE = 4  # measured ≈ 6.9 legs a core for Vosk alone; the rest of the box needs its share
SPY_RATE = 8000  # cti.spies originates the AudioSocket channel without a codec: Asterisk sends 8 kHz slin
# a leg that broke off (live.receiver.BROKEN_ENDS) ended with its call if the call's end reached the bus
# within this of the break; else it was cut mid-call
CALL_END_WAIT_S = 5.0
STOP_WAIT_S = 10.0  # at stop, how long the legs' last writes may take


@dataclass(frozen=True, slots=True)
class NodeConfig:
    name: str
    host: str = "127.0.0.1"
    port: int = 9293
    address: str = ""  # as Asterisk reaches it; empty: host:port
    capacity: int = 0  # legs; 0: LEGS_PER_CORE a core
    max_lag_s: float = 4.0
    nice: int = 10
    pause_s: float = 0.6  # live.endpoint: a pause this long settles a sentence
    every_s: float = 2.0
    claim_s: float = 2.0  # a connection whose uuid was not announced yet waits this long for it

    @classmethod
    def from_settings(cls, s: Any) -> NodeConfig:
        return cls(name=f"listen@{s.listen_address or f'{s.listen_host}:{s.listen_port}'}", host=s.listen_host,
                   port=s.listen_port, address=s.listen_address, capacity=s.listen_legs,
                   max_lag_s=s.listen_max_lag_s, nice=s.listen_nice, pause_s=s.listen_pause_s)


@dataclass
class _Heard:
    """A leg's settled sentences and words so far (what is written to the database)."""

    leg: Leg
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    lines: list[dict[str, Any]] = field(default_factory=list)
    words: list[dict[str, Any]] = field(default_factory=list)
    rec: LegRecogniser | None = None


class ListenNode:
    def __init__(self, cfg: NodeConfig, bus: Bus, load_engine: Callable[[], Engine], *,
                 save_leg: SaveLeg | None = None, assistant: Callable[..., Assistant] | None = None) -> None:
        self.cfg, self.bus = cfg, bus
        self.capacity = cfg.capacity or LEGS_PER_CORE * (os.cpu_count() or 1)
        self._load_engine, self._save, self._new_assistant = load_engine, save_leg, assistant
        self.engine: Engine | None = None
        self.receiver = Receiver(self._claim, host=cfg.host, port=cfg.port)
        self._expected: dict[str, tuple[Leg, float]] = {}  # uuid → leg, when announced
        self._legs: dict[str, _Heard] = {}  # uuid → a leg streaming now
        self._assistants: dict[str, Assistant] = {}  # call → its assistant
        self._visits: set[str] = set()  # callbacks (回拨 / 回访): their assistant proposes the verdicts too
        # call → the seat and operator it is with now: after a transfer the citizen's words go to the new seat
        self._with: dict[str, tuple[str, str]] = {}
        self._parts: dict[tuple[str, str], int] = {}  # (call, speaker) → legs of that speaker so far
        # calls whose seat left while the citizen stays on (a transfer to a department's line, or the
        # operator hung up before the survey): nothing more goes to that seat's screen; the words are
        # still kept, and still flagged to the leads
        self._left: set[str] = set()
        self._over: dict[str, float] = {}  # calls that ended (CALL_ENDS) → when (monotonic): their seat did not leave
        self._conferenced: set[str] = set()  # calls a department was brought into (三方): legs saved partial
        self._arrived = asyncio.Event()
        self._db = ThreadPoolExecutor(1, thread_name_prefix="listen-db")  # one writer: a leg's writes in order
        self._assist = ThreadPoolExecutor(1, thread_name_prefix="listen-assist")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._finishing: set[asyncio.Task[None]] = set()  # legs' ends being written
        self.behind_until = 0.0  # overloaded until then (a leg was dropped): no new calls
        self.dropped = 0
        self._stopping = False
        self.warmed = False  # a recogniser is warm for every leg the node holds

    @property
    def address(self) -> str:
        return self.cfg.address or f"{self.cfg.host}:{self.receiver.port}"

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.engine = await asyncio.to_thread(self._load_engine)  # seconds, and up to a gigabyte: not on the loop
        # the recognisers' start-up cost, paid now at low priority rather than when calls come; legs that
        # come before it is done open fresh ones
        threading.Thread(target=self._warm, name="listen-warm", daemon=True).start()
        await self.receiver.start()
        # the bridge that announces legs is usually another process: a subscription, not a listener
        self._tasks.append(self._loop.create_task(follow(self.bus, self._on_bus, self._wanted, kinds=FOLLOWED),
                                                      name="listen-bus"))
        self._tasks.append(self._loop.create_task(self._heartbeat(), name="listen-heartbeat"))
        log.info("live: listening node %s on %s, %d legs, %s", self.cfg.name, self.address, self.capacity,
                 self.engine.name)

    def _warm(self) -> None:
        lower_priority(self.cfg.nice)
        try:
            assert self.engine is not None
            t0 = time.monotonic()
            for k in range(1, self.capacity + 1):  # one at a time: a node stopping stops this within a second
                if self._stopping:
                    return
                self.engine.warm(k, SPY_RATE)
            self.warmed = True
            log.info("live: %d recognisers warm in %.1f s", self.capacity, time.monotonic() - t0)
        except Exception:  # legs then open fresh recognisers: slower to start, nothing lost
            log.exception("live: warming the recognisers failed")

    async def stop(self) -> None:
        self._stopping = True  # the legs cut now are not whole: the recording is heard after the call
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        with contextlib.suppress(Exception):  # the last word: no room here any more
            self.bus.publish_nowait(self._status(capacity=0))
        await self.receiver.stop()
        for h in list(self._legs.values()):
            if h.rec is not None:
                h.rec.close()
        if self._finishing:  # the legs the receiver's stop just ended are written before the writer goes
            _, late = await asyncio.wait(self._finishing, timeout=STOP_WAIT_S)
            if late:
                log.warning("live: %d legs not written within %.0f s of stop", len(late), STOP_WAIT_S)
        self._db.shutdown(wait=True)
        self._assist.shutdown(wait=False, cancel_futures=True)

    # --- admission ------------------------------------------------------------------------

    @property
    def active(self) -> int:
        return len(self._legs) + len(self._expected)

    @property
    def overloaded(self) -> bool:
        if time.monotonic() < self.behind_until:
            return True
        return any(h.rec is not None and h.rec.lag_s > self.cfg.max_lag_s / 2 for h in self._legs.values())

    def _status(self, capacity: int | None = None) -> ListenerStatus:
        return ListenerStatus(at=time.time(), node=self.cfg.name, address=self.address,
                              capacity=self.capacity if capacity is None else capacity, active=self.active,
                              overloaded=self.overloaded, engine=self.engine.name if self.engine else "",
                              warm=self.engine.idle(SPY_RATE) if self.engine else 0, every_s=self.cfg.every_s)

    async def _heartbeat(self) -> None:
        while True:
            self._forget_unclaimed()
            self.bus.publish_nowait(self._status())
            await asyncio.sleep(self.cfg.every_s)

    def _forget_unclaimed(self) -> None:
        """Legs announced that never connected (the Originate failed): their room is free again."""
        old = time.monotonic() - 30
        for uid in [u for u, (_, t) in self._expected.items() if t < old]:
            leg, _ = self._expected.pop(uid)
            log.warning("live: %s leg of %s never connected", leg.speaker, leg.call_id)

    # --- the bus --------------------------------------------------------------------------

    def _wanted(self, env: Envelope) -> bool:
        # a kind looked at here must be in FOLLOWED too: the bus drops the others before this is asked
        e = env.event
        return ((isinstance(e, LegsAssigned) and e.node == self.cfg.name) or isinstance(e, CALL_ENDS)
                or (isinstance(e, SeatStateChanged) and e.previous == SeatState.ON_CALL)
                or (isinstance(e, CallConferenced) and e.parties >= 3))

    def _on_bus(self, env: Envelope) -> None:
        ev = env.event
        if isinstance(ev, LegsAssigned) and ev.node == self.cfg.name:
            now = time.monotonic()
            before = self._with.get(ev.call_id, (ev.seat, ev.operator))[0]
            self._with[ev.call_id] = (ev.seat, ev.operator)
            if before != ev.seat:  # a transfer: the new operator's assistant starts afresh, for their form
                self._assistants.pop(ev.call_id, None)
                self._publish(LiveState(at=time.time(), call_id=ev.call_id, seat=before, state="moved",
                                        detail=f"实时转写随通话转至 {ev.seat}"))
            self._left.discard(ev.call_id)  # a seat has it again
            if ev.callback:
                self._visits.add(ev.call_id)
            for uid, speaker in ev.legs.items():
                part = self._parts[ev.call_id, speaker] = self._parts.get((ev.call_id, speaker), 0) + 1
                self._expected[uid] = (Leg(uid, ev.call_id, ev.seat, speaker, ev.operator, part), now)
            self._arrived.set()
        elif isinstance(ev, SeatStateChanged):
            self._seat_left(ev.seat)
        elif isinstance(ev, CallConferenced):  # a department in the room: the recording mixes it into a leg
            if ev.call_id in self._with:
                self._conferenced.add(ev.call_id)
        elif isinstance(ev, CALL_ENDS):  # the call is over: a spy still up is cut (watchdog)
            if ev.call_id in self._with:
                # the seat's own hang-up follows: the last words still go to it
                self._over.setdefault(ev.call_id, time.monotonic())
            for uid, h in list(self._legs.items()):
                if h.leg.call_id == ev.call_id:
                    self.receiver.hang_up(uid)
            self._assistants.pop(ev.call_id, None)

    def _seat_left(self, seat: str) -> None:
        """A seat's phone left its call (its leg hung up) while this node still hears the call's citizen."""
        for call, (with_seat, _) in self._with.items():
            if with_seat != seat or call in self._left or call in self._over:
                continue
            if any(h.leg.call_id == call and h.leg.speaker == "citizen" for h in self._legs.values()):
                self._left.add(call)
                self._assistants.pop(call, None)
                self._publish(LiveState(at=time.time(), call_id=call, seat=seat, state="left",
                                        detail="本坐席已离开通话，来电人之后的话语不再推送至本坐席"))

    async def _claim(self, uid: str) -> _Sink | None:
        deadline = time.monotonic() + self.cfg.claim_s
        while uid not in self._expected:
            self._arrived.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)
        leg, _ = self._expected.pop(uid)
        self._legs[uid] = _Heard(leg)
        self._publish(LiveState(at=time.time(), call_id=leg.call_id, seat=leg.seat, state="listening",
                                speaker=leg.speaker, detail=self.engine.name if self.engine else ""))
        return _Sink(self, uid)

    def _seat(self, leg: Leg) -> str:
        """Where the call's lines go now: the seat it was last given to (a transfer moves it)."""
        return self._with.get(leg.call_id, (leg.seat, ""))[0]

    def _publish(self, ev: DomainEvent) -> None:
        try:
            self.bus.publish_nowait(ev)
        except Exception:  # the bus said why in its own log; the call goes on without this line
            log.warning("live: not published: %s", type(ev).__name__)

    # --- one leg --------------------------------------------------------------------------

    def _audio(self, uid: str, pcm: bytes, rate: int) -> None:
        h = self._legs.get(uid)
        if h is None:
            return
        if h.rec is None:
            assert self.engine is not None
            h.rec = LegRecogniser(h.leg, self.engine, rate, self._from_thread, max_lag_s=self.cfg.max_lag_s,
                                  nice=self.cfg.nice, pause_s=self.cfg.pause_s)
        if h.rec.dropped:
            return
        if not h.rec.feed(pcm):
            self.dropped += 1
            self.behind_until = time.monotonic() + 30
            self._publish(LiveState(at=time.time(), call_id=h.leg.call_id, seat=self._seat(h.leg), state="degraded",
                                    speaker=h.leg.speaker, detail=h.rec.error or "识别跟不上，本路改为通话结束后转写"))

    def _ended(self, uid: str, why: str) -> None:
        h = self._legs.get(uid)
        if h is None:
            return
        if h.rec is not None:
            h.rec.close()
        assert self._loop is not None
        task = self._loop.create_task(self._finish(uid, h, why, time.monotonic()), name=f"listen-end-{uid}")
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _finish(self, uid: str, h: _Heard, why: str, broke_at: float) -> None:
        if h.rec is not None:
            # the last sentence comes out of FinalResult, after up to max_lag_s of audio still queued: a recogniser
            # on a loaded box may hear it at a third of real time before it is given up for the file
            await asyncio.to_thread(h.rec.join, max(30.0, 3 * self.cfg.max_lag_s))
        # whole only if the call ended it (Asterisk closed it, or we did on CallCompleted) and every second was
        # recognised: a leg cut by a timeout, a broken connection or this node stopping is not placed on the
        # recording. Still in self._legs while it waits, so the call's other legs do not forget it ended
        ended_by_call = not self._stopping and (why in CLEAN_ENDS or (
            why.startswith(BROKEN_ENDS) and await self._call_ends(h.leg, why, broke_at)))
        self._legs.pop(uid, None)
        complete = h.rec is not None and h.rec.complete and ended_by_call
        # after a 三方 the legs are whole but do not match the recording's (recordings.live_legs.PARTIAL)
        saved = self._write(h, "dropped" if not complete else "partial" if h.leg.call_id in self._conferenced
                            else "complete")
        if saved is not None:  # "ended" tells the console the transcript is saved: only once it is
            await asyncio.wait({asyncio.wrap_future(saved)}, timeout=30)  # on a timeout the write still goes on
        log.info("live: %s leg of %s ended (%s), %d lines, %s", h.leg.speaker, h.leg.call_id, why, len(h.lines),
                 "complete" if complete else "incomplete")
        call = h.leg.call_id
        if not any(o.leg.call_id == call for o in self._legs.values()) and \
                not any(leg.call_id == call for leg, _ in self._expected.values()):
            self._publish(LiveState(at=time.time(), call_id=call, seat=self._seat(h.leg), state="ended"))
            self._with.pop(call, None)
            self._left.discard(call)
            self._over.pop(call, None)
            self._visits.discard(call)
            self._conferenced.discard(call)
            for key in [k for k in self._parts if k[0] == call]:
                del self._parts[key]

    async def _call_ends(self, leg: Leg, why: str, broke_at: float) -> bool:
        """Whether the call's end (CALL_ENDS) reached the bus by CALL_END_WAIT_S after the leg broke off
        (counted from the break, not from now: the recogniser's drain before this may take longer)."""
        deadline = broke_at + CALL_END_WAIT_S
        while (ended_at := self._over.get(leg.call_id)) is None:
            if time.monotonic() >= deadline or self._stopping:
                return False
            await asyncio.sleep(0.1)
        if ended_at > deadline:  # the call went on after this leg broke: it was cut mid-call
            return False
        log.info("live: %s leg of %s broke off (%s) as its call ended: taken as the call's end", leg.speaker,
                 leg.call_id, why)
        return True

    def _write(self, h: _Heard, state: str) -> Future[None] | None:
        if self._save is None:
            return None
        rec, leg = h.rec, h.leg
        kw = dict(call_id=leg.call_id, speaker=leg.speaker, part=leg.part, seat=leg.seat, node=self.cfg.name,
                  model=self.engine.name if self.engine else "", state=state, started_at=h.started_at,
                  audio_s=rec.heard_s if rec else 0.0, lines=list(h.lines), words=list(h.words))
        return self._db.submit(self._save_logged, kw)

    def _save_logged(self, kw: dict[str, Any]) -> None:
        try:
            assert self._save is not None
            self._save(**kw)
        except Exception:  # the live lines are also on the bus; the recording is transcribed anyway
            log.exception("live: leg %s/%s not saved", kw["call_id"], kw["speaker"])

    # --- what was heard -------------------------------------------------------------------

    def _from_thread(self, leg: Leg, heard: Heard, line: int) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._heard, leg, heard, line)

    def _heard(self, leg: Leg, heard: Heard, line: int) -> None:
        seated = leg.call_id not in self._left
        if seated:
            self._publish(TranscriptLine(at=time.time(), call_id=leg.call_id, seat=self._seat(leg),
                                         speaker=leg.speaker, line=line, text=heard.text, final=heard.final,
                                         start_s=heard.start_s, end_s=heard.end_s))
        if not heard.final:
            return
        h = self._legs.get(leg.id)
        if h is not None:
            h.lines.append({"line": line, "text": heard.text, "start": heard.start_s, "end": heard.end_s})
            h.words.extend(heard.words)
            self._write(h, "listening")
        if self._new_assistant is not None and leg.speaker in ("citizen", "operator"):  # not a 三方's department
            assistant = self._assistants.get(leg.call_id)
            if assistant is None:
                assistant = self._assistants[leg.call_id] = self._new_assistant(visit=leg.call_id in self._visits)
            fut = self._assist.submit(assistant.hear, leg.speaker, heard.text)
            fut.add_done_callback(lambda f: self._from_assist(leg, heard, f))

    def _from_assist(self, leg: Leg, heard: Heard, fut: Any) -> None:
        loop = self._loop
        if fut.cancelled() or loop is None or loop.is_closed():
            return
        if fut.exception() is not None:
            log.warning("live: assistant failed on %s: %s", leg.call_id, fut.exception())
            return
        loop.call_soon_threadsafe(self._offer, leg, fut.result())

    def _offer(self, leg: Leg, got: Help) -> None:
        now = time.time()
        if (got.articles or got.proposals) and leg.call_id not in self._left:
            self._publish(AssistOffered(
                at=now, call_id=leg.call_id, seat=self._seat(leg),
                articles=[{"id": a.id, "title": a.title, "topic": a.topic, "hits": list(a.hits)} for a in got.articles],
                proposals=[{"field": p.field, "value": p.value, "label": p.label, "source": p.source,
                            "display": p.shown or p.value} for p in got.proposals]))
        for f in got.flags:
            # the operator who said a forbidden phrase is the leg's own; a citizen's words, the call's now
            seat, operator = (leg.seat, leg.operator) if leg.speaker == "operator" else \
                self._with.get(leg.call_id, (leg.seat, leg.operator))
            self._publish(LiveFlagRaised(at=now, call_id=leg.call_id, seat=seat, operator=operator,
                                         flag=f.kind, phrase=f.phrase, speaker=f.speaker, text=f.text))


class _Sink:
    """One connection's leg, as the receiver sees it."""

    def __init__(self, node: ListenNode, uid: str) -> None:
        self.node, self.uid = node, uid

    def audio(self, pcm: bytes, rate: int) -> None:
        self.node._audio(self.uid, pcm, rate)

    def ended(self, why: str) -> None:
        self.node._ended(self.uid, why)

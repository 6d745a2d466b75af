"""One leg's recognition, in a thread of its own, fed from the event loop without ever blocking it.

The AudioSocket reader hands each 20 ms frame to :meth:`LegRecogniser.feed`, which only appends to a
queue: the call's audio never waits for the recogniser. The thread takes the audio in steps of
``step_s`` and says what it heard through ``emit`` (called in the thread; the node moves it to the
loop). A sentence is settled when the recogniser ends it or, sooner, when the leg has paused for
``pause_s`` (:mod:`live.endpoint`: the recogniser's own rule waits seconds on a noisy line).

When the queue holds more than ``max_lag_s`` of audio the recogniser cannot keep up: the leg is
dropped (its words so far are kept, the rest is left to the post-call transcription) and ``feed``
says so, which the node turns into a visible ``degraded`` state and no new calls.

The thread runs at a lower priority (``nice``): on a box shared with Asterisk and the web, calls and
pops go first; Linux applies a niceness per thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from live.endpoint import Endpointer
from live.engine import Engine, Heard, Stream

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Leg:
    """Which call and speaker an AudioSocket connection carries."""

    id: str  # the AudioSocket uuid
    call_id: str
    seat: str
    speaker: str
    operator: str = ""
    part: int = 1  # the speaker's n-th leg of the call: 2 for the operator after a transfer


def lower_priority(nice: int) -> None:
    """This thread at ``nice`` (per thread on Linux; elsewhere the whole process): calls first."""
    if nice:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


Emit = Callable[[Leg, Heard, int], None]  # (leg, what was heard, the line number) — from the thread


class LegRecogniser:
    def __init__(self, leg: Leg, engine: Engine, rate: int, emit: Emit, *, step_s: float = 0.2,
                 partial_every_s: float = 0.4, max_lag_s: float = 4.0, nice: int = 10, pause_s: float = 0.6,
                 skip_quiet: bool = True, preroll_s: float = 0.4,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.leg, self.rate, self.emit = leg, rate, emit
        self.step = int(rate * step_s) * 2
        self.partial_every_s, self.max_lag_s, self.nice, self.clock = partial_every_s, max_lag_s, nice, clock
        self._engine = engine
        self._endpoint = Endpointer(rate, pause_s=pause_s) if pause_s > 0 else None  # 0: the engine's rule only
        self.cuts = 0  # sentences settled at a pause rather than by the engine
        self.skip_quiet = skip_quiet and self._endpoint is not None
        self.preroll = int(rate * preroll_s) * 2
        self.given_s = 0.0  # of the leg's audio, what the engine was given (the rest was quiet)
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._queued = 0  # bytes fed and not yet recognised (the thread subtracts what it took)
        self._lock = threading.Lock()
        self.dropped = False  # fell behind: no more audio is taken
        self.fed_s = 0.0
        self.heard_s = 0.0
        self.cpu_s = 0.0
        self.lines = 0  # finals said
        self.error = ""
        self._thread = threading.Thread(target=self._run, name=f"listen-{leg.speaker}-{leg.call_id}", daemon=True)
        self._thread.start()

    # --- the loop's side ------------------------------------------------------------------

    @property
    def lag_s(self) -> float:
        """Audio waiting for the recogniser, in seconds."""
        return self._queued / 2 / self.rate

    def feed(self, pcm: bytes) -> bool:
        """Queue a frame; False once the leg is dropped (too far behind, or the recogniser failed)."""
        if self.dropped:
            return False
        with self._lock:
            self._queued += len(pcm)
        self.fed_s += len(pcm) / 2 / self.rate
        if self.lag_s > self.max_lag_s:
            self.dropped = True
            self._queue.put(None)
            log.warning("live: %s leg of %s dropped, %.1f s behind", self.leg.speaker, self.leg.call_id, self.lag_s)
            return False
        self._queue.put(pcm)
        return True

    def close(self) -> None:
        """The leg ended: the thread says what it still heard, then stops."""
        if not self.dropped:
            self._queue.put(None)

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def complete(self) -> bool:
        """Everything the leg sent was recognised (the post-call transcription may use it)."""
        return not self.dropped and not self.error and not self._thread.is_alive()

    # --- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        lower_priority(self.nice)
        try:
            stream = self._engine.open(self.rate)
            self._hear(stream)
            stream.close()  # finished or dropped, the engine may keep what it held for the next leg
        except Exception as exc:  # a broken model or engine: this leg only, said, never the call
            self.error = f"{type(exc).__name__}: {exc}"
            self.dropped = True
            log.exception("live: recogniser of %s leg of %s failed", self.leg.speaker, self.leg.call_id)

    def _hear(self, stream: Stream) -> None:
        buf = bytearray()
        last_partial, said = float("-inf"), ""
        ep = self._endpoint
        # Between sentences, once the leg has been quiet for a pause with nothing left unsettled, its
        # audio is not given to the engine (the other party is talking: half a call's time), only
        # the endpointer hears it; the last ``preroll`` of it goes in ahead of the next voice. The
        # engine then times words by the audio it was given: ``shift`` puts them back on the leg's
        # time (constant within a sentence: the gap is only ever between two).
        gated, pre, shift = False, bytearray(), 0.0
        leg_at = given = 0  # bytes of the leg taken so far, bytes of it given to the engine
        while True:
            chunk = self._queue.get()
            if chunk is None:
                break
            buf += chunk
            if len(buf) < self.step:
                continue
            c0 = time.thread_time()
            paused = ep is not None and ep.push(bytes(buf))
            if gated and not (ep is not None and ep.voiced):
                pre += buf
                del pre[:-self.preroll]
                self._step_done(buf, c0)
                leg_at += len(buf)
                buf.clear()
                continue
            if gated:  # a voice again: the engine hears it from a little before
                gated, shift = False, (leg_at - len(pre) - given) / 2 / self.rate
                audio = bytes(pre) + bytes(buf)
                pre.clear()
            else:
                audio = bytes(buf)
            heard = stream.accept(audio)
            given += len(audio)
            self.given_s = given / 2 / self.rate
            if heard is not None and heard.final:
                if ep is not None:
                    ep.reset()
            elif paused and heard is not None:
                # the leg paused after words the engine has not settled yet: settle them now
                heard = stream.cut()
                self.cuts += heard is not None
            if ep is not None and self.skip_quiet and ep.quiet_s >= ep.pause_s and (heard is None or heard.final):
                gated = True
            self._step_done(buf, c0)
            leg_at += len(buf)
            buf.clear()
            if heard is None:
                continue
            if heard.final:
                self.lines += 1
                said = ""
                self.emit(self.leg, _shifted(heard, shift), self.lines)
            elif heard.text != said and self.clock() - last_partial >= self.partial_every_s:
                said, last_partial = heard.text, self.clock()
                self.emit(self.leg, heard, self.lines + 1)
        if self.dropped:
            return
        c0 = time.thread_time()
        # the last short step may end a sentence: Vosk hands it out there, and finish() then has nothing
        tail = stream.accept(bytes(buf)) if buf and not gated else None
        self._took(len(buf))
        for heard in (tail if tail is not None and tail.final else None, stream.finish()):
            if heard is not None:
                self.lines += 1
                self.emit(self.leg, _shifted(heard, shift), self.lines)
        self.cpu_s += time.thread_time() - c0

    def _step_done(self, buf: bytearray, c0: float) -> None:
        self.cpu_s += time.thread_time() - c0
        self._took(len(buf))

    def _took(self, n: int) -> None:
        with self._lock:
            self._queued -= n
        self.heard_s += n / 2 / self.rate


def _shifted(heard: Heard, by: float) -> Heard:
    """A final's times moved by ``by`` seconds (the quiet the engine was not given before it)."""
    if not by or not heard.final:
        return heard
    words = tuple({**w, "start": round(w["start"] + by, 3), "end": round(w["end"] + by, 3)} for w in heard.words)
    return Heard(heard.text, True, round(heard.start_s + by, 3), round(heard.end_s + by, 3), words)

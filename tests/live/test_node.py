"""The listening node with the real Vosk model: legs announced on the bus, streamed over AudioSocket
by a client that frames audio as Asterisk does (testkit.audiosocket), words out on the bus and in
the database; refusals, a leg that falls behind, and the heartbeat that says so."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.domain import CallCompleted
from hotline.bus import InProcessBus
from hotline.calls import FinishedCall
from hotline.listening import LegsAssigned, ListenerStatus, LiveState, TranscriptLine
from hotline.settings import Settings
from live import ListenNode, NodeConfig
from live.engine import VoskEngine
from recordings import live_legs
from recordings.db import make_engine, migrate
from recordings.transcribe import model_path
from testkit import audio
from testkit.audiosocket import read_wav, stream_leg


@pytest.fixture(scope="module")
def engine_vosk() -> VoskEngine:
    return VoskEngine(model_path(Settings()))


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, int]:
    folder = tmp_path_factory.mktemp("legs")
    path = audio.leg(folder / "citizen.wav", [("sil", 0.3), ("say", "caller_ko"), ("sil", 1.2)], 9.0)
    return read_wav(path)


@pytest.fixture
def db(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'live.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


class Heard:
    def __init__(self, bus: InProcessBus) -> None:
        self.events: list = []
        bus.add_listener(lambda env: self.events.append(env.event))

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def node_on(bus: InProcessBus, engine: VoskEngine, db, assistant=None, **cfg) -> ListenNode:
    # what is checked here is what is heard, not how fast: room to lag on a busy box, no niceness
    config = NodeConfig(**{"name": "listen-test", "port": 0, "every_s": 0.2, "max_lag_s": 60.0, "nice": 0, **cfg})
    return ListenNode(config, bus, lambda: engine, save_leg=lambda **kw: live_legs.save(db, **kw), assistant=assistant)


@contextlib.asynccontextmanager
async def running(engine: VoskEngine, db, assistant=None, **cfg
                  ) -> AsyncIterator[tuple[InProcessBus, Heard, ListenNode]]:
    """A started node on a bus of its own, and what the bus carries; stopped at the end."""
    bus = InProcessBus()
    heard = Heard(bus)
    node = node_on(bus, engine, db, assistant, **cfg)
    await node.start()
    try:
        yield bus, heard, node
    finally:
        await node.stop()


def assign_call(bus: InProcessBus, call_id: str) -> dict[str, str]:
    """A call at 8001 (operator 1024) whose two legs the bridge's spies send this node: uuid → speaker."""
    legs = {str(uuid.uuid4()): "citizen", str(uuid.uuid4()): "operator"}
    bus.publish_nowait(LegsAssigned(at=time.time(), call_id=call_id, seat="8001", operator="1024",
                                    node="listen-test", legs=legs))
    return legs


async def _until(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_two_legs_are_heard_apart_said_on_the_bus_and_kept(engine_vosk, speech, db) -> None:
    pcm, rate = speech

    async def scenario() -> None:
        async with running(engine_vosk, db) as (bus, heard, node):
            legs = assign_call(bus, "c1")
            silent = b"\0" * len(pcm)
            port = node.receiver.port
            sent = await asyncio.gather(*(stream_leg("127.0.0.1", port, uid, pcm if sp == "citizen" else silent, rate,
                                                     pace=2.0) for uid, sp in legs.items()))
            await _until(lambda: any(e.state == "ended" for e in heard.of(LiveState)))
            for s in sent:  # every frame answered with silence of its own size: ChanSpy stays awake
                assert s.echoed >= s.frames_sent - 5 and s.echoed_bytes == {rate // 50 * 2}
            lines = heard.of(TranscriptLine)
            citizen = [e for e in lines if e.speaker == "citizen"]
            assert any(not e.final for e in citizen), "partials while the citizen speaks"
            finals = [e for e in citizen if e.final]
            assert finals and all(e.text for e in finals) and all(e.seat == "8001" for e in finals)
            said = [e for e in lines if e.speaker == "operator" and e.final and e.text.strip()]
            assert not said, "silence says nothing"
            kept = live_legs.of_call(db, "c1")
            assert set(kept) == {"citizen", "operator"}
            assert kept["citizen"].state == live_legs.COMPLETE and kept["citizen"].words
            assert abs(kept["citizen"].audio_s - len(pcm) / 2 / rate) < 0.05
            assert [ln["text"] for ln in kept["citizen"].lines] == [e.text for e in finals]
            states = [e.state for e in heard.of(LiveState)]
            assert states.count("listening") == 2 and states[-1] == "ended"
            assert node.active == 0

    asyncio.run(scenario())


def test_a_leg_nobody_announced_and_a_stream_that_is_not_audiosocket_are_refused(engine_vosk, speech, db) -> None:
    pcm, rate = speech

    async def scenario() -> None:
        bus = InProcessBus()
        node = node_on(bus, engine_vosk, db, claim_s=0.3)
        node.receiver.hello_s = 1.0
        await node.start()
        try:
            sent = await stream_leg("127.0.0.1", node.receiver.port, uuid.uuid4(), pcm[:rate * 2], rate, pace=1.0)
            assert sent.closed_by_peer and sent.echoed == 0
            reader, writer = await asyncio.open_connection("127.0.0.1", node.receiver.port)
            writer.write(b"GET / HTTP/1.1\r\n\r\n")  # a kind byte of 'G', then a length: waits, then refused
            writer.write(b"\x01\x00\x03abc")
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
            assert node.receiver.refused + node.receiver.bad_frames >= 2
            assert live_legs.of_call(db, "") == {}
        finally:
            await node.stop()

    asyncio.run(scenario())


def test_a_leg_that_falls_behind_is_dropped_said_and_the_node_takes_no_new_calls(engine_vosk, speech, db) -> None:
    pcm, rate = speech

    async def scenario() -> None:
        async with running(engine_vosk, db, max_lag_s=0.3, capacity=6) as (bus, heard, node):
            uid = str(uuid.uuid4())
            bus.publish_nowait(LegsAssigned(at=time.time(), call_id="c2", seat="8002", node="listen-test",
                                            legs={uid: "citizen"}))
            # 9 s of audio in well under a second: no recogniser keeps up with that
            await stream_leg("127.0.0.1", node.receiver.port, uid, pcm, rate, pace=60.0)
            await _until(lambda: any(e.state == "ended" for e in heard.of(LiveState)))
            degraded = [e for e in heard.of(LiveState) if e.state == "degraded"]
            assert degraded and degraded[0].speaker == "citizen" and degraded[0].detail
            assert live_legs.of_call(db, "c2")["citizen"].state == live_legs.DROPPED
            await _until(lambda: heard.of(ListenerStatus) and heard.of(ListenerStatus)[-1].overloaded, 3)
            status = heard.of(ListenerStatus)[-1]
            assert status.capacity == 6 and status.node == "listen-test" and status.address.endswith(
                f":{node.receiver.port}")
        assert heard.of(ListenerStatus)[-1].capacity == 0, "a node that stops says it has no room"

    asyncio.run(scenario())


@pytest.mark.parametrize("callback", [False, True])
def test_each_settled_sentence_goes_to_the_calls_assistant_and_what_it_offers_goes_out(engine_vosk, speech,
                                                                                         db, callback: bool) -> None:
    """A callback's (回拨 / 回访) assistant is made for a visit: it proposes the 回访 verdicts."""
    from hotline.listening import AssistOffered, LiveFlagRaised
    from live.assist import Article, Flag, Help, Proposal

    pcm, rate = speech
    heard_by_assistant: list[tuple[str, str]] = []
    made: list[bool] = []

    class Assistant:  # the real one is tests/live/test_assist.py's: here, what the node does with its answers
        def __init__(self, *, visit: bool = False) -> None:
            made.append(visit)

        def hear(self, speaker: str, text: str) -> Help:
            heard_by_assistant.append((speaker, text))
            return Help((Article(7, "道路坑洼报修指引", "城市管理", ("도로",)),),
                        (Proposal("lead_department_id", "3", "承办单位", text, "市政局"),),
                        (Flag("emergency", "救命", speaker, text),))

    async def scenario() -> None:
        bus = InProcessBus()
        heard = Heard(bus)
        node = ListenNode(NodeConfig(name="listen-test", port=0, every_s=0.2, max_lag_s=60.0, nice=0), bus,
                          lambda: engine_vosk, assistant=Assistant)
        await node.start()
        try:
            uid = str(uuid.uuid4())
            bus.publish_nowait(LegsAssigned(at=time.time(), call_id="c3", seat="8003", operator="1026",
                                            node="listen-test", legs={uid: "citizen"}, callback=callback))
            await stream_leg("127.0.0.1", node.receiver.port, uid, pcm, rate, pace=2.0)
            await _until(lambda: heard.of(LiveFlagRaised) and heard.of(AssistOffered))
        finally:
            await node.stop()
        finals = [e.text for e in heard.of(TranscriptLine) if e.final]
        assert heard_by_assistant and [t for _, t in heard_by_assistant] == finals[:len(heard_by_assistant)]
        assert made == [callback], "one assistant for the call, made for a visit when it is a callback"
        offer = heard.of(AssistOffered)[0]
        assert (offer.call_id, offer.seat) == ("c3", "8003")
        assert offer.articles[0]["id"] == 7 and offer.proposals[0]["display"] == "市政局"
        flag = heard.of(LiveFlagRaised)[0]
        assert (flag.flag, flag.phrase, flag.operator, flag.type) == ("emergency", "救命", "1026", "alert")

    asyncio.run(scenario())


async def _operator_leaves(bus: InProcessBus, node: ListenNode, call: str, pcm: bytes, rate: int,
                           stay: asyncio.Event | None = None) -> asyncio.Future:
    """A call at 8001 whose citizen talks on one connection throughout (``pcm`` twice, then on the
    line in silence until ``stay`` is set) while the first operator's leg ends half-way (a transfer,
    or a hang-up before the survey): returns the citizen's stream, still going."""
    half = len(pcm) // 2 // (rate // 50 * 2) * (rate // 50 * 2)
    legs = assign_call(bus, call)
    port = node.receiver.port
    citizen = next(u for u, sp in legs.items() if sp == "citizen")
    operator = next(u for u, sp in legs.items() if sp == "operator")
    talk = asyncio.ensure_future(stream_leg("127.0.0.1", port, citizen, pcm + pcm, rate, pace=2.0, until=stay))
    await stream_leg("127.0.0.1", port, operator, b"\0" * half, rate, pace=2.0)
    return talk


def test_after_a_transfer_the_citizens_words_go_to_the_new_seat_and_its_operator_is_a_second_leg(
        engine_vosk, speech, db) -> None:
    pcm, rate = speech
    half = len(pcm) // 2 // (rate // 50 * 2) * (rate // 50 * 2)

    async def scenario() -> None:
        async with running(engine_vosk, db) as (bus, heard, node):
            talk = await _operator_leaves(bus, node, "c7", pcm, rate)  # the first operator's leg ends at the transfer
            port = node.receiver.port
            await _until(lambda: any(e.speaker == "citizen" and e.seat == "8001" for e in heard.of(TranscriptLine)))
            assert not any(e.state == "ended" for e in heard.of(LiveState)), "the citizen is still heard"
            second = {str(uuid.uuid4()): "operator"}
            bus.publish_nowait(LegsAssigned(at=time.time(), call_id="c7", seat="8002", operator="2048",
                                            node="listen-test", legs=second))
            await stream_leg("127.0.0.1", port, next(iter(second)), b"\0" * half, rate, pace=2.0)
            await talk
            await _until(lambda: any(e.state == "ended" for e in heard.of(LiveState)))
            assert len([e for e in heard.events if isinstance(e, LegsAssigned)]) == 2
            lines = [e for e in heard.of(TranscriptLine) if e.speaker == "citizen" and e.final]
            assert lines[-1].seat == "8002", "after the transfer the citizen's words reach the new seat"
            assert heard.of(LiveState)[-1].seat == "8002"
            [moved_state] = [e for e in heard.of(LiveState) if e.state == "moved"]
            assert moved_state.seat == "8001" and "8002" in moved_state.detail, "the first seat is told"
            legs = live_legs.legs_of(db, "c7")
            assert [(leg.speaker, leg.part, leg.seat) for leg in legs] == [
                ("citizen", 1, "8001"), ("operator", 1, "8001"), ("operator", 2, "8002")]
            assert all(leg.state == live_legs.COMPLETE for leg in legs)
            assert live_legs.whole_legs(db, "c7") == {}, "two operators on one recording: the file is heard again"

    asyncio.run(scenario())


def test_a_seat_that_leaves_a_call_the_citizen_stays_on_gets_no_more_of_its_words(engine_vosk, speech, db) -> None:
    """A blind transfer to a department's line (or the operator hanging up before the survey): the
    seat's leg is gone, the citizen talks on. The seat is told, its screen gets nothing more of the
    call; the words are still kept for the recording."""
    from cti.domain import SeatStateChanged

    pcm, rate = speech

    async def scenario() -> None:
        async with running(engine_vosk, db) as (bus, heard, node):
            # the citizen stays on the line until the seat is told: on a box where recognition lags, the
            # first words can come after 18 s of audio was sent (CI), and a citizen gone by then left nobody
            stay = asyncio.Event()
            talk = await _operator_leaves(bus, node, "c9", pcm, rate, stay)
            await _until(lambda: any(e.speaker == "citizen" and e.final for e in heard.of(TranscriptLine)))
            bus.publish_nowait(SeatStateChanged(at=time.time(), seat="8002", state="wrap_up", previous="on_call"))
            await asyncio.sleep(0.1)
            assert not any(e.state == "left" for e in heard.of(LiveState)), "another seat's hang-up is not this call's"
            bus.publish_nowait(SeatStateChanged(at=time.time(), seat="8001", state="wrap_up", previous="on_call"))
            await _until(lambda: any(e.state == "left" for e in heard.of(LiveState)))
            left_at = len(heard.events)
            stay.set()
            await talk
            await _until(lambda: any(e.state == "ended" for e in heard.of(LiveState)))
            [left] = [e for e in heard.of(LiveState) if e.state == "left"]
            assert left.seat == "8001" and left.call_id == "c9"
            after = [e for e in heard.events[left_at:] if isinstance(e, TranscriptLine)]
            assert after == [], "nothing of the call reaches the seat once it left"
            [kept] = [leg for leg in live_legs.legs_of(db, "c9") if leg.speaker == "citizen"]
            lines_on_bus = {e.line for e in heard.of(TranscriptLine) if e.speaker == "citizen" and e.final}
            assert len(kept.lines) > len(lines_on_bus), "the words said after it left are kept"
            assert kept.state == live_legs.COMPLETE

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", ["queue call", "callback"])
def test_a_seat_hanging_up_after_the_citizen_did_is_not_a_seat_leaving(engine_vosk, speech, db, kind: str) -> None:
    """The citizen hangs up first (CallCompleted; for a callback, 回拨 / 回访, OutboundEnded), the seat's
    leg a moment later: the call ended, the seat did not leave it; the last words still reach the
    seat, and no 已离开通话 is said."""
    from cti.domain import CallCompleted, OutboundEnded, SeatStateChanged
    from hotline.calls import FinishedCall

    pcm, rate = speech

    async def scenario() -> None:
        async with running(engine_vosk, db) as (bus, heard, node):
            talk = await _operator_leaves(bus, node, "c10", pcm, rate)
            now = time.time()
            if kind == "callback":
                bus.publish_nowait(OutboundEnded(at=now, call_id="c10", seat="8001", number="13800000001",
                                                 talk_s=30.0))
            else:
                bus.publish_nowait(CallCompleted(at=now, call_id="c10",
                                                 call=FinishedCall(call_id="c10", caller_num="13800000001",
                                                                   offered_at=now - 30, ended_at=now)))
            bus.publish_nowait(SeatStateChanged(at=now, seat="8001", state="wrap_up", previous="on_call"))
            with contextlib.suppress(ConnectionError):  # the node closes the citizen's socket (the watchdog)
                await talk
            await _until(lambda: any(e.state == "ended" for e in heard.of(LiveState)))
            assert [e.state for e in heard.of(LiveState) if e.call_id == "c10"][-1] == "ended"
            assert not any(e.state == "left" for e in heard.of(LiveState))

    asyncio.run(scenario())


def test_after_a_three_party_call_the_legs_are_kept_but_not_taken_for_the_recording(engine_vosk, speech, db) -> None:
    """三方: the department is heard on a leg of its own from when it joins (its words on the bus and
    kept, given to no assistant: the operator's proposals are from the citizen); but the recording
    places the room on the citizen's and operator's legs, which the live legs do not match, so none of
    them stands in for the recording: the file is heard again after the call. A conference of another
    call changes nothing here."""
    from cti.domain import CallConferenced
    from live.assist import Help

    pcm, rate = speech
    assisted: list[str] = []

    class Assistant:  # what the node hands the call's assistant
        def __init__(self, *, visit: bool = False) -> None:
            pass

        def hear(self, speaker: str, text: str) -> Help:
            assisted.append(speaker)
            return Help()

    async def scenario() -> None:
        async with running(engine_vosk, db, Assistant) as (bus, heard, node):
            legs = assign_call(bus, "c3")
            for call in ("other", "c3"):
                for parties in (1, 2, 3):
                    bus.publish_nowait(CallConferenced(at=time.time(), call_id=call, conference=f"conf-{call}",
                                                       channel=f"PJSIP/x-{parties}", parties=parties, seat="8001"))
            dept = str(uuid.uuid4())
            bus.publish_nowait(LegsAssigned(at=time.time(), call_id="c3", seat="8001", operator="1024",
                                            node="listen-test", legs={dept: "department"}))
            port = node.receiver.port
            await asyncio.gather(*(stream_leg("127.0.0.1", port, uid, pcm, rate, pace=2.0) for uid in [*legs, dept]))
            await _until(lambda: any(e.state == "ended" for e in heard.of(LiveState)))
            kept = live_legs.of_call(db, "c3")
            assert {sp: leg.state for sp, leg in kept.items()} == {"citizen": live_legs.PARTIAL,
                                                                   "operator": live_legs.PARTIAL,
                                                                   "department": live_legs.PARTIAL}
            assert kept["citizen"].words and kept["department"].words  # still kept, and shown
            said = [e for e in heard.of(TranscriptLine) if e.speaker == "department" and e.final]
            assert said and all(e.seat == "8001" for e in said)
            assert not any(e.state == "moved" for e in heard.of(LiveState))  # same seat: nothing moved
            assert "citizen" in assisted and "department" not in assisted
            assert not live_legs.usable(kept, ["in", "out"])  # the post-call transcription hears the file
            assert not node._conferenced  # forgotten with the call

    asyncio.run(scenario())


@pytest.mark.parametrize(("call_ends_after", "drain_s", "whole"), [
    (1.0, 0.0, True),  # the bus a moment behind Asterisk: the call's end
    (None, 0.0, False),  # no call's end: cut
    (6.5, 8.0, False),  # the call ended long after the break, while a slow recogniser still drained: cut
], ids=["call-ends", "call-goes-on", "call-ends-much-later"])
def test_a_leg_reset_as_its_call_ends_is_whole_and_one_reset_mid_call_is_cut(
        engine_vosk, speech, db, monkeypatch, call_ends_after: float | None, drain_s: float, whole: bool) -> None:
    """Asterisk closing a spy whose socket still holds our unread echo frames makes the kernel send a
    reset, not an end of file (CI, on a loaded box: a leg of a finished call saved as dropped). A
    reset followed within seconds by the call's end on the bus is the call's end: the leg is whole.
    A reset with no call's end, or one long before it, is a leg cut: the recording is heard again.
    The seconds count from the break, not from the end of the recogniser's drain (slow on a loaded
    box: here ``drain_s``)."""
    from live.legs import LegRecogniser

    pcm, rate = speech
    join = LegRecogniser.join

    def slow_join(self, timeout=None):
        time.sleep(drain_s)
        return join(self, timeout)

    monkeypatch.setattr(LegRecogniser, "join", slow_join)

    async def call_ends(bus: InProcessBus, after: float) -> None:
        await asyncio.sleep(after)
        now = time.time()
        bus.publish_nowait(CallCompleted(at=now, call_id="c11", call=FinishedCall(
            call_id="c11", caller_num="13800000001", offered_at=now - 30, ended_at=now)))

    async def scenario() -> None:
        async with running(engine_vosk, db) as (bus, heard, node):
            legs = assign_call(bus, "c11")
            port = node.receiver.port
            await asyncio.gather(*(stream_leg("127.0.0.1", port, uid, pcm if sp == "citizen" else b"\0" * len(pcm),
                                              rate, pace=2.0, reset=True) for uid, sp in legs.items()))
            ending = asyncio.ensure_future(call_ends(bus, call_ends_after)) if call_ends_after is not None else None
            await _until(lambda: any(e.state == "ended" for e in heard.of(LiveState)))
            kept = live_legs.of_call(db, "c11")
            want = live_legs.COMPLETE if whole else live_legs.DROPPED
            assert {sp: leg.state for sp, leg in kept.items()} == {"citizen": want, "operator": want}
            assert kept["citizen"].words, "the words are kept either way"
            if ending is not None:
                await ending

    asyncio.run(scenario())

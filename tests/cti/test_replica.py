"""A web node without the bridge: the centre's live state from the board, and call control through
it to the seat's bridge (cti/desk.py, cti/replica.py), against the fake AMI server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from cti import domain as d
from cti.actions import ActionFailed, NotOnCall, RuleViolation
from cti.desk import BridgeDesk, error_of
from cti.link import AmiNotSent, AmiTimeout
from cti.picture import merge
from cti.replica import CentreLive, _error
from cti.rules import Decision
from cti.service import CtiService
from hotline.board import MemoryBoard
from hotline.bus import Envelope
from tests.cti.fake_ami import FakeAmi
from tests.cti.test_link import Probe

pytestmark = pytest.mark.timeout(30)


def bridge(fake: FakeAmi, server: str = "ast1") -> CtiService:
    return CtiService(host="127.0.0.1", port=fake.port, username="hotline", secret="pw", tick_s=0.05, server=server,
                      link_options={"ping_interval": 0.3, "ping_timeout": 0.3, "backoff": (0.05, 0.2)})


async def _read_until(live: CentreLive, ready: Callable[[], bool], within_s: float = 5.0) -> None:
    """Read the board (this node does not follow it by itself here) until ``ready()``."""
    deadline = time.monotonic() + within_s
    while not ready():
        assert time.monotonic() < deadline, "the board never showed it"
        await live.refresh()
        await asyncio.sleep(0.02)


async def test_a_web_node_signs_in_on_the_bridge_and_sees_what_it_did(fake: FakeAmi, wire) -> None:
    svc, board = bridge(fake), MemoryBoard()
    desk = BridgeDesk(svc, board, owned=("8001", "8002"), every_s=60)  # one picture, once synced
    live = CentreLive(board, every_s=60, action_timeout_s=5)  # reads the board only when told here
    rosters: list[d.RosterChanged] = []
    svc.bus.add_listener(lambda env: rosters.append(env.event) if isinstance(env.event, d.RosterChanged) else None)
    await svc.start(wait=5)
    running = asyncio.create_task(desk.run())
    await live.start()
    try:
        await _read_until(live, lambda: live.health()["logged_in"])
        assert live.seats() == [] and {q["queue"] for q in live.queues()} == {"hotline", "hotline_expert"}

        async def asterisk_adds_the_member() -> None:  # as Asterisk follows a QueueAdd
            await Probe().wait(lambda: any(a.get("Action") == "QueueAdd" for a in fake.actions))
            s = wire.Script(t0=svc.clock())
            s.member("QueueMemberAdded", 0.0, "8001")
            await fake.push(s.wire(greeting=False))

        adding = asyncio.create_task(asterisk_adds_the_member())
        result = await live.actions.sign_in("8001", operator="op1024", job_number="1024")
        await adding
        assert result.action == "sign_in"
        [added] = [a for a in fake.actions if a.get("Action") == "QueueAdd"]
        assert added["Interface"] == "PJSIP/8001" and added["MemberName"] == "8001"
        # the answer carried the seat as the action left it: a page reloaded now shows it signed in,
        # though the board still holds the picture from before (nothing read it again)
        assert json.loads((await board.pictures())["ast1"])["seats"] == []
        [seat] = live.seats()
        assert seat["operator"] == "op1024" and seat["signed_in"] and seat["server"] == "ast1"
        assert live.job_number_at("8001") == "1024" and live.seat_queues("8001") == {"hotline"}
        assert live.operator_seats() == {"op1024": "8001"}  # and the hub routes the next pop by it
        # (the answer carried the roster: the sign-in changed it; this node does not follow the bus here)
        # who sits where went on the bus too, in the AMI order (a hub on another node routes by it)
        assert rosters[-1].server == "ast1" and rosters[-1].roster == {"op1024": "8001"}
        with pytest.raises(NotOnCall):  # the bridge's refusal, raised here as there
            await live.actions.transfer_to_specialist("8001")
        with pytest.raises(AmiNotSent, match="9009"):  # no bridge of the centre drives that seat
            await live.actions.ready("9009")
        assert desk.served == 2
        # a picture as new as the answer takes over from it; it says the same
        await desk.post()
        await live.refresh()
        assert [s["operator"] for s in live.seats()] == ["op1024"] and live.operator_seats() == {"op1024": "8001"}
    finally:
        await live.stop()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await svc.stop()


def _seat(seat: str, operator: str = "", *, signed_in: bool = True, state: str = "ready") -> dict[str, Any]:
    return {"seat": seat, "operator": operator, "signed_in": signed_in, "queues": ["hotline"] if signed_in else [],
            "state": state, "reason": "", "call_id": ""}


def _picture(at: float, *seats: dict[str, Any]) -> dict[str, Any]:
    return {"server": "ast1", "at": at, "owned": ["8001", "8002"], "queues": [], "seats": list(seats),
            "roster": {s["operator"]: s["seat"] for s in seats if s["signed_in"] and s["operator"]},
            "job_numbers": {}}


async def test_an_answered_seat_shows_until_a_picture_as_new_comes() -> None:
    live = CentreLive(MemoryBoard())
    live.take(_picture(100.0, _seat("8001", "op1", state="wrap_up"), _seat("8002", "op2")))
    live.patch("ast1", {"at": 100.3, "view": _seat("8001", "op1"), "job_number": "1001"})
    assert [s["state"] for s in live.seats()] == ["ready", "ready"] and live.job_number_at("8001") == "1001"
    live.take(_picture(100.2, _seat("8001", "op1", state="wrap_up"), _seat("8002", "op2", state="busy")))
    # an older picture, read late: the rest of it shows, the answered seat stays as answered
    assert [s["state"] for s in live.seats()] == ["ready", "busy"]
    live.take(_picture(100.4, _seat("8001", "op1", state="on_call"), _seat("8002", "op2")))
    assert [s["state"] for s in live.seats()] == ["on_call", "ready"]  # newer: the picture says
    live.patch("ast1", {"at": 100.35, "view": _seat("8001", "op1", state="ready")})  # late answer: older
    assert live.seats()[0]["state"] == "on_call"


def _now(at: float, view: dict[str, Any], *others: dict[str, Any], **more: Any) -> dict[str, Any]:
    """A bridge's ``seat_now`` for ``view``, its roster made of it and ``others``."""
    roster = {s["operator"]: s["seat"] for s in (view, *others) if s["signed_in"] and s["operator"]}
    return {"at": at, "view": view, "roster": roster, **more}


async def test_an_answered_sign_out_leaves_the_roster_at_once_and_a_bad_answer_changes_nothing() -> None:
    live = CentreLive(MemoryBoard())
    live.take(_picture(100.0, _seat("8001", "op1"), _seat("8002", "op2")))
    live.patch("ast1", _now(100.1, _seat("8001", "op1", signed_in=False, state="signed_out"), _seat("8002", "op2")))
    assert live.operator_seats() == {"op2": "8002"} and live.seat_queues("8001") == frozenset()
    live.patch("ast1", _now(100.2, _seat("8001", "op3"), _seat("8002", "op2")))  # someone else signs in there
    assert live.operator_seats() == {"op2": "8002", "op3": "8001"}
    shown, roster = live.seats(), live.operator_seats()
    for bad in (None, {"at": "soon", "view": _seat("8001")}, {"at": 101.0}, {"at": 101.0, "view": {"seat": "8001"}},
                {"at": float("inf"), "view": _seat("8001", "op9")},
                {"at": 101.0, "view": {**_seat("8001"), "queues": None}},
                {"at": 101.0, "view": {**_seat("8001"), "seat": 8001}},
                {"at": 101.0, "view": _seat("8001"), "roster": 3}):
        live.patch("ast1", bad)
    assert live.seats() == shown and live.operator_seats() == roster
    await live.board.post("ast2", json.dumps({**_picture(101.0), "server": "ast2", "owned": []}), 5)
    await live.refresh()  # the board holds no picture of ast1 any more: its bridge is gone
    assert live.seats() == [] and live.operator_seats() == {}  # and so is what it answered


async def test_an_answer_does_not_drop_a_sign_in_still_on_its_way_over_the_bus() -> None:
    live = CentreLive(MemoryBoard())
    live.take(_picture(100.0, _seat("8001", "op1", signed_in=False, state="signed_out"),
                       _seat("8002", "op2", signed_in=False, state="signed_out")))
    # op2 signed in at 100.1 (its RosterChanged, then its first pop, are on the bus); op1's answer
    # at 100.2 comes first, over the board: the bridge's roster then already has op2
    live.patch("ast1", _now(100.2, _seat("8001", "op1"), _seat("8002", "op2")))
    assert live.operator_seats() == {"op1": "8001", "op2": "8002"}  # op2's pop routes to op2
    live.observe(Envelope(7, d.RosterChanged(at=100.1, server="ast1", roster={"op2": "8002"})))  # late: older
    assert live.operator_seats() == {"op1": "8001", "op2": "8002"}


async def test_a_late_answer_does_not_undo_a_later_one() -> None:
    live = CentreLive(MemoryBoard())
    live.take(_picture(100.0, _seat("8001", "op1", state="wrap_up")))
    live.patch("ast1", _now(100.3, _seat("8001", "op1", state="busy")))
    live.patch("ast1", _now(100.2, _seat("8001", "op1")))  # the answer to the click before, read after
    assert live.seats()[0]["state"] == "busy"


async def test_the_roster_on_the_bus_applies_before_the_next_picture_and_never_goes_back() -> None:
    live = CentreLive(MemoryBoard())
    picture = {"server": "ast1", "at": 100.0, "roster": {"op1": "8001"}, "seats": [], "queues": [], "owned": []}
    live.take(picture)
    first = live.operator_seats()
    assert first == {"op1": "8001"}
    live.observe(Envelope(5, d.RosterChanged(at=101.0, server="ast1", roster={"op1": "8001", "op2": "8002"})))
    assert live.operator_seats() == {"op1": "8001", "op2": "8002"} and live.operator_seats() is not first
    live.take({**picture, "at": 100.5})  # an older picture, read late: the roster stays as the bus said
    assert live.operator_seats() == {"op1": "8001", "op2": "8002"}
    same = live.operator_seats()
    live.observe(Envelope(6, d.LinkStatus(at=102.0, up=True)))
    assert live.operator_seats() is same  # unchanged: the hub keeps its index
    # read from the stream, any other event is looked at by its kind and never rebuilt for this
    seat = Envelope.received(7, d.SeatStateChanged, {"type": "seat_update"}, None, rebuild=_never)
    live.observe(seat)
    assert live.operator_seats() is same and seat._event is None


def _never() -> d.SeatStateChanged:
    raise AssertionError("rebuilt an event the roster does not look at")


async def test_a_request_nobody_takes_is_taken_back_and_said_not_done() -> None:
    live = CentreLive(MemoryBoard(), action_timeout_s=0.2)
    live.take({"server": "ast1", "at": time.time(), "owned": ["8001"], "seats": [], "queues": []})
    with pytest.raises(AmiNotSent, match="未接收"):  # dialing.py: a refused dial, dialable again
        await live.actions.originate_callback("8001", "13953012345", channel_id="1.9000001")
    assert not live.health()["logged_in"]


async def test_a_request_that_comes_after_its_asker_gave_up_is_not_run(fake: FakeAmi) -> None:
    svc = bridge(fake)
    desk = BridgeDesk(svc, MemoryBoard(), owned=("8001",))
    late = {"id": "x", "action": "hangup_seat_call", "args": {"seat": "8001"}, "deadline": time.time() - 1}
    assert await desk.handle(late) is None and desk.expired == 1 and desk.served == 0
    odd = {"id": "y", "action": "link", "args": {"seat": "8001"}, "deadline": time.time() + 5}
    assert (await desk.handle(odd))["error"] == "refused"
    extra = {"id": "z", "action": "ready", "args": {"seat": "8001", "queue": "x"}, "deadline": time.time() + 5}
    assert (await desk.handle(extra))["error"] == "refused"  # only the arguments the web room sends


@pytest.mark.parametrize("exc", [
    RuleViolation("busy", Decision(False, True, "last 30 min of shift 08:00-16:00")),
    NotOnCall("seat 8001: not on a call"), AmiNotSent("not logged in"), ActionFailed("QueueAdd: no such queue"),
])
def test_the_bridges_refusals_come_back_as_the_same_exceptions(exc: Exception) -> None:
    back = _error("busy", json.loads(json.dumps(error_of(exc))))
    assert type(back) is type(exc)
    if isinstance(exc, RuleViolation):
        assert isinstance(back, RuleViolation) and back.decision == exc.decision


def test_a_failure_the_bridge_cannot_name_is_an_unknown_outcome() -> None:
    assert isinstance(_error("transfer", error_of(RuntimeError("boom"))), AmiTimeout)


def test_two_servers_claiming_a_seat_refuse_its_actions() -> None:
    live = CentreLive(MemoryBoard())
    for name in ("ast1", "ast2"):
        live.take({"server": name, "at": 1.0, "owned": ["8001"], "seats": [], "queues": []})
    with pytest.raises(ActionFailed, match="HOTLINE_SEATS"):
        live.owner("8001")
    assert merge({}).owner("8001") is None


async def test_an_answer_carries_the_seat_and_never_waits_for_a_picture(fake: FakeAmi) -> None:
    svc = bridge(fake)
    board = MemoryBoard()
    desk = BridgeDesk(svc, board, owned=("8001", "8002"), clock=lambda: 500.0)
    await svc.start(wait=5)
    try:
        svc.state.set_operator("8001", "op1", "1001")
        burst = [{"id": str(i), "action": "hangup_seat_call", "args": {"seat": "8001"}, "deadline": time.time() + 5}
                 for i in range(40)]
        answers = await asyncio.gather(*(desk.handle(r) for r in burst))
        assert all(a["error"] == "not_on_call" for a in answers)
        [seat_now] = {json.dumps(a["seat_now"], sort_keys=True) for a in answers}  # one seat, one moment
        said = json.loads(seat_now)
        assert (said["at"], said["job_number"]) == (500.0, "")
        assert "roster" not in said  # the action changed nobody's seat: the roster stays as the bus says
        assert [said["view"]] == [s for s in svc.state.seat_views(500.0) if s["seat"] == "8001"]
        assert said["view"]["operator"] == "op1" and not said["view"]["signed_in"]
        assert await board.pictures() == {}  # nothing posted for them: the next periodic picture shows it
        unknown = {"id": "u", "action": "hangup_seat_call", "args": {"seat": "8009"}, "deadline": time.time() + 5}
        assert "seat_now" not in (await desk.handle(unknown))  # a seat Asterisk never mentioned
        for odd in ({"action": "ready", "args": {}}, {"action": ["ready"], "args": {"seat": "8001"}},
                    {"action": "ready", "args": {"seat": "8001"}, "deadline": "soon"},
                    {"action": "ready", "args": ["8001"]}):  # refused: not an error that never answers
            assert (await desk.handle({"id": "v", "deadline": time.time() + 5, **odd}))["error"] == "refused"
    finally:
        await svc.stop()


async def test_a_web_node_still_reads_the_answers_of_the_bridges_before() -> None:
    board = MemoryBoard()
    live = CentreLive(board, every_s=60)
    live.take(_picture(100.0, _seat("8001", "op1", state="wrap_up")))
    posted = _picture(100.5, _seat("8001", "op1"))
    await board.post("ast1", json.dumps(posted), 5)

    async def old_bridge(answer: dict[str, Any]) -> None:
        [request] = await board.take("ast1", 2)
        await board.answer(request, answer)

    answering = asyncio.create_task(old_bridge({"result": {"action": "ready", "replies": [], "detail": "",
                                                           "call_id": "", "decision": None, "handover": None},
                                                "picture_at": 100.5}))
    assert (await live.actions.ready("8001")).action == "ready"
    await answering
    assert live.seats()[0]["state"] == "ready"  # it read the board: the picture posted after the action
    answering = asyncio.create_task(old_bridge({"error": "not_on_call", "message": "x",
                                                "picture": _picture(101.0, _seat("8001", "op1", state="busy"))}))
    with pytest.raises(NotOnCall):
        await live.actions.hangup_seat_call("8001")
    await answering
    assert live.seats()[0]["state"] == "busy"  # the picture inside the answer


async def test_answers_one_by_one_show_what_the_whole_merge_would() -> None:
    from cti.picture import patched

    live = CentreLive(MemoryBoard())
    first = {**_picture(100.0, *(_seat(f"80{i:02d}", f"op{i}", state="wrap_up") for i in range(1, 9))),
             "job_numbers": {"8001": "1001", "8002": "1002"}}
    live.take(first)
    answers = [("8002", "ready", "90"), ("8099", "ready", ""), ("8005", "busy", "92"), ("8002", "on_call", ""),
               ("8099", "busy", "94"), ("8001", "ready", "")]  # 8099: a seat no picture shows yet, midway
    for k, (seat, state, job) in enumerate(answers):
        live.patch("ast1", {"at": 100.1 + k / 100, "view": _seat(seat, "opx", state=state), "job_number": job})
        whole = patched(merge({"ast1": first}), live._patches)  # what a rebuild of everything shows
        assert live.seats() == whole.seats and live._centre.job_numbers == whole.job_numbers, (k, seat)
        assert live._seat_queues == {s["seat"]: frozenset(s["queues"]) for s in whole.seats}
        assert live._index == {s["seat"]: i for i, s in enumerate(whole.seats)}
    assert [s["state"] for s in live.seats() if s["seat"] in ("8002", "8005", "8099")] == ["on_call", "busy", "busy"]
    assert live.job_number_at("8002") == "" and live.job_number_at("8005") == "92"


async def test_a_seat_two_pictures_show_is_answered_by_the_whole_rebuild() -> None:
    from cti.picture import patched

    live = CentreLive(MemoryBoard())
    moved = {"ast1": _picture(100.0, _seat("8001", "op1", state="busy")),  # the seat moved to ast2's HOTLINE_SEATS
             "ast2": {**_picture(100.0, _seat("8001", "op1", state="wrap_up")), "server": "ast2"}}
    for p in moved.values():
        live.take(p)
    live.patch("ast2", {"at": 100.2, "view": _seat("8001", "op1")})
    assert live.seats() == patched(merge(moved), live._patches).seats and len(live.seats()) == 1


async def test_an_answer_the_views_cannot_show_is_undone_and_said() -> None:
    live = CentreLive(MemoryBoard())
    live.take(_picture(100.0, _seat("8001", "op1", state="wrap_up")))
    live.patch("ast1", {"at": 100.1, "view": _seat("8001", "op1", state="busy")})
    shown, patches = live.seats(), dict(live._patches)
    with pytest.raises(TypeError):  # a queue that is a list: it passed the checks, not the views
        live.patch("ast1", {"at": 100.2, "view": {**_seat("8001", "op1"), "queues": [["hotline"]]}})
    assert live.seats() == shown and live._patches == patches and live._index == {"8001": 0}

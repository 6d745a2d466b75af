"""A web node without the bridge: the centre's live state from the board, and call control through
it to the seat's bridge (cti/desk.py, cti/replica.py), against the fake AMI server."""

from __future__ import annotations

import asyncio
import json
import time

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


async def test_a_web_node_signs_in_on_the_bridge_and_sees_what_it_did(fake: FakeAmi, wire) -> None:
    svc, board = bridge(fake), MemoryBoard()
    desk = BridgeDesk(svc, board, owned=("8001", "8002"), every_s=0.05)
    live = CentreLive(board, every_s=0.05, action_timeout_s=5)
    rosters: list[d.RosterChanged] = []
    svc.bus.add_listener(lambda env: rosters.append(env.event) if isinstance(env.event, d.RosterChanged) else None)
    await svc.start(wait=5)
    running = asyncio.create_task(desk.run())
    await live.start()
    try:
        await Probe().wait(lambda: live.health()["logged_in"])
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
        # the answer carried the picture after the action: a page reloaded now shows the seat signed in
        [seat] = live.seats()
        assert seat["operator"] == "op1024" and seat["signed_in"] and seat["server"] == "ast1"
        assert live.job_number_at("8001") == "1024" and live.seat_queues("8001") == {"hotline"}
        # who sits where went on the bus too, in the AMI order (a hub on another node routes by it)
        assert rosters[-1].server == "ast1" and rosters[-1].roster == {"op1024": "8001"}
        with pytest.raises(NotOnCall):  # the bridge's refusal, raised here as there
            await live.actions.transfer_to_specialist("8001")
        with pytest.raises(AmiNotSent, match="9009"):  # no bridge of the centre drives that seat
            await live.actions.ready("9009")
        assert desk.served == 2
    finally:
        await live.stop()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await svc.stop()


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


async def test_a_burst_of_requests_is_answered_with_one_picture_not_one_each(fake: FakeAmi) -> None:
    svc = bridge(fake)
    board = MemoryBoard()
    desk = BridgeDesk(svc, board, owned=("8001", "8002"))
    await svc.start(wait=5)
    try:
        burst = [{"id": str(i), "action": "hangup_seat_call", "args": {"seat": "8001"}, "deadline": time.time() + 5}
                 for i in range(40)]
        answers = await asyncio.gather(*(desk.handle(r) for r in burst))
        assert all(a["error"] == "not_on_call" for a in answers)
        # every answer names the picture posted after it; one picture served the whole burst
        assert {a["picture_at"] for a in answers} == {json.loads((await board.pictures())["ast1"])["at"]}
        assert desk.fresh.runs == 1
    finally:
        await svc.stop()

"""The lead's alerts when the web node on duty dies (issue #15): the node that takes the duty over
raises what the dead one heard and never published, and logs the acknowledgements sent to it that
it never logged; nothing the dead node did publish is raised twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent_ui.alerts import AlertEngine, AlertRules
from agent_ui.db import migrate
from agent_ui.lead import LeadConfig, LeadRuntime, LeadStore
from hotline.bus import InProcessBus
from hotline.db import make_engine
from tests.support import migrated


def breach(call: str, at: float) -> dict:
    return {"event": "AnswerRuleBreached", "call_id": call, "queue": "hotline", "caller_num": "13800000001",
            "waited_ms": 16_000, "rule_s": 15, "seats_rung": ["8001"], "ringing_seat": "", "at": at}


def test_catching_up_raises_only_the_episodes_the_node_on_duty_never_published() -> None:
    duty, follower = AlertEngine(AlertRules()), AlertEngine(AlertRules())
    [published] = duty.feed(breach("1.1", 10.0))
    [ticket] = duty.emergency(7, "SD20261204-0007", "燃气泄漏", 11.0)
    follower.adopt(published.view())
    follower.adopt(ticket.view())
    duty.ack(published.id, "lead1", 12.0)
    follower.adopt(published.view())  # acknowledged: its key is free for a new episode, not for a replay
    said = {"event": "LiveFlagRaised", "call_id": "1.3", "seat": "8002", "flag": "emergency", "phrase": "着火",
            "speaker": "citizen", "text": "着火了", "at": 13.0}
    seat = {"event": "SeatStateChanged", "seat": "8001", "state": "busy", "at": 0.0}
    caught = follower.catch_up([breach("1.1", 10.0), breach("1.2", 14.0), said, seat])
    assert [(a.kind, a.call_id) for a in caught] == [("answer_rule", "1.2"), ("live_emergency", "1.3")]
    assert min(a.id for a in caught) > max(published.id, ticket.id)  # above the adopted ones
    assert follower.emergency(7, "SD20261204-0007", "燃气泄漏", 20.0) == []  # the poll does not re-raise it
    assert follower._seats.get("8001") is None  # seat states come from the seats as they are, not a replay
    assert follower.catch_up([breach("1.2", 14.0)]) == []  # raised once
    assert [a.call_id for a in follower.feed(breach("1.1", 30.0))] == ["1.1"]  # live, a new episode is an alert


def test_a_follower_taking_the_duty_over_raises_and_logs_what_the_dead_node_did_not(tmp_path: Path) -> None:
    engine = make_engine(migrated.sqlite_url(tmp_path / "ui.db", migrate))
    store = LeadStore(engine)

    async def scenario() -> tuple[list[dict], list[dict]]:
        bus = InProcessBus()
        out: list[dict] = []
        bus.add_listener(lambda env: out.append(env.message()) if env.message().get("type") == "lead_alert" else None)
        follower = LeadRuntime(LeadConfig(), store, bus, None, None, None)  # type: ignore[arg-type]
        follower.take_duty(False)
        task = asyncio.create_task(follower._listen())
        await asyncio.sleep(0)
        from agent_ui.lead.runtime import LeadAlert
        from cti.domain import AnswerRuleBreached

        # the node on duty published the first call's alert; a lead acknowledged it on the follower,
        # and the node on duty died before it logged that, and before it acted on the second call
        dead = AlertEngine(AlertRules())
        [first] = dead.feed(breach("2.1", 100.0))
        bus.publish_nowait(LeadAlert(at=100.0, alert=first.view()))
        for call, at in (("2.1", 100.0), ("2.2", 104.0)):
            bus.publish_nowait(AnswerRuleBreached(at=at, call_id=call, queue="hotline", caller_num="13800000001",
                                                  waited_ms=16_000, rule_s=15, seats_rung=("8001",)))
        await asyncio.sleep(0.05)
        await follower.ack(first.id, "lead1")
        out.clear()
        follower.take_duty(True)  # its lease: the dead node's lapsed
        for _ in range(100):
            if store.ack_log():
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await follower.stop()
        return out, store.ack_log()

    published, acks = asyncio.run(scenario())
    alerts = [m["alert"] for m in published]
    assert [(a["call_id"], a["acked_by"]) for a in alerts] == [("2.2", ""), ("2.1", "lead1")]
    assert [(a["kind"], a["acked_by"]) for a in acks] == [("answer_rule", "lead1")]
    engine.dispose()

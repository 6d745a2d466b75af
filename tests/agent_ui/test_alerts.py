"""The lead's alert rules (agent_ui/alerts.py) with an injected clock, and the wallboard's 24 h
rolling figures (the bridge's state, read the way the lead's board reads it) across midnight."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from agent_ui.alerts import AlertEngine, AlertRules
from cti.state import CtiState
from hotline.calls import FinishedCall

BEIJING = ZoneInfo("Asia/Shanghai")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING).timestamp()


def record(n: int, offered: float, answered: bool, wait_s: float) -> FinishedCall:
    return FinishedCall(call_id=f"c{n}", caller_num="13953012345", queue="hotline", seats_rung=("8001",),
                        seat="8001" if answered else "", offered_at=offered,
                        answered_at=offered + wait_s if answered else None, ended_at=offered + wait_s + 60,
                        wait_ms=int(wait_s * 1000), within_rule=answered and wait_s <= 15,
                        talk_s=60.0 if answered else 0, abandoned=not answered)


def test_the_24h_figures_roll_across_midnight_while_today_starts_again() -> None:
    clock = [at("2026-11-22T23:59:00")]
    state = CtiState(clock=lambda: clock[0], tz="Asia/Shanghai")
    engine = AlertEngine(AlertRules(completion_target=95.0, completion_min_offered=5))
    # yesterday 08:00 – 23:00: 19 answered (18 within 15 s), 1 abandoned at 09:00
    calls = [record(i, at(f"2026-11-22T{8 + i % 15:02d}:{i:02d}:00"), True, 20 if i == 3 else 5) for i in range(19)]
    calls.append(record(99, at("2026-11-22T09:30:00"), False, 40))
    state.seed_history(calls)

    [q] = state.queue_views(queues=["hotline"])
    assert (q["answered"], q["abandoned"]) == (19, 1)
    assert q["completion_24h"] == 95.0 and q["pct_within_rule_24h"] == round(100 * 18 / 19, 2)
    assert engine.check(clock[0], [q]) == []  # 95.0 % is on target, not under

    # 00:01: "today" is empty, the 24 h window still holds all twenty
    clock[0] = at("2026-11-23T00:01:00")
    state.seed_history([record(100, clock[0] - 30, False, 25)])  # one abandoned just after midnight
    [q] = state.queue_views(queues=["hotline"])
    assert (q["answered"], q["abandoned"], q["pct_within_rule_today"]) == (0, 1, None)
    assert q["completion_24h"] == round(100 * 19 / 21, 2) and q["abandoned_24h"] == 2
    [alert] = engine.check(clock[0], [q])
    assert alert.kind == "completion" and "90.5 %" in alert.detail
    assert engine.check(clock[0] + 1, [q]) == []  # once per dip

    # 09:31 the next day: yesterday's 08:xx – 09:30 calls have left the 24 h window, the abandon with them
    clock[0] = at("2026-11-23T09:31:00")
    [q] = state.queue_views(queues=["hotline"])
    in_window = [c for c in calls if c.offered_at >= clock[0] - 86400]
    assert q["abandoned_24h"] == 1  # only the one after midnight
    assert q["completion_24h"] == round(100 * len(in_window) / (len(in_window) + 1), 2)
    engine.ack(alert.id, "lead", clock[0])
    # still under target (the window is now smaller): acknowledged, so a new dip needs a recovery first
    assert engine.check(clock[0], [q]) == []
    assert engine.check(clock[0], [q | {"completion_24h": 96.0}]) == []  # recovered: re-armed
    assert [a.kind for a in engine.check(clock[0] + 5, [q])] == ["completion"]


def test_seat_rules_busy_too_long_and_ringing_without_answer() -> None:
    engine = AlertEngine(AlertRules(busy_limit_s=300, ring_limit_s=10))
    engine.feed({"event": "SeatStateChanged", "seat": "8001", "state": "busy", "reason": "就餐", "at": 1000.0})
    engine.feed({"event": "SeatStateChanged", "seat": "8002", "state": "ringing", "at": 1000.0})
    assert [a.kind for a in engine.check(1009.0)] == []
    [ring] = engine.check(1010.0)
    assert ring.kind == "no_answer" and ring.subject_seat == "8002"
    assert engine.check(1299.0) == []
    [busy] = engine.check(1300.0)
    assert busy.kind == "busy_long" and "就餐" in busy.detail and "5:00" in busy.detail
    # back to ready, then busy again: a new spell, a new alert once it is long again
    engine.feed({"event": "SeatStateChanged", "seat": "8001", "state": "ready", "at": 1400.0})
    engine.feed({"event": "SeatStateChanged", "seat": "8001", "state": "busy", "reason": "", "at": 1500.0})
    assert engine.check(1700.0) == []
    assert [a.kind for a in engine.check(1800.0)] == ["busy_long"]


def test_bridge_alerts_are_raised_once_and_acknowledged() -> None:
    engine = AlertEngine(AlertRules(ring_limit_s=10))
    breach = {"event": "AnswerRuleBreached", "call_id": "c1", "queue": "hotline", "caller_num": "13953012345",
              "waited_ms": 15200, "seats_rung": ["8003"], "ringing_seat": "8003", "at": 50.0}
    [a] = engine.feed(breach)
    assert a.kind == "answer_rule" and "8003" in a.detail and a.subject_seat == "8003"
    assert engine.feed(breach) == []  # the same call alerts once
    # a phone that refused at once is not a seat letting calls ring; one that rang out is
    assert engine.feed({"event": "SeatRingNoAnswer", "seat": "8001", "call_id": "c2", "ring_ms": 300, "at": 51}) == []
    [rna] = engine.feed({"event": "SeatRingNoAnswer", "seat": "8003", "call_id": "c1", "ring_ms": 15000, "at": 65})
    assert rna.kind == "no_answer"
    [gap] = engine.feed({"event": "HandoverMeasured", "from_seat": "8001", "to_seat": "8002", "gap_s": 42.0,
                         "ok": False, "at": 70.0})
    assert gap.kind == "handover" and "42" in gap.detail
    assert engine.feed({"event": "HandoverMeasured", "from_seat": "8001", "to_seat": "8002", "gap_s": 12.0,
                        "ok": True, "at": 80.0}) == []
    [emergency] = engine.emergency(7, "2026112300007", "燃气泄漏", 90.0)
    assert engine.emergency(7, "2026112300007", "燃气泄漏", 95.0) == []
    assert emergency.title == "重大紧急工单"
    listing = engine.listing()
    assert [x["id"] for x in listing] == [emergency.id, gap.id, rna.id, a.id]
    engine.ack(a.id, "lead", 100.0)
    assert [x["id"] for x in engine.listing()][-1] == a.id and engine.listing()[-1]["acked_by"] == "lead"
    assert engine.feed(breach | {"at": 120.0}) != []  # acknowledged: the key is free again


def test_a_signed_in_seat_whose_phone_is_gone_alerts_once_until_acknowledged() -> None:
    engine = AlertEngine(AlertRules())
    gone = {"event": "SeatPhoneChanged", "seat": "8009", "reachable": False, "operator": "op1024", "signed_in": True,
            "at": 10.0}
    [a] = engine.feed(gone)
    assert a.kind == "phone_offline" and a.subject_seat == "8009" and "op1024" in a.detail and "未注册" in a.detail
    assert engine.feed(gone | {"reachable": True, "at": 12.0}) == []  # back
    assert engine.feed(gone | {"at": 14.0}) == []  # flapping: still the one open alert
    assert engine.feed(gone | {"seat": "8010", "signed_in": False}) == []  # nobody expects calls there
    engine.ack(a.id, "lead", 20.0)
    assert [x.kind for x in engine.feed(gone | {"at": 30.0})] == ["phone_offline"]


def test_words_said_on_a_live_call_raise_one_alert_each_for_the_leads() -> None:
    eng = AlertEngine(AlertRules())
    said = {"event": "LiveFlagRaised", "type": "alert", "kind": "live_qa", "call_id": "1.5", "seat": "8001",
            "operator": "1024", "flag": "emergency", "phrase": "着火", "speaker": "citizen", "text": "楼道里着火了",
            "at": 10.0}
    [alert] = eng.feed(said)
    assert (alert.kind, alert.call_id, alert.subject_seat) == ("live_emergency", "1.5", "8001")
    assert "着火" in alert.detail and alert.view()["label"] == "来电人提及紧急情况"
    assert eng.feed(said) == []  # once per call and phrase
    [rude] = eng.feed(said | {"flag": "forbidden", "phrase": "我不知道", "speaker": "operator", "text": "我不知道"})
    assert rude.kind == "live_forbidden" and "话务员1024" in rude.detail


def test_the_lead_runtime_goes_on_after_falling_behind_the_bus() -> None:
    # a burst (a centre's live transcripts) can outrun the lead runtime's queue: it used to end the
    # task with BusLagged, and no alert was raised again until the node restarted
    import asyncio

    from agent_ui.lead import LeadConfig, LeadRuntime
    from hotline.bus import InProcessBus

    async def scenario() -> list[str]:
        bus = InProcessBus()
        raised: list[str] = []
        bus.add_listener(lambda env: raised.append(env.message().get("alert", {}).get("kind", "")))
        runtime = LeadRuntime(LeadConfig(), None, bus, None, None, None)  # type: ignore[arg-type]
        runtime.take_duty(True)
        task = asyncio.create_task(runtime._listen())
        await asyncio.sleep(0)
        said = {"flag": "emergency", "phrase": "着火", "speaker": "citizen", "text": "着火了", "seat": "8001"}
        from hotline.listening import LiveFlagRaised, TranscriptLine

        for n in range(25_000):  # more than its queue holds, before it reads one
            bus.publish_nowait(TranscriptLine(at=1.0, call_id="1.1", seat="8001", speaker="citizen", line=n,
                                              text="…", final=False))
        await asyncio.sleep(0.01)
        bus.publish_nowait(LiveFlagRaised(at=2.0, call_id="1.2", **said))
        for _ in range(100):
            if "live_emergency" in raised or task.done():
                break
            await asyncio.sleep(0.05)
        assert not task.done(), task
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return raised

    assert "live_emergency" in asyncio.run(scenario())

"""One bridge's live picture and the centre's merge of several (cti/picture.py)."""

from __future__ import annotations

import json

import pytest

from cti import events as ev
from cti.picture import merge, picture, roster_of, unnamed
from cti.state import CtiState
from cti.stats import Outcome

NOW = 1_795_400_000.0


def state_with(seat: str, operator: str, answered: list[tuple[int, bool]]) -> CtiState:
    """A bridge's state: ``seat`` signed in to the hotline queue, and calls offered in the last
    hour (wait ms, answered?)."""
    s = CtiState(clock=lambda: NOW)
    s.handle(ev.QueueMemberAdded(ts=NOW - 7200, queue="hotline", member_name=seat, interface=f"PJSIP/{seat}"))
    s.set_operator(seat, operator, f"J{seat}")
    stats = s._stats("hotline")
    for i, (wait_ms, ok) in enumerate(answered):
        stats.add(Outcome(offered_at=NOW - 3600 + i, answered=ok, wait_ms=wait_ms))
    return s


def snap(state: CtiState, server: str, owned: tuple[str, ...]) -> dict:
    p = picture(state, server=server, queues=("hotline", "hotline_expert"), owned=owned, now=NOW, logged_in=True,
                leader={"term": 3})
    return json.loads(json.dumps(p))  # as a web node reads it off the board


def test_a_picture_is_the_bridges_own_views() -> None:
    s = state_with("8001", "op1024", [(3000, True), (20000, True), (40000, False)])
    p = snap(s, "ast1", ("8001", "8002"))
    assert p["seats"] == json.loads(json.dumps(s.seat_views(NOW)))
    assert p["queues"] == json.loads(json.dumps(s.queue_views(NOW, queues=("hotline", "hotline_expert"))))
    assert p["roster"] == {"op1024": "8001"} and p["job_numbers"] == {"8001": "J8001"}
    assert p["counts"]["hotline"]["answered_24h"] == 2 and p["counts"]["hotline"]["within_rule_24h"] == 1


def test_a_queue_two_servers_serve_is_one_queue_with_figures_from_the_summed_counts() -> None:
    one = snap(state_with("8001", "op1", [(3000, True)] * 9 + [(20000, True)]), "ast1", ("8001",))
    two = snap(state_with("9001", "op2", [(20000, True)] * 10 + [(60000, False)] * 10), "ast2", ("9001",))
    centre = merge({"ast2": two, "ast1": one})
    [hotline] = [q for q in centre.queues if q["queue"] == "hotline"]
    assert hotline["seats_ready"] == 2
    # 9 of 20 answered within the rule: 45 %, not the mean of 90 % and 0 %
    assert hotline["pct_within_rule_24h"] == 45.0
    assert hotline["completion_24h"] == round(100 * 20 / 30, 2)
    assert hotline["abandoned_24h"] == 10 and len(hotline["abandoned_waits_ms_24h"]) == 10
    assert [s["seat"] for s in centre.seats] == ["8001", "9001"]
    assert [s["server"] for s in centre.seats] == ["ast1", "ast2"]
    assert centre.owner("9001") == "ast2" and centre.owner("7001") is None
    assert roster_of({"ast1": one, "ast2": two}) == {"op1": "8001", "op2": "9001"}
    assert centre.servers["ast1"]["leader"] == {"term": 3}


def test_a_seat_two_servers_claim_is_refused_by_name() -> None:
    s = state_with("8001", "op1", [])
    centre = merge({"ast1": snap(s, "ast1", ("8001",)), "ast2": snap(s, "ast2", ("8001",))})
    with pytest.raises(ValueError, match="HOTLINE_SEATS"):
        centre.owner("8001")


def test_no_picture_no_views() -> None:
    centre = merge({})
    assert centre.queues == centre.seats == centre.calls == [] and centre.owner("8001") is None


def test_servers_of_one_centre_without_names_of_their_own_are_named_as_losing_calls() -> None:
    s = state_with("8001", "op1", [])

    def named(server: str, name: str) -> dict:
        return {**snap(s, server, ()), "system_name": name}

    assert unnamed(merge({"ast1": named("ast1", "")})) == []  # one server: its own ids are unique
    assert unnamed(merge({"ast1": named("ast1", ""), "ast2": named("ast2", "b")})) == ["ast1"]
    assert unnamed(merge({"ast1": named("ast1", "a"), "ast2": named("ast2", "a")})) == ["ast1", "ast2"]
    assert unnamed(merge({"ast1": named("ast1", "a"), "ast2": named("ast2", "b")})) == []

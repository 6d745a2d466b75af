"""The transition table, move by move: every legal move lands where it should, every other refuses."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ticketing.calendar import TZ
from ticketing.models import HandlingMode, Status
from ticketing.workflow import HANDLING, LIVE, TABLE, TransitionError, allowed_actions, decide

NOW = datetime(2026, 11, 16, 10, 0, tzinfo=TZ)
PARAMS = {
    "result": "已答复",
    "duplicate_of": 7,
    "department_id": 1,
    "opinion": "请办理",
    "reason": "理由",
    "days": 5,
    "satisfaction": "满意",
    "note": "已安排人员现场查看",
    "assignee": "dept1a",
}
EXPECTED = (
    {("register", S): Status.REGISTERED for S in [Status.DRAFT]}
    | {
        ("close_directly", Status.REGISTERED): Status.CLOSED,
        ("merge", Status.DRAFT): Status.CLOSED,
        ("merge", Status.REGISTERED): Status.CLOSED,
        ("transfer", Status.REGISTERED): Status.TRANSFERRED,
        ("transfer", Status.RETURNED): Status.TRANSFERRED,
        ("accept", Status.TRANSFERRED): Status.ACCEPTED,
        ("return", Status.TRANSFERRED): Status.RETURNED,
        ("start", Status.ACCEPTED): Status.IN_PROGRESS,
        ("request_extension", Status.ACCEPTED): Status.EXTENSION_REQUESTED,
        ("request_extension", Status.IN_PROGRESS): Status.EXTENSION_REQUESTED,
        ("approve_extension", Status.EXTENSION_REQUESTED): Status.IN_PROGRESS,
        ("refuse_extension", Status.EXTENSION_REQUESTED): Status.IN_PROGRESS,
        ("reply", Status.ACCEPTED): Status.REPLIED,
        ("reply", Status.IN_PROGRESS): Status.REPLIED,
        ("callback", Status.REPLIED): Status.SATISFIED,
        ("redo", Status.UNSATISFIED): Status.IN_PROGRESS,
        ("close", Status.SATISFIED): Status.CLOSED,
        ("close", Status.UNSATISFIED): Status.CLOSED,
        ("archive", Status.CLOSED): Status.ARCHIVED,
    }
    | {("supervise", s): s for s in LIVE}
    # a department's notes change no status: progress while handling, its handler, supervision answers
    | {("progress", s): s for s in HANDLING - {Status.TRANSFERRED}}
    | {("assign", s): s for s in HANDLING}
    | {("answer_supervision", s): s for s in LIVE}
)


def _role(action: str) -> str:
    return sorted(TABLE[action].roles)[-1]  # lead before operator, alphabetically last is fine


def _mode(action: str) -> str:
    return HandlingMode.DIRECT if action == "close_directly" else HandlingMode.TRANSFER


def test_the_expectations_cover_exactly_the_table():
    table_moves = {(a, s) for a, t in TABLE.items() for s in t.sources}
    assert table_moves == set(EXPECTED)


@pytest.mark.parametrize(("action", "source"), sorted(EXPECTED, key=str))
def test_every_legal_move(action, source):
    role = "lead" if "lead" in TABLE[action].roles else _role(action)
    got = decide(
        source,
        action,
        role,
        PARAMS,
        now=NOW,
        transferred_at=NOW - timedelta(hours=1),
        handling_mode=_mode(action),
    )
    assert got is EXPECTED[(action, source)]


ILLEGAL = [(a, s) for a in TABLE for s in Status if (a, s) not in EXPECTED]


@pytest.mark.parametrize(("action", "source"), ILLEGAL)
def test_every_illegal_move_is_refused_with_the_current_state(action, source):
    with pytest.raises(TransitionError) as e:
        decide(source, action, "admin", PARAMS, now=NOW, handling_mode=_mode(action))
    assert source.label in e.value.reason
    assert TABLE[action].label in e.value.reason


def test_there_are_many_illegal_moves():
    assert len(ILLEGAL) > 100  # 16 actions × 12 states minus the legal ones


@pytest.mark.parametrize("action", sorted(TABLE))
def test_roles_outside_the_table_are_refused(action):
    t = TABLE[action]
    outsiders = {"operator", "lead", "qa", "department"} - set(t.roles)
    source = sorted(t.sources, key=list(Status).index)[0]
    for role in outsiders:
        with pytest.raises(TransitionError, match="无权"):
            decide(source, action, role, PARAMS, now=NOW, handling_mode=_mode(action))


def test_department_cannot_transfer_and_operator_cannot_accept():
    with pytest.raises(TransitionError, match="无权执行“转办”"):
        decide(Status.REGISTERED, "transfer", "department", PARAMS, now=NOW)
    with pytest.raises(TransitionError, match="无权执行“签收”"):
        decide(Status.TRANSFERRED, "accept", "operator", {}, now=NOW)


@pytest.mark.parametrize(
    ("action", "source", "missing"),
    [
        ("transfer", Status.REGISTERED, "承办单位"),
        ("transfer", Status.REGISTERED, "转办意见"),
        ("return", Status.TRANSFERRED, "原因"),
        ("reply", Status.IN_PROGRESS, "办理结果"),
        ("callback", Status.REPLIED, "满意度"),
        ("request_extension", Status.IN_PROGRESS, "延期天数"),
        ("supervise", Status.IN_PROGRESS, "原因"),
        ("merge", Status.REGISTERED, "重复的原工单"),
    ],
)
def test_required_parameters(action, source, missing):
    role = "lead" if "lead" in TABLE[action].roles else _role(action)
    with pytest.raises(TransitionError, match=missing):
        decide(source, action, role, {"opinion": "  "} if action == "transfer" else {}, now=NOW)


def test_unknown_action():
    with pytest.raises(TransitionError, match="未知操作"):
        decide(Status.REGISTERED, "delete", "admin", {}, now=NOW)


def test_return_only_within_24_hours_of_transfer():
    ok = decide(
        Status.TRANSFERRED,
        "return",
        "department",
        {"reason": "非本单位职责"},
        now=NOW,
        transferred_at=NOW - timedelta(hours=23, minutes=59),
    )
    assert ok is Status.RETURNED
    with pytest.raises(TransitionError, match="24小时"):
        decide(
            Status.TRANSFERRED,
            "return",
            "department",
            {"reason": "非本单位职责"},
            now=NOW,
            transferred_at=NOW - timedelta(hours=24, minutes=1),
        )


@pytest.mark.parametrize("days", [0, 31, "5", True, None])
def test_extension_days_must_be_a_sensible_integer(days):
    with pytest.raises(TransitionError):
        decide(Status.IN_PROGRESS, "request_extension", "department", {"reason": "协调", "days": days}, now=NOW)


def test_callback_unsatisfied_goes_to_unsatisfied_and_bad_values_refused():
    assert decide(Status.REPLIED, "callback", "operator", {"satisfaction": "不满意"}, now=NOW) is Status.UNSATISFIED
    assert decide(Status.REPLIED, "callback", "operator", {"satisfaction": "非常满意"}, now=NOW) is Status.SATISFIED
    with pytest.raises(TransitionError, match="满意度须为"):
        decide(Status.REPLIED, "callback", "operator", {"satisfaction": "还行"}, now=NOW)


def test_closing_an_unsatisfied_ticket_needs_the_lead_and_a_reason():
    with pytest.raises(TransitionError, match="值班长"):
        decide(Status.UNSATISFIED, "close", "operator", {"reason": "诉求不合理"}, now=NOW)
    with pytest.raises(TransitionError, match="原因"):
        decide(Status.UNSATISFIED, "close", "lead", {}, now=NOW)
    assert decide(Status.UNSATISFIED, "close", "lead", {"reason": "诉求超出政策"}, now=NOW) is Status.CLOSED


def test_direct_handling_closes_on_the_spot_and_is_never_transferred():
    with pytest.raises(TransitionError, match="直接办理"):
        decide(
            Status.REGISTERED,
            "close_directly",
            "operator",
            PARAMS,
            now=NOW,
            handling_mode=HandlingMode.TRANSFER,
        )
    with pytest.raises(TransitionError, match="不转办"):
        decide(Status.REGISTERED, "transfer", "operator", PARAMS, now=NOW, handling_mode=HandlingMode.DIRECT)


def test_allowed_actions_follow_the_table():
    assert allowed_actions(Status.TRANSFERRED, "department") == ["accept", "return", "assign", "answer_supervision"]
    assert "supervise" in allowed_actions(Status.IN_PROGRESS, "lead")
    assert allowed_actions(Status.ARCHIVED, "operator") == []
    assert "supervise" not in allowed_actions(Status.CLOSED, "admin")

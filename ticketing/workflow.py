"""The ticket workflow as a pure transition table (no I/O, the clock is a parameter).

draft → registered → transferred → accepted | returned → in_progress ⇄ extension_requested →
replied → (callback) satisfied | unsatisfied → closed → archived; unsatisfied → redo →
in_progress (a callback that finds the citizen unsatisfied sends the ticket back at once, see
``ticketing.steps``); returned → transferred again; 直接办理 closes at registration. ``supervise``
(督办) is open on every live ticket and changes no status; neither do a department's progress
notes (办理进展), its answers to supervision and its lead's choice of handler (分派), which
co-handling departments may record too (``CO_HANDLER``) except the choice of handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ticketing.models import HandlingMode, Satisfaction, Status

S = Status
LIVE = frozenset(Status) - {S.DRAFT, S.CLOSED, S.ARCHIVED}
CENTRE = frozenset({"operator", "lead"})
LEAD = frozenset({"lead"})
DEPT = frozenset({"department"})
HANDLING = frozenset({S.TRANSFERRED, S.ACCEPTED, S.IN_PROGRESS, S.EXTENSION_REQUESTED})
CO_HANDLER = frozenset({"progress", "answer_supervision"})  # what a co-handling (协办) department may do


class TransitionError(Exception):
    """A refused move; ``reason`` is shown to the user as is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Transition:
    action: str
    label: str
    sources: frozenset[Status]
    target: Status | None  # None: status unchanged (supervise) or decided by params (callback)
    roles: frozenset[str]
    needs: tuple[str, ...] = ()  # parameters that must be present and non-empty


def _t(
    action: str,
    label: str,
    sources: set[Status] | frozenset[Status],
    target: Status | None,
    roles: frozenset[str],
    *needs: str,
) -> Transition:
    return Transition(action, label, frozenset(sources), target, roles, needs)


TABLE: dict[str, Transition] = {
    t.action: t
    for t in (
        _t("register", "登记", {S.DRAFT}, S.REGISTERED, CENTRE),
        _t("close_directly", "直接办结", {S.REGISTERED}, S.CLOSED, CENTRE, "result"),
        _t("merge", "合并为重复件", {S.DRAFT, S.REGISTERED}, S.CLOSED, CENTRE, "duplicate_of"),
        _t("transfer", "转办", {S.REGISTERED, S.RETURNED}, S.TRANSFERRED, CENTRE, "department_id", "opinion"),
        _t("accept", "签收", {S.TRANSFERRED}, S.ACCEPTED, DEPT),
        _t("return", "退回", {S.TRANSFERRED}, S.RETURNED, DEPT, "reason"),
        _t("start", "开始办理", {S.ACCEPTED}, S.IN_PROGRESS, DEPT),
        _t(
            "request_extension",
            "申请延期",
            {S.ACCEPTED, S.IN_PROGRESS},
            S.EXTENSION_REQUESTED,
            DEPT,
            "reason",
            "days",
        ),
        _t("approve_extension", "批准延期", {S.EXTENSION_REQUESTED}, S.IN_PROGRESS, LEAD),
        _t("refuse_extension", "驳回延期", {S.EXTENSION_REQUESTED}, S.IN_PROGRESS, LEAD, "reason"),
        _t("reply", "答复办结", {S.ACCEPTED, S.IN_PROGRESS}, S.REPLIED, DEPT, "result"),
        _t("callback", "回访", {S.REPLIED}, None, CENTRE, "satisfaction"),
        _t("redo", "重办", {S.UNSATISFIED}, S.IN_PROGRESS, CENTRE),
        _t("close", "办结", {S.SATISFIED, S.UNSATISFIED}, S.CLOSED, CENTRE),
        _t("archive", "归档", {S.CLOSED}, S.ARCHIVED, CENTRE),
        _t("supervise", "督办", LIVE, None, frozenset({"lead", "qa"}), "reason"),
        _t("progress", "办理进展", HANDLING - {S.TRANSFERRED}, None, DEPT, "note"),
        _t("assign", "分派", HANDLING, None, DEPT, "assignee"),
        _t("answer_supervision", "回复督办", LIVE, None, DEPT, "note"),
    )
}

NEED_LABELS = {
    "result": "办理结果",
    "duplicate_of": "重复的原工单",
    "department_id": "承办单位",
    "opinion": "转办意见",
    "reason": "原因",
    "days": "延期天数",
    "satisfaction": "满意度",
    "note": "内容",
    "assignee": "承办人",
}
MAX_EXTENSION_DAYS = 30


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def decide(
    status: Status | str,
    action: str,
    role: str,
    params: Mapping[str, Any] | None = None,
    *,
    now: datetime,
    transferred_at: datetime | None = None,
    return_hours: int = 24,
    handling_mode: str = HandlingMode.TRANSFER,
) -> Status:
    """The status after ``action``, or ``TransitionError`` with the reason it is refused.

    Admins may do anything the table allows; the table itself still applies to them.
    """
    params = params or {}
    status = Status(status)
    t = TABLE.get(action)
    if t is None:
        raise TransitionError(f"未知操作“{action}”")
    if role != "admin" and role not in t.roles:
        raise TransitionError(f"当前角色无权执行“{t.label}”")
    if status not in t.sources:
        allowed = "、".join(Status(s).label for s in sorted(t.sources, key=list(Status).index))
        raise TransitionError(f"工单当前状态为“{status.label}”，不能{t.label}（仅限：{allowed}）")
    missing = [NEED_LABELS.get(n, n) for n in t.needs if not _present(params.get(n))]
    if missing:
        raise TransitionError(f"{t.label}需要填写：{'、'.join(missing)}")

    if action == "close_directly" and handling_mode != HandlingMode.DIRECT:
        raise TransitionError("只有“直接办理”的工单可以当场办结，其余工单须转办")
    if action == "transfer" and handling_mode == HandlingMode.DIRECT:
        raise TransitionError("“直接办理”的工单不转办，请当场办结或改为工单转办")
    late = transferred_at is not None and now - transferred_at > timedelta(hours=return_hours)
    if action == "return" and late:
        raise TransitionError(f"已超过{return_hours}小时退回时限，不能退回，请联系热线值班长")
    if action == "request_extension":
        days = params.get("days")
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_EXTENSION_DAYS:
            raise TransitionError(f"延期天数须为1到{MAX_EXTENSION_DAYS}之间的整数")
    if action == "close" and status is S.UNSATISFIED:
        if role not in ("lead", "admin"):
            raise TransitionError("回访不满意的工单须由值班长决定办结或重办")
        if not _present(params.get("reason")):
            raise TransitionError("不满意工单办结需要填写：原因")
    if action == "callback":
        try:
            sat = Satisfaction(params["satisfaction"])
        except ValueError:
            raise TransitionError("满意度须为：" + "、".join(s.value for s in Satisfaction)) from None
        return S.UNSATISFIED if sat is Satisfaction.UNSATISFIED else S.SATISFIED
    return t.target if t.target is not None else status


def allowed_actions(status: Status | str, role: str) -> list[str]:
    """Actions the table offers to ``role`` in ``status`` (for the console's buttons)."""
    status = Status(status)
    return [a for a, t in TABLE.items() if status in t.sources and (role == "admin" or role in t.roles)]

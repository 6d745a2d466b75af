"""Who may hear a recording, and the log of everyone who did or tried (001: 查询或提取…须经相关
领导批准…做好登记).

The policy (decided here, documented in recordings/README.md):

* **departments** never get audio, and cannot ask for it;
* **QA staff** review calls as their duty: their request is approved by themselves at once
  (recorded as such, with the reason), and the first play creates it if they did not ask first;
* **leads and admins** approve others' requests; their own are approved at once like QA's;
* **operators** (and anyone else) need a lead's or an admin's approval, valid for
  ``recordings_access_days``; without it they get no audio and the attempt is logged;
* every play, download and refusal is written to ``recording_access_log`` (who, when, what, leg).

:func:`decide_pure` is the rule without a database.

>>> decide_pure("department", approved=True)
(False, '承办单位不能收听或下载录音')
>>> decide_pure("operator", approved=False)
(False, '尚未获批收听该录音：请提交收听申请，由班长审批')
>>> decide_pure("qa", approved=False)
(True, '质检职责，自动批准')
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from recordings.catalog import is_message
from recordings.models import AccessLog, AccessRequest, Recording, utcnow

SELF_APPROVING = ("qa", "lead", "admin")
APPROVERS = ("lead", "admin")
NEVER = ("department",)


class AccessError(ValueError):
    """A refused request or decision; the message is for the user (Chinese)."""


def _role(principal: Any) -> str:
    return str(getattr(principal.role, "value", principal.role))


def decide_pure(role: str, approved: bool) -> tuple[bool, str]:
    """May someone with ``role`` hear audio, given whether they hold a valid approval?"""
    if role in NEVER:
        return False, "承办单位不能收听或下载录音"
    if approved:
        return True, "已获批准"
    if role in SELF_APPROVING:
        return True, "质检职责，自动批准"
    return False, "尚未获批收听该录音：请提交收听申请，由班长审批"


def may_see(principal: Any, rec: Recording) -> bool:
    """May this principal see the recording's metadata, transcript and findings? Operators review
    their own calls only (filed under their job number), and the voice messages (留言) any of them
    may call back; QA, leads and admins all; departments none. Hearing the audio is still
    :func:`authorise`'s decision."""
    role = _role(principal)
    if role in NEVER:
        return False
    if role != "operator" or is_message(rec.base):
        return True
    return bool(principal.job_number) and rec.operator == principal.job_number


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def valid_approval(session: Session, username: str, recording_id: int,
                   now: datetime | None = None) -> AccessRequest | None:
    now = now or utcnow()
    for req in session.exec(select(AccessRequest).where(
            AccessRequest.username == username, AccessRequest.recording_id == recording_id,
            AccessRequest.state == "approved")):
        if req.expires_at is None or _aware(req.expires_at) > now:
            return req
    return None


def request_access(session: Session, principal: Any, recording_id: int, reason: str,
                   valid_days: int = 7) -> AccessRequest:
    role = _role(principal)
    if role in NEVER:
        raise AccessError("承办单位不能申请收听录音")
    if session.get(Recording, recording_id) is None:
        raise AccessError("录音不存在")
    if not reason.strip():
        raise AccessError("请填写申请原因")
    req = AccessRequest(recording_id=recording_id, username=principal.username, role=role, reason=reason.strip())
    if role in SELF_APPROVING:
        req.state, req.decided_by, req.decided_at = "approved", principal.username, utcnow()
        req.expires_at = req.decided_at + timedelta(days=valid_days)
    session.add(req)
    session.add(AccessLog(username=principal.username, role=role, recording_id=recording_id, action="request",
                          detail=f"{reason.strip()}（{'自动批准' if req.state == 'approved' else '待审批'}）"[:500]))
    session.commit()
    session.refresh(req)
    return req


def decide(session: Session, approver: Any, request_id: int, approve: bool, valid_days: int = 7) -> AccessRequest:
    role = _role(approver)
    if role not in APPROVERS:
        raise AccessError("只有班长或管理员可以审批收听申请")
    req = session.get(AccessRequest, request_id)
    if req is None:
        raise AccessError("申请不存在")
    if req.username == approver.username:
        raise AccessError("不能审批自己的申请")
    if req.state != "pending":
        raise AccessError("该申请已处理")
    now = utcnow()
    req.state, req.decided_by, req.decided_at = ("approved" if approve else "refused"), approver.username, now
    if approve:
        req.expires_at = now + timedelta(days=valid_days)
    session.add(req)
    session.add(AccessLog(username=approver.username, role=role, recording_id=req.recording_id,
                          action="approve" if approve else "refuse", detail=f"申请人 {req.username}"))
    session.commit()
    session.refresh(req)
    return req


def authorise(session: Session, principal: Any, recording_id: int, valid_days: int = 7) -> tuple[bool, str]:
    """May this principal hear this recording now? QA/lead/admin get their approval recorded."""
    role = _role(principal)
    approval = None if role in NEVER else valid_approval(session, principal.username, recording_id)
    allowed, why = decide_pure(role, approval is not None)
    if allowed and approval is None:
        request_access(session, principal, recording_id, "质检复核（收听时自动登记）", valid_days)
    return allowed, why


def log_access(session: Session, principal: Any, recording_id: int | None, leg: str, action: str,
               allowed: bool, detail: str = "", client: str = "") -> None:
    session.add(AccessLog(username=principal.username, role=_role(principal), recording_id=recording_id, leg=leg,
                          action=action, allowed=allowed, detail=detail[:500], client=client[:64]))
    session.commit()


def access_log(engine: sa.Engine, recording_id: int | None = None, limit: int = 200) -> list[AccessLog]:
    with Session(engine) as session:
        q = select(AccessLog).order_by(AccessLog.id.desc()).limit(limit)  # type: ignore[union-attr]
        if recording_id is not None:
            q = q.where(AccessLog.recording_id == recording_id)
        return list(session.exec(q))

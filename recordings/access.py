"""Who may hear a recording, and the log of everyone who did or tried (001: 查询或提取…须经相关
领导批准…做好登记).

The policy (decided here, documented in recordings/README.md):

* **departments** never get audio, and cannot ask for it;
* **nobody approves their own listening**: every approval is decided by a lead or an admin other
  than the one who asked, and is valid for ``recordings_access_days``;
* **QA reviewers** hear recordings as their duty: they ask once for a duty grant (质检授权,
  every recording, ``scope = 'duty'``) and a lead or an admin approves it; until then they get
  no audio, like anyone else;
* **operators, leads and admins** ask per recording, with a reason;
* every request, decision, play (each byte range served), download, waveform and refusal is
  written to ``recording_access_log`` (who, when, what, leg, range, client).

:func:`decide_pure` is the rule without a database.

>>> decide_pure("department", approved=True)
(False, '承办单位不能收听或下载录音')
>>> decide_pure("operator", approved=False)
(False, '尚未获批收听该录音：请提交收听申请，由班长或管理员审批')
>>> decide_pure("qa", approved=False)
(False, '尚未获得质检授权：请在质检页申请，由班长或管理员批准')
>>> decide_pure("lead", approved=True)
(True, '已获批准')
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from hotline.db import log_filter, page_of
from recordings.catalog import is_message
from recordings.models import AccessLog, AccessRequest, Recording, utcnow

APPROVERS = ("lead", "admin")
NEVER = ("department",)
DUTY = ("qa",)  # who may hold a duty grant (every recording)


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
    if role in DUTY:
        return False, "尚未获得质检授权：请在质检页申请，由班长或管理员批准"
    return False, "尚未获批收听该录音：请提交收听申请，由班长或管理员审批"


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
    """The approval that lets ``username`` hear this recording now: one for the recording, or a
    duty grant; None without one."""
    now = now or utcnow()
    for req in session.exec(select(AccessRequest).where(
            AccessRequest.username == username, AccessRequest.state == "approved",
            sa.or_(AccessRequest.recording_id == recording_id, AccessRequest.scope == "duty"))):
        if req.expires_at is None or _aware(req.expires_at) > now:
            return req
    return None


def request_access(session: Session, principal: Any, recording_id: int | None, reason: str) -> AccessRequest:
    """Ask to hear one recording (``recording_id``) or, for QA, every recording (None: a duty
    grant). The request waits for a lead or an admin other than the asker; asking again while one
    waits returns that one."""
    role = _role(principal)
    if role in NEVER:
        raise AccessError("承办单位不能申请收听录音")
    scope = "recording" if recording_id is not None else "duty"
    if scope == "duty" and role not in DUTY:
        raise AccessError("只有质检员可以申请质检授权；收听单条录音请指明录音")
    if recording_id is not None and session.get(Recording, recording_id) is None:
        raise AccessError("录音不存在")
    if not reason.strip():
        raise AccessError("请填写申请原因")
    waiting = session.exec(select(AccessRequest).where(
        AccessRequest.username == principal.username, AccessRequest.state == "pending",
        AccessRequest.scope == scope, AccessRequest.recording_id == recording_id if recording_id is not None
        else AccessRequest.recording_id.is_(None))).first()  # type: ignore[union-attr]
    if waiting is not None:
        return waiting
    req = AccessRequest(recording_id=recording_id, scope=scope, username=principal.username, role=role,
                        reason=reason.strip())
    session.add(req)
    what = "质检授权" if scope == "duty" else "收听申请"
    session.add(AccessLog(username=principal.username, role=role, recording_id=recording_id, action="request",
                          detail=f"{what}：{reason.strip()}（待审批）"[:500]))
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
        raise AccessError("不能审批自己的申请：请由其他班长或管理员审批")
    if req.state != "pending":
        raise AccessError("该申请已处理")
    now = utcnow()
    req.state, req.decided_by, req.decided_at = ("approved" if approve else "refused"), approver.username, now
    if approve:
        req.expires_at = now + timedelta(days=valid_days)
    session.add(req)
    what = "质检授权" if req.scope == "duty" else "收听申请"
    session.add(AccessLog(username=approver.username, role=role, recording_id=req.recording_id,
                          action="approve" if approve else "refuse", detail=f"{what}，申请人 {req.username}"))
    session.commit()
    session.refresh(req)
    return req


def authorise(session: Session, principal: Any, recording_id: int) -> tuple[bool, str]:
    """May this principal hear this recording now? Only with someone else's approval."""
    role = _role(principal)
    approval = None if role in NEVER else valid_approval(session, principal.username, recording_id)
    return decide_pure(role, approval is not None)


def log_access(session: Session, principal: Any, recording_id: int | None, leg: str, action: str,
               allowed: bool, detail: str = "", client: str = "") -> None:
    session.add(AccessLog(username=principal.username, role=_role(principal), recording_id=recording_id, leg=leg,
                          action=action, allowed=allowed, detail=detail[:500], client=client[:64]))
    session.commit()


ACTION_LABELS = {"play": "收听", "download": "下载", "waveform": "波形", "denied": "拒绝访问", "purge": "到期删除",
                 "request": "申请", "approve": "批准", "refuse": "驳回", "export": "导出记录",
                 "damaged": "校验失败", "missing": "文件缺失", "repaired": "文件修复",  # these three: integrity.py
                 "live": "实时转写"}  # a lead opened a live call's transcript (agent_ui/lead/transcripts.py)


def access_log(engine: sa.Engine, recording_id: int | None = None, limit: int = 200, *, username: str = "",
               action: str = "", since: datetime | None = None, until: datetime | None = None,
               offset: int = 0, where: sa.ColumnElement[bool] | None = None) -> tuple[int, list[AccessLog]]:
    """The newest entries first, filtered (``where``: e.g. a centre's rows); (how many match, one
    page of them)."""
    q = sa.select(AccessLog) if where is None else sa.select(AccessLog).where(where)
    q = log_filter(q, AccessLog.at, since, until, [
        (AccessLog.recording_id, recording_id), (AccessLog.username, username), (AccessLog.action, action)])
    with Session(engine) as session:
        return page_of(session, q, AccessLog.id.desc(), limit=limit, offset=offset)  # type: ignore[union-attr]

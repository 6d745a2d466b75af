"""The security audit trail: sign-ins and sign-outs, account changes, revocations, credential
rotations. Written by the account store and by the rooms above (e.g. SIP password rotation);
read by the admin's 审计日志 page and its export.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session

from accounts.models import AuditEvent
from hotline.db import log_filter, page_of

# action → what the page calls it
ACTIONS = {
    "login": "登录成功", "login_failed": "登录失败", "login_throttled": "登录被限制", "logout": "退出登录",
    "account_create": "新建账号", "account_update": "修改账号", "account_disable": "停用账号",
    "account_enable": "启用账号", "password_reset": "重置密码", "password_change": "修改密码",
    "session_revoke": "强制下线", "demo_off": "删除演示账号", "setup_admin": "初始化管理员",
    "sip_rotate": "更换分机密码", "config_refused": "生产模式拒绝启动", "log_export": "导出访问记录",
    "sip_reveal": "查看分机密码", "ticket_import": "导入历史工单",
}


class AuditLog:
    def __init__(self, engine: sa.Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def event(self, s: Session, actor: str, action: str, target: str = "", detail: str = "",
              client: str = "") -> None:
        """Add one event to the caller's transaction (it commits with the change it describes)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        s.add(AuditEvent(at=datetime.fromtimestamp(self.clock(), UTC), actor=actor[:64], action=action,
                         target=target[:64], detail=detail[:500], client=client[:64]))

    def record(self, actor: str, action: str, target: str = "", detail: str = "", client: str = "") -> None:
        with Session(self.engine) as s:
            self.event(s, actor, action, target, detail, client)
            s.commit()

    def list(self, *, actor: str = "", target: str = "", action: str = "", since: datetime | None = None,
             until: datetime | None = None, limit: int = 200, offset: int = 0) -> tuple[int, list[dict[str, object]]]:
        """The newest events first, filtered; (how many match, one page of them)."""
        stmt = log_filter(sa.select(AuditEvent), AuditEvent.at, since, until, [
            (AuditEvent.actor, actor), (AuditEvent.target, target), (AuditEvent.action, action)])
        with Session(self.engine) as s:
            total, rows = page_of(s, stmt, AuditEvent.at.desc(), AuditEvent.id.desc(),  # type: ignore[attr-defined]
                                  limit=min(limit, 5000), offset=offset)
            return int(total), [{"id": r.id, "at": r.at.isoformat(), "actor": r.actor, "action": r.action,
                                 "action_label": ACTIONS.get(r.action, r.action), "target": r.target,
                                 "detail": r.detail, "client": r.client} for r in rows]

"""Account administration: create, change, disable and enable, reset a password, list.

Used by the admin's 账号管理 page and by ``hotline account``; every change is audited with who
made it, and a change to what someone may do (role, department, centre, 负责人, disabling, a
reset) ends that person's sessions at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from accounts.models import Account
from accounts.policy import problems
from accounts.store import AccountError, Accounts, hash_password, temporary_password
from hotline.identity import Role

ROLE_LABELS = {"operator": "话务员", "lead": "值班长", "qa": "质检员", "department": "承办单位", "admin": "管理员"}
# a change to any of these changes what the person may see or do: their sessions end
POWERS = ("role", "department_id", "centre", "dept_lead")
USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")


@dataclass(frozen=True)
class Actor:
    """Who makes a change (an admin's user name, or ``cli:<unix user>``) and from where."""

    username: str
    client: str = ""


def as_dict(a: Account, open_sessions: int = 0) -> dict[str, Any]:
    return {"username": a.username, "display_name": a.display_name, "role": a.role,
            "role_label": ROLE_LABELS.get(a.role, a.role), "job_number": a.job_number,
            "department_id": a.department_id, "centre": a.centre, "dept_lead": a.dept_lead, "active": a.active,
            "demo": a.demo, "must_change_password": a.must_change_password,
            "created_at": a.created_at.isoformat() if a.created_at else None,
            "last_login_at": a.last_login_at.isoformat() if a.last_login_at else None,
            "password_changed_at": a.password_changed_at.isoformat() if a.password_changed_at else None,
            "open_sessions": open_sessions}


class AccountAdmin:
    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self.engine = accounts.engine
        self.audit = accounts.audit
        self.sessions = accounts.sessions

    def list(self) -> list[dict[str, Any]]:
        open_by_user: dict[str, int] = {}
        for info in self.sessions.list(limit=5000):
            open_by_user[info.username] = open_by_user.get(info.username, 0) + 1
        with Session(self.engine) as s:
            rows = s.exec(select(Account).order_by(Account.active.desc(), Account.role, Account.username))  # type: ignore[attr-defined]
            return [as_dict(a, open_by_user.get(a.username, 0)) for a in rows]

    def create(self, actor: Actor, username: str, role: str, *, display_name: str = "", job_number: str = "",
               department_id: int | None = None, centre: str = "", dept_lead: bool = False,
               password: str | None = None) -> tuple[dict[str, Any], str]:
        """A new account; returns it and the temporary password to hand over ("" when ``password``
        was given: then it must meet the policy and need not be changed)."""
        username = username.strip().lower()
        if not username or len(username) > 64 or not set(username) <= USERNAME_CHARS:
            raise AccountError("用户名只能由小写字母、数字和 . _ - 组成，最长 64 位")
        fields = self._checked(role=role, display_name=display_name or username, job_number=job_number,
                               department_id=department_id, centre=centre, dept_lead=dept_lead)
        if password is not None:
            found = problems(password, username)
            if found:
                raise AccountError("；".join(found))
        temporary = "" if password is not None else temporary_password()
        with Session(self.engine, expire_on_commit=False) as s:
            if s.exec(select(Account.id).where(Account.username == username)).first() is not None:
                raise AccountError(f"用户名 {username} 已存在")
            self._job_number_free(s, fields["job_number"], username)
            account = Account(username=username, password_hash=hash_password(password or temporary),
                              must_change_password=password is None, **fields)
            s.add(account)
            self.audit.event(s, actor.username, "account_create", username,
                             f"{ROLE_LABELS[fields['role']]} {fields['display_name']}", actor.client)
            s.commit()
        return as_dict(account), temporary

    def update(self, actor: Actor, username: str, **changes: Any) -> dict[str, Any]:
        """Change role, display name, job number, department, centre or 负责人."""
        allowed = {"role", "display_name", "job_number", "department_id", "centre", "dept_lead"}
        unknown = set(changes) - allowed
        if unknown:
            raise AccountError(f"不能修改：{'、'.join(sorted(unknown))}")
        with Session(self.engine, expire_on_commit=False) as s:
            account = self._get(s, username)
            merged = {k: changes.get(k, getattr(account, k)) for k in allowed}
            fields = self._checked(**merged)
            self._job_number_free(s, fields["job_number"], username)
            if account.role == "admin" and fields["role"] != "admin":
                self._not_last_admin(s, username)
            changed = {k: v for k, v in fields.items() if getattr(account, k) != v}
            if not changed:
                return as_dict(account)
            for k, v in changed.items():
                setattr(account, k, v)
            s.add(account)
            if set(changed) & set(POWERS):
                self.sessions.revoke_account(username, "account_change", session=s)
            self.audit.event(s, actor.username, "account_update", username,
                             "；".join(f"{k}={v}" for k, v in changed.items()), actor.client)
            s.commit()
        self.sessions.notify()
        return as_dict(account)

    def set_active(self, actor: Actor, username: str, active: bool) -> dict[str, Any]:
        with Session(self.engine, expire_on_commit=False) as s:
            account = self._get(s, username)
            if not active and username == actor.username:
                raise AccountError("不能停用自己的账号")
            if not active and account.role == "admin":
                self._not_last_admin(s, username)
            if account.active == active:
                return as_dict(account)
            account.active = active
            s.add(account)
            if not active:
                self.sessions.revoke_account(username, "disabled", session=s)
            self.audit.event(s, actor.username, "account_enable" if active else "account_disable", username, "",
                             actor.client)
            s.commit()
        self.sessions.notify()
        return as_dict(account)

    def reset_password(self, actor: Actor, username: str, password: str | None = None) -> str:
        """A new password for someone who lost theirs: a temporary one (returned) to be changed at the
        first sign-in, or ``password`` (the CLI, policy checked). Their sessions end; the throttle
        starts again for the account."""
        if password is not None:
            found = problems(password, username)
            if found:
                raise AccountError("；".join(found))
        temporary = "" if password is not None else temporary_password()
        with Session(self.engine) as s:
            account = self._get(s, username)
            account.password_hash = hash_password(password or temporary)
            account.must_change_password = password is None
            account.demo = False  # no longer the README's password
            s.add(account)
            self.sessions.revoke_account(username, "password_reset", session=s)
            self.accounts.throttle.attempt(s, username, "reset", ok=True)  # a reset clears the hold
            self.audit.event(s, actor.username, "password_reset", username, "", actor.client)
            s.commit()
        self.sessions.notify()
        return temporary

    def revoke_sessions(self, actor: Actor, username: str) -> int:
        with Session(self.engine) as s:
            self._get(s, username)
            n = self.sessions.revoke_account(username, "admin", session=s)
            self.audit.event(s, actor.username, "session_revoke", username, f"{n} 个会话", actor.client)
            s.commit()
        self.sessions.notify()
        return n

    # --- checks ----------------------------------------------------------------------------------

    @staticmethod
    def _get(s: Session, username: str) -> Account:
        account = s.exec(select(Account).where(Account.username == username)).first()
        if account is None:
            raise LookupError(f"账号 {username} 不存在")
        return account

    @staticmethod
    def _checked(*, role: str, display_name: str, job_number: str, department_id: int | None, centre: str,
                 dept_lead: bool) -> dict[str, Any]:
        try:
            Role(role)
        except ValueError:
            raise AccountError(f"角色只能是：{'、'.join(f'{k}（{v}）' for k, v in ROLE_LABELS.items())}") from None
        display_name, job_number, centre = display_name.strip(), job_number.strip(), centre.strip()
        if not display_name or len(display_name) > 64:
            raise AccountError("姓名不能为空，最长 64 字")
        if job_number and (not job_number.isdigit() or len(job_number) > 16):
            raise AccountError("工号只能是数字，最长 16 位")
        if role == "operator" and not job_number:
            raise AccountError("话务员必须有工号（首问负责制：来电者会听到工号）")
        if role == "department":
            if department_id is None:
                raise AccountError("承办单位账号必须选择所属单位")
        elif department_id is not None or dept_lead:
            raise AccountError("只有承办单位账号可以选择所属单位或设为负责人")
        if len(centre) > 32:
            raise AccountError("中心名称最长 32 字")
        return {"role": role, "display_name": display_name, "job_number": job_number,
                "department_id": department_id, "centre": centre, "dept_lead": bool(dept_lead)}

    @staticmethod
    def _job_number_free(s: Session, job_number: str, username: str) -> None:
        if not job_number:
            return
        other = s.exec(select(Account.username).where(Account.job_number == job_number,
                                                      Account.username != username)).first()
        if other is not None:
            raise AccountError(f"工号 {job_number} 已被账号 {other} 使用")

    @staticmethod
    def _not_last_admin(s: Session, username: str) -> None:
        others = s.exec(select(Account.id).where(Account.role == "admin", Account.active.is_(True),  # type: ignore[attr-defined]
                                                 Account.username != username)).first()
        if others is None:
            raise AccountError("这是最后一个管理员账号，不能停用或改为其他角色")

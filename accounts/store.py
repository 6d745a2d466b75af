"""Sign-in and sign-out, the README's demo accounts, and who someone is (by user name or job number).

Passwords are hashed with argon2; a failed sign-in says the same thing, and costs the same,
whether the user exists or not. The account admin (create, change, disable, reset) is
:class:`accounts.admin.AccountAdmin`, over the same tables.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from accounts.audit import AuditLog
from accounts.models import Account, AccountSession
from accounts.policy import problems
from accounts.sessions import Sessions, token_hash
from accounts.throttle import LoginThrottle
from hotline.identity import Principal, Role

_hasher = PasswordHasher()

# The README lists these; production mode refuses to start while any of them exists.
DEMO_ACCOUNTS: list[dict[str, str | int | bool | None]] = [
    {"username": "op1024", "display_name": "张敏", "role": "operator", "job_number": "1024", "password": "demo1024"},
    {"username": "op1025", "display_name": "李强", "role": "operator", "job_number": "1025", "password": "demo1025"},
    {"username": "lead", "display_name": "王班长", "role": "lead", "password": "demolead"},
    {"username": "qa", "display_name": "赵质检", "role": "qa", "password": "demoqa"},
    {"username": "dept1", "display_name": "市城管局 负责人", "role": "department", "department_id": 1,
     "dept_lead": True, "password": "demodept"},
    {"username": "dept1a", "display_name": "市城管局 承办人", "role": "department", "department_id": 1,
     "password": "demodept"},
    {"username": "dept2", "display_name": "市水务集团 负责人", "role": "department", "department_id": 2,
     "dept_lead": True, "password": "demodept"},
    {"username": "admin", "display_name": "系统管理员", "role": "admin", "password": "demoadmin"},
]


class AccountError(ValueError):
    """A change refused, said in Chinese for the form."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def temporary_password() -> str:
    """A one-time password an admin hands over; it meets the policy, and must be changed at once."""
    while True:
        candidate = secrets.token_urlsafe(9) + "-7a"
        if not problems(candidate):
            return candidate


@dataclass(frozen=True)
class SignIn:
    """What a sign-in came to: a session token, or why not (``held_s`` > 0: throttled)."""

    principal: Principal | None = None
    token: str = ""
    held_s: float = 0.0


class Accounts:
    def __init__(self, engine: sa.Engine, *, sessions: Sessions | None = None, throttle: LoginThrottle | None = None,
                 audit: AuditLog | None = None, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        self.sessions = sessions or Sessions(engine, clock=clock)
        self.throttle = throttle or LoginThrottle(engine, clock=clock)
        self.audit = audit or AuditLog(engine, clock=clock)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- signing in and out ----------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> Principal | None:
        """The principal of an active account whose password matches, else None (no session, no count)."""
        account = self.get(username)
        return account.principal() if account is not None and self._verify(account, password) else None

    @staticmethod
    def _verify(account: Account | None, password: str) -> bool:
        if account is None or not account.active:
            _hasher.hash(password)  # same cost either way: no user enumeration by timing
            return False
        try:
            return _hasher.verify(account.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def sign_in(self, username: str, password: str, *, client: str = "", user_agent: str = "") -> SignIn:
        """Throttle, check the password, open a session; every attempt is counted and audited."""
        held = self.throttle.held_for(username, client)
        if held > 0:
            self.audit.record(username, "login_throttled", username, f"{held:.0f} 秒后可再试", client)
            return SignIn(held_s=held)
        account = self.get(username)
        ok = self._verify(account, password)
        with Session(self.engine, expire_on_commit=False) as s:
            self.throttle.attempt(s, username, client, ok)
            self.audit.event(s, username, "login" if ok else "login_failed", username, user_agent[:120], client)
            if ok and account is not None:
                account.last_login_at = self._now()
                s.add(account)
            s.commit()
        if not ok or account is None:
            return SignIn()
        token = self.sessions.open(username, client=client, user_agent=user_agent)
        return SignIn(principal=account.principal(), token=token)

    def sign_out(self, token: str, client: str = "") -> None:
        username = self.sessions.close(token)
        if username is not None:
            self.audit.record(username, "logout", username, "", client)

    def change_password(self, token: str, old: str, new: str, client: str = "") -> None:
        """The signed-in person's own change: the old password, the policy; their other sessions end."""
        principal = self.sessions.resolve(token)
        if principal is None:
            raise AccountError("未登录或登录已过期，请重新登录")
        account = self.get(principal.username)
        if not self._verify(account, old):
            raise AccountError("原密码不正确")
        if new == old:
            raise AccountError("新密码不能与原密码相同")
        found = problems(new, principal.username)
        if found:
            raise AccountError("；".join(found))
        with Session(self.engine) as s:
            row = s.exec(select(Account).where(Account.username == principal.username)).one()
            row.password_hash, row.must_change_password = hash_password(new), False
            row.password_changed_at = self._now()
            s.add(row)
            keep = token_hash(token)
            for other in s.exec(select(AccountSession).where(AccountSession.username == principal.username,
                                                             AccountSession.revoked_at.is_(None),  # type: ignore[union-attr]
                                                             AccountSession.token_hash != keep)):
                other.revoked_at, other.revoked_reason = self._now(), "password_change"
                s.add(other)
            self.audit.event(s, principal.username, "password_change", principal.username, "", client)
            s.commit()
        self.sessions.notify()

    # --- the demo ------------------------------------------------------------------------------

    def upsert(self, username: str, password: str, role: str, display_name: str = "", job_number: str = "",
               department_id: int | None = None, centre: str = "", dept_lead: bool = False,
               demo: bool = False) -> Account:
        """Create or overwrite an account as given, without the policy: the demo's and tests' accounts.
        People's accounts go through :class:`accounts.admin.AccountAdmin`."""
        Role(role)  # refuse unknown roles
        with Session(self.engine, expire_on_commit=False) as s:
            account = s.exec(select(Account).where(Account.username == username)).first()
            if account is None:
                account = Account(username=username, display_name=display_name or username, role=role,
                                  password_hash="")
            account.role, account.job_number = role, job_number
            account.display_name = display_name or account.display_name
            account.department_id, account.centre, account.dept_lead = department_id, centre, dept_lead
            account.password_hash, account.demo = hash_password(password), demo
            s.add(account)
            self.sessions.revoke_account(username, "account_change", session=s)
            s.commit()
        self.sessions.notify()
        return account

    def ensure_demo(self) -> int:
        """Create the README's demo accounts that do not exist yet; returns how many were made."""
        made = 0
        for spec in DEMO_ACCOUNTS:
            if self.get(str(spec["username"])) is None:
                fields = {k: v for k, v in spec.items() if k != "password"}
                self.upsert(password=str(spec["password"]), demo=True, **fields)  # type: ignore[arg-type]
                made += 1
        return made

    def demo_present(self) -> list[str]:
        """The demo accounts still in the database (production refuses to start with any)."""
        with Session(self.engine) as s:
            return list(s.exec(select(Account.username).where(Account.demo.is_(True)).order_by(Account.username)))  # type: ignore[attr-defined]

    def remove_demo(self, actor: str) -> list[str]:
        """Turning the demo off: the demo accounts and their sessions are gone."""
        names = self.demo_present()
        with Session(self.engine) as s:
            for name in names:
                self.sessions.revoke_account(name, "demo_off", session=s)
            s.execute(sa.delete(Account).where(Account.demo.is_(True)))  # type: ignore[attr-defined]
            if names:
                self.audit.event(s, actor, "demo_off", "", "、".join(names))
            s.commit()
        self.sessions.notify()
        return names

    # --- who someone is --------------------------------------------------------------------------

    def get(self, username: str) -> Account | None:
        with Session(self.engine, expire_on_commit=False) as s:
            return s.exec(select(Account).where(Account.username == username)).first()

    def admins_present(self) -> bool:
        with Session(self.engine) as s:
            admin = select(Account.id).where(Account.role == "admin", Account.active.is_(True))  # type: ignore[attr-defined]
            return s.exec(admin).first() is not None

    def centre_of_job_number(self, job_number: str) -> str:
        """The centre (team) of the operator with this 工号, "" if none: QA files scores per team."""
        if not job_number:
            return ""
        with Session(self.engine) as s:
            return s.exec(select(Account.centre).where(Account.job_number == job_number)).first() or ""

    def department_staff(self, department_id: int) -> list[Account]:
        """The active accounts of a department (whom its lead may choose as a ticket's handler)."""
        with Session(self.engine) as s:
            return list(s.exec(select(Account).where(Account.department_id == department_id,
                                                     Account.role == "department", Account.active.is_(True))
                                .order_by(Account.username)))

    def usernames_by_job_number(self) -> dict[str, str]:
        """工号 → account user name: QA files under the job number, the call log names the account."""
        with Session(self.engine) as s:
            return {j: u for j, u in s.exec(select(Account.job_number, Account.username)) if j}

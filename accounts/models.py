"""The account table, its server-side sessions, sign-in attempts and the security audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Field, SQLModel

from hotline.db import UTCDateTime
from hotline.identity import Principal, Role


def _now() -> datetime:
    return datetime.now(UTC)


class Account(SQLModel, table=True):
    __tablename__ = "account"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    display_name: str = Field(max_length=64)
    role: str = Field(max_length=16)
    job_number: str = Field(default="", max_length=16)  # 工号, told to every caller
    department_id: int | None = None
    centre: str = Field(default="", max_length=32)
    dept_lead: bool = False  # a department's lead (负责人), who chooses each ticket's handler
    password_hash: str = Field(max_length=255)
    active: bool = True
    created_at: datetime = Field(default_factory=_now, sa_type=UTCDateTime)  # type: ignore[call-overload]
    demo: bool = False  # one of the README's demo accounts: production mode refuses to start with any
    must_change_password: bool = False  # set by an admin's reset: the first sign-in goes to 修改密码
    password_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # type: ignore[call-overload]
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # type: ignore[call-overload]

    def principal(self) -> Principal:
        return principal_of(self)


# what a principal is made of: read by every request (accounts.sessions) without loading the account
PRINCIPAL_COLUMNS = ("username", "role", "display_name", "job_number", "department_id", "centre", "dept_lead",
                     "must_change_password")


def principal_of(account: Any) -> Principal:
    """The principal of an account, or of a row with its :data:`PRINCIPAL_COLUMNS`."""
    return Principal(username=account.username, role=Role(account.role), display_name=account.display_name,
                     job_number=account.job_number, department_id=account.department_id, centre=account.centre,
                     dept_lead=account.dept_lead, must_change_password=account.must_change_password)


class AccountSession(SQLModel, table=True):
    """One signed-in browser or tool. The token itself is never stored, only its SHA-256: a copy of
    the database does not sign anyone in."""

    __tablename__ = "account_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    username: str = Field(max_length=64, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)  # type: ignore[call-overload]
    last_seen_at: datetime = Field(sa_type=UTCDateTime)  # type: ignore[call-overload]
    expires_at: datetime = Field(sa_type=UTCDateTime)  # type: ignore[call-overload]  # the absolute limit
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # type: ignore[call-overload]
    revoked_reason: str = Field(default="", max_length=32)
    client: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=200)


class LoginAttempt(SQLModel, table=True):
    """Every sign-in attempt, kept for the throttle's window and the audit."""

    __tablename__ = "login_attempt"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)  # type: ignore[call-overload]
    username: str = Field(max_length=64, index=True)
    client: str = Field(default="", max_length=64, index=True)
    ok: bool = False


class AuditEvent(SQLModel, table=True):
    """Who did what to whose account, and every sign-in, sign-out and revocation."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)  # type: ignore[call-overload]
    actor: str = Field(max_length=64)
    action: str = Field(max_length=32, index=True)
    target: str = Field(default="", max_length=64)
    detail: str = Field(default="", max_length=500)
    client: str = Field(default="", max_length=64)

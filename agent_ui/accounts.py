"""Accounts: who may sign in, with which role, and the demo accounts of the README.

Passwords are hashed with argon2; a failed login says the same thing whether the user exists
or not.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Field, Session, SQLModel, select

from hotline.identity import Principal, Role

_hasher = PasswordHasher()


class Account(SQLModel, table=True):
    __tablename__ = "account"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    display_name: str = Field(max_length=64)
    role: str = Field(max_length=16)
    job_number: str = Field(default="", max_length=16)  # 工号, told to every caller
    department_id: int | None = None
    centre: str = Field(default="", max_length=32)
    password_hash: str = Field(max_length=255)
    active: bool = True
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC),
                                 sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]

    def principal(self) -> Principal:
        return Principal(username=self.username, role=Role(self.role), display_name=self.display_name,
                         job_number=self.job_number, department_id=self.department_id, centre=self.centre)


# The README lists these; change the passwords of a real deployment with `hotline account`.
DEMO_ACCOUNTS: list[dict[str, str | int | None]] = [
    {"username": "op1024", "display_name": "张敏", "role": "operator", "job_number": "1024", "password": "demo1024"},
    {"username": "op1025", "display_name": "李强", "role": "operator", "job_number": "1025", "password": "demo1025"},
    {"username": "lead", "display_name": "王班长", "role": "lead", "password": "demolead"},
    {"username": "qa", "display_name": "赵质检", "role": "qa", "password": "demoqa"},
    {"username": "dept1", "display_name": "市城管局", "role": "department", "department_id": 1, "password": "demodept"},
    {"username": "admin", "display_name": "系统管理员", "role": "admin", "password": "demoadmin"},
]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def authenticate(session: Session, username: str, password: str) -> Account | None:
    account = session.exec(select(Account).where(Account.username == username)).first()
    if account is None or not account.active:
        _hasher.hash(password)  # same cost either way: no user enumeration by timing
        return None
    try:
        _hasher.verify(account.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return account


def upsert(session: Session, username: str, password: str, role: str, display_name: str = "",
           job_number: str = "", department_id: int | None = None, centre: str = "") -> Account:
    Role(role)  # refuse unknown roles
    account = session.exec(select(Account).where(Account.username == username)).first()
    if account is None:
        account = Account(username=username, display_name=display_name or username, role=role,
                          password_hash=hash_password(password))
    account.role, account.job_number = role, job_number
    account.display_name = display_name or account.display_name
    account.department_id, account.centre = department_id, centre
    account.password_hash = hash_password(password)
    session.add(account)
    session.commit()
    return account


def ensure_demo_accounts(session: Session) -> int:
    """Create the README's demo accounts that do not exist yet; returns how many were made."""
    made = 0
    for spec in DEMO_ACCOUNTS:
        exists = session.exec(select(Account).where(Account.username == spec["username"])).first()
        if exists is None:
            fields = {k: v for k, v in spec.items() if k != "password"}
            upsert(session, password=str(spec["password"]), **fields)  # type: ignore[arg-type]
            made += 1
    return made

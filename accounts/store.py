"""Sign-in, the README's demo accounts, and who someone is (by user name or job number).

Passwords are hashed with argon2; a failed sign-in says the same thing, and costs the same,
whether the user exists or not.
"""

from __future__ import annotations

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from accounts.models import Account
from hotline.identity import Principal, Role

_hasher = PasswordHasher()

# The README lists these; a real deployment turns HOTLINE_DEMO_ACCOUNTS off.
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


def hash_password(password: str) -> str:
    return _hasher.hash(password)


class Accounts:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def authenticate(self, username: str, password: str) -> Principal | None:
        """The principal of an active account whose password matches, else None."""
        with Session(self.engine) as s:
            account = s.exec(select(Account).where(Account.username == username)).first()
        if account is None or not account.active:
            _hasher.hash(password)  # same cost either way: no user enumeration by timing
            return None
        try:
            _hasher.verify(account.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return account.principal()

    def upsert(self, username: str, password: str, role: str, display_name: str = "", job_number: str = "",
               department_id: int | None = None, centre: str = "", dept_lead: bool = False) -> Account:
        Role(role)  # refuse unknown roles
        with Session(self.engine, expire_on_commit=False) as s:
            account = s.exec(select(Account).where(Account.username == username)).first()
            if account is None:
                account = Account(username=username, display_name=display_name or username, role=role,
                                  password_hash="")
            account.role, account.job_number = role, job_number
            account.display_name = display_name or account.display_name
            account.department_id, account.centre, account.dept_lead = department_id, centre, dept_lead
            account.password_hash = hash_password(password)
            s.add(account)
            s.commit()
            return account

    def ensure_demo(self) -> int:
        """Create the README's demo accounts that do not exist yet; returns how many were made."""
        made = 0
        for spec in DEMO_ACCOUNTS:
            if self.get(str(spec["username"])) is None:
                fields = {k: v for k, v in spec.items() if k != "password"}
                self.upsert(password=str(spec["password"]), **fields)  # type: ignore[arg-type]
                made += 1
        return made

    def get(self, username: str) -> Account | None:
        with Session(self.engine, expire_on_commit=False) as s:
            return s.exec(select(Account).where(Account.username == username)).first()

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

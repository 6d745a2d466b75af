"""The account table."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hotline.identity import Principal, Role


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
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC),
                                 sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]

    def principal(self) -> Principal:
        return Principal(username=self.username, role=Role(self.role), display_name=self.display_name,
                         job_number=self.job_number, department_id=self.department_id, centre=self.centre,
                         dept_lead=self.dept_lead)

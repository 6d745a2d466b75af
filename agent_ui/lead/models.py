"""The lead's tables, column for column as migrations ui0010–ui0012 create them.

Times are ``UTCDateTime`` (the ground's aware type, :mod:`hotline.db`): SQLite keeps no zone, and a
naive time handed to a browser would be read as the browser's own local time.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hotline.db import UTCDateTime


def _text(length: int, default: str | None = None) -> Any:
    """A NOT NULL string column; with ``default``, the database fills it in too (server default)."""
    if default is None:
        return Field(max_length=length)
    return Field(default=default, max_length=length, sa_column_kwargs={"server_default": default})


def _moment(index: bool = False) -> Any:
    return Field(sa_type=UTCDateTime, nullable=False, index=index)  # type: ignore[call-overload]


class AlertAck(SQLModel, table=True):
    """Who acknowledged which alert, and when (the alert itself lives in memory, in the engine)."""

    __tablename__ = "lead_alert_ack"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = _text(16)
    alert_key: str = _text(128)
    title: str = _text(64)
    detail: str = _text(255, "")
    queue: str = _text(64, "")
    seat: str = _text(32, "")
    raised_at: datetime = _moment()
    acked_by: str = _text(64)
    acked_at: datetime = _moment(index=True)


class Handover(SQLModel, table=True):
    """A shift handover: signed by the outgoing lead, countersigned by the incoming one."""

    __tablename__ = "shift_handover"

    id: int | None = Field(default=None, primary_key=True)
    shift: str = _text(32)
    from_lead: str = _text(64)
    to_lead: str = _text(64, "")
    notes: str = Field(default="", sa_type=sa.Text, sa_column_kwargs={"server_default": ""})
    tickets: str = Field(default="", sa_type=sa.Text,  # comma-separated ticket ids
                         sa_column_kwargs={"server_default": ""})
    created_at: datetime = _moment(index=True)
    to_signed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # type: ignore[call-overload]


class SeatSpell(SQLModel, table=True):
    """How long a seat stayed in one state (busy, wrap-up…), for the per-operator report."""

    __tablename__ = "seat_spell"

    id: int | None = Field(default=None, primary_key=True)
    seat: str = _text(32)
    operator: str = _text(64, "")
    state: str = _text(16)
    reason: str = _text(64, "")
    started_at: datetime = _moment(index=True)
    ended_at: datetime = _moment()
    seconds: float


class RosterEntry(SQLModel, table=True):
    """One person on one shift of one day (排班)."""

    __tablename__ = "roster"
    __table_args__ = (sa.UniqueConstraint("day", "shift", "username"),)

    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(index=True)
    shift: str = _text(32)
    username: str = _text(64)
    duty: str = _text(16)  # 班长 / 话务员 / 专业席
    seat: str = _text(32, "")
    created_by: str = _text(64)


class AssessmentEntry(SQLModel, table=True):
    """What the centre enters by hand for the department assessment (circulars, commendations…)."""

    __tablename__ = "dept_assessment_entry"

    id: int | None = Field(default=None, primary_key=True)
    department: str = _text(128)
    day: date = Field(index=True)  # when it happened: it counts in that period
    item: str = _text(32)
    count: int
    note: str = _text(255, "")
    entered_by: str = _text(64)
    entered_at: datetime = _moment()


TABLES = tuple(m.__tablename__ for m in (AlertAck, Handover, SeatSpell, RosterEntry, AssessmentEntry))

__all__ = ["TABLES", "AlertAck", "AssessmentEntry", "Handover", "RosterEntry", "SeatSpell"]

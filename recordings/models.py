"""The recordings tables: catalog, transcription queue, transcripts, QA scores, access and audit.

All table names start with ``recording_`` or ``qa_`` (one SQLModel metadata is shared by every
package on the database). Times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

TZ = sa.DateTime(timezone=True)
LEGS = ("mixed", "citizen", "operator")  # the mixed file, the citizen's leg (-in), the operator's (-out)
SUFFIX = {"mixed": "", "citizen": "-in", "operator": "-out"}
LEG_NAMES = {"mixed": "混合录音", "citizen": "来电人", "operator": "话务员"}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _dt(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=TZ, nullable=nullable, index=index)  # type: ignore[call-overload]


class Recording(SQLModel, table=True):
    """One recorded call (three files): pending until its files are moved into storage."""

    __tablename__ = "recording"
    id: int | None = Field(default=None, primary_key=True)
    base: str = Field(max_length=128, sa_column_kwargs={"unique": True})  # HL_RECBASE
    uniqueid: str = Field(default="", max_length=64, index=True)  # HL_UID: the call's id
    seat: str = Field(default="", max_length=32, index=True)
    operator: str = Field(default="", max_length=32, index=True)  # job number (工号)
    caller_num: str = Field(default="", max_length=32)
    ticket_id: int | None = Field(default=None, index=True)
    survey: str = Field(default="", max_length=4)  # 1 满意 2 基本满意 3 不满意
    started_at: datetime | None = _dt(index=True)
    registered_at: datetime = Field(default_factory=utcnow, sa_type=TZ)  # type: ignore[call-overload]
    status: str = Field(default="pending", max_length=16, index=True)  # pending|ok|missing|corrupt|purged
    problem: str = Field(default="", max_length=500)
    duration_s: float = 0.0
    purged_at: datetime | None = _dt()


class RecordingFile(SQLModel, table=True):
    __tablename__ = "recording_file"
    __table_args__ = (sa.UniqueConstraint("recording_id", "leg"),)
    id: int | None = Field(default=None, primary_key=True)
    recording_id: int = Field(foreign_key="recording.id", index=True)
    leg: str = Field(max_length=16)
    path: str = Field(default="", max_length=500)
    size_bytes: int = 0
    duration_s: float = 0.0
    sha256: str = Field(default="", max_length=64)
    # "catalog": taken when the file was stored; "late": taken at the first check after the
    # catalogued row came without one (it vouches for the bytes from then on, not before)
    sha256_source: str = Field(default="", max_length=16)
    status: str = Field(default="ok", max_length=16)  # ok|missing|corrupt|purged
    problem: str = Field(default="", max_length=500)
    checked_at: datetime | None = _dt(index=True)  # the last time its bytes were compared (the sweep's order)
    damaged_at: datetime | None = _dt()  # found gone or changed after it was stored (not as it arrived)


class RecordingOrphan(SQLModel, table=True):
    """A file in storage that no catalogued file refers to, as the integrity sweep last saw it."""

    __tablename__ = "recording_orphan"
    id: int | None = Field(default=None, primary_key=True)
    path: str = Field(max_length=500, sa_column_kwargs={"unique": True})
    base: str = Field(default="", max_length=128, index=True)
    size_bytes: int = 0
    note: str = Field(default="", max_length=200)
    found_at: datetime = Field(default_factory=utcnow, sa_type=TZ)  # type: ignore[call-overload]
    seen_at: datetime = Field(default_factory=utcnow, sa_type=TZ)  # type: ignore[call-overload]


class TranscriptionJob(SQLModel, table=True):
    """The durable queue: one job per recording; claimed with a lease and a token."""

    __tablename__ = "recording_job"
    id: int | None = Field(default=None, primary_key=True)
    recording_id: int = Field(foreign_key="recording.id", sa_column_kwargs={"unique": True})
    state: str = Field(default="queued", max_length=16, index=True)  # queued|running|done|parked
    attempts: int = 0
    token: str = Field(default="", max_length=40)  # the current claim; completion must show it
    worker: str = Field(default="", max_length=64)
    lease_until: datetime | None = _dt()
    error: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=TZ)  # type: ignore[call-overload]
    finished_at: datetime | None = _dt()
    audio_s: float = 0.0
    wall_s: float = 0.0


class TranscriptionRun(SQLModel, table=True):
    """Every claim of a job (an audit of the queue: proves nothing ran twice to completion)."""

    __tablename__ = "recording_job_run"
    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="recording_job.id", index=True)
    token: str = Field(max_length=40, sa_column_kwargs={"unique": True})
    worker: str = Field(max_length=64)
    started_at: datetime = Field(default_factory=utcnow, sa_type=TZ)  # type: ignore[call-overload]
    finished_at: datetime | None = _dt()
    outcome: str = Field(default="", max_length=16)  # "" (running or lost)|done|error|stale


class Transcript(SQLModel, table=True):
    """Both legs' words (speaker, text, start, end, conf), sorted by start, and the QA findings."""

    __tablename__ = "recording_transcript"
    recording_id: int = Field(foreign_key="recording.id", primary_key=True)
    model: str = Field(default="", max_length=200)
    words: list = Field(default_factory=list, sa_type=sa.JSON)  # type: ignore[call-overload]
    findings: list = Field(default_factory=list, sa_type=sa.JSON)  # type: ignore[call-overload]
    created_at: datetime = Field(default_factory=utcnow, sa_type=TZ)  # type: ignore[call-overload]


class QaCheckItem(SQLModel, table=True):
    """A check item of the scoring form; admins set the weights (points)."""

    __tablename__ = "qa_check_item"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, sa_column_kwargs={"unique": True})
    name: str = Field(max_length=64)
    guidance: str = Field(default="", max_length=500)
    weight: int = 10
    position: int = 0
    active: bool = True


class QaScore(SQLModel, table=True):
    """A filed score. Never updated: a correction is a new version that supersedes it, with a reason."""

    __tablename__ = "qa_score"
    id: int | None = Field(default=None, primary_key=True)
    recording_id: int = Field(foreign_key="recording.id", index=True)
    version: int = 1
    supersedes_id: int | None = Field(default=None, foreign_key="qa_score.id")
    superseded: bool = Field(default=False, index=True)  # the one flag a new version sets on the old
    reason: str = Field(default="", max_length=500)
    operator: str = Field(default="", max_length=32, index=True)
    team: str = Field(default="", max_length=32, index=True)
    scorer: str = Field(max_length=64)
    filed_at: datetime = Field(default_factory=utcnow, sa_type=TZ)  # type: ignore[call-overload]
    total: float = 0.0
    max_total: float = 100.0
    marks: dict = Field(default_factory=dict, sa_type=sa.JSON)  # type: ignore[call-overload]
    comment: str = Field(default="", max_length=2000)


class AccessRequest(SQLModel, table=True):
    """A request to hear one recording, or a QA reviewer's duty grant (质检授权: every recording,
    ``recording_id`` None) — approved by someone else, for a limited time."""

    __tablename__ = "recording_access_request"
    id: int | None = Field(default=None, primary_key=True)
    recording_id: int | None = Field(default=None, foreign_key="recording.id", index=True)
    scope: str = Field(default="recording", max_length=16)  # recording | duty
    username: str = Field(max_length=64, index=True)
    role: str = Field(max_length=16)
    reason: str = Field(max_length=500)
    state: str = Field(default="pending", max_length=16, index=True)  # pending|approved|refused
    decided_by: str = Field(default="", max_length=64)
    decided_at: datetime | None = _dt()
    expires_at: datetime | None = _dt()
    created_at: datetime = Field(default_factory=utcnow, sa_type=TZ)  # type: ignore[call-overload]


class AccessLog(SQLModel, table=True):
    """Every play, download, refusal and purge: who, when, what."""

    __tablename__ = "recording_access_log"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=TZ, index=True)  # type: ignore[call-overload]
    username: str = Field(max_length=64, index=True)
    role: str = Field(max_length=16)
    recording_id: int | None = Field(default=None, index=True)
    leg: str = Field(default="", max_length=16)
    # play|download|waveform|denied|purge|request|approve|refuse|export|damaged|missing|repaired
    action: str = Field(max_length=16)
    allowed: bool = True
    detail: str = Field(default="", max_length=500)
    client: str = Field(default="", max_length=64)


OURS = {
    "recording", "recording_file", "recording_job", "recording_job_run", "recording_transcript",
    "qa_check_item", "qa_score", "recording_access_request", "recording_access_log", "recording_orphan",
    "recording_live_leg",
}


class LiveLeg(SQLModel, table=True):
    """One leg of a call as the live transcript heard it (issue #16): its settled sentences and
    words, written as each sentence settles, so a node that dies loses at most the sentence in hand.
    ``state``: listening, complete (every second it was sent was recognised: the post-call
    transcription takes its words instead of hearing the leg again), dropped (fell behind).
    ``part``: a speaker's n-th leg of the call (the operator the citizen was transferred to is 2)."""

    __tablename__ = "recording_live_leg"
    __table_args__ = (sa.UniqueConstraint("call_id", "speaker", "part", name="uq_recording_live_leg_part"),)
    id: int | None = Field(default=None, primary_key=True)
    call_id: str = Field(max_length=64, index=True)
    speaker: str = Field(max_length=16)
    part: int = Field(default=1, sa_column_kwargs={"server_default": "1"})  # 2: the operator after a transfer
    seat: str = Field(default="", max_length=32)
    node: str = Field(default="", max_length=100)
    model: str = Field(default="", max_length=200)
    state: str = Field(default="listening", max_length=16)
    started_at: datetime = Field(default_factory=utcnow, sa_type=TZ)  # type: ignore[call-overload]
    audio_s: float = 0.0
    lines: list = Field(default_factory=list, sa_type=sa.JSON)  # type: ignore[call-overload]
    words: list = Field(default_factory=list, sa_type=sa.JSON)  # type: ignore[call-overload]

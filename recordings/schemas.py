"""Request bodies and response shapes of the recordings / QA API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field


class AccessRequestIn(BaseModel):
    recording_id: int | None = Field(None, ge=1, le=2**31 - 1)  # None: a QA duty grant (every recording)
    reason: str = Field(min_length=1, max_length=500)


class MarkIn(BaseModel):
    points: float
    comment: str = Field("", max_length=500)


class ScoreIn(BaseModel):
    recording_id: int = Field(ge=1, le=2**31 - 1)
    marks: dict[str, MarkIn]
    comment: str = Field("", max_length=2000)
    supersedes: int | None = Field(None, ge=1, le=2**31 - 1)  # a correction names the version it replaces…
    reason: str = Field("", max_length=500)  # …and says why


class WeightsIn(BaseModel):
    weights: dict[str, int]


def _utc(dt: datetime | None) -> str | None:
    # SQLite hands back naive UTC: say so, or browsers read it as their local time
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).isoformat() if dt else None


def recording_out(rec: Any, files: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": rec.id, "base": rec.base, "uniqueid": rec.uniqueid, "seat": rec.seat, "operator": rec.operator,
        "caller_num": rec.caller_num, "ticket_id": rec.ticket_id, "survey": rec.survey,
        "started_at": _utc(rec.started_at), "status": rec.status,
        "problem": rec.problem, "duration_s": rec.duration_s,
        "files": {leg: {"size_bytes": f.size_bytes, "duration_s": f.duration_s, "sha256": f.sha256,
                        "sha256_source": f.sha256_source, "status": f.status, "problem": f.problem,
                        "checked_at": _utc(f.checked_at), "damaged_at": _utc(f.damaged_at)}
                  for leg, f in files.items()},
    }

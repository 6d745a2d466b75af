"""A finished call: the one shape every room uses for it.

The CTI bridge builds it when the citizen's channel is gone (``cti.domain.CallCompleted``
carries it on the bus); the call log (``ticketing.calls.CallLog``) is its one writer and gives
it back for the bridge's rolling figures after a restart; the recordings catalog files the
call's recording under the operator's job number from it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

SURVEY_LABELS = {1: "满意", 2: "基本满意", 3: "不满意"}  # the IVR survey's keys


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishedCall:
    """Times are epoch seconds (Asterisk's clock), waits milliseconds (DESIGN.md §3)."""

    call_id: str  # the citizen channel's Uniqueid: one id across every leg
    caller_num: str
    offered_at: float  # joined its first queue (or reached the hotline, if it never queued)
    ended_at: float
    caller_name: str = ""
    queue: str = ""
    seats_rung: tuple[str, ...] = ()
    seat: str = ""  # the seat that answered ("" if nobody)
    operator: str = ""  # the account signed in at that seat when it answered
    job_number: str = ""  # its 工号: told to the caller, and what QA files the recording under
    answered_at: float | None = None
    wait_ms: int | None = None  # queue join → answer, or → abandon
    within_rule: bool = False  # answered within the 15 s rule
    talk_s: float = 0.0  # answered → the seat hung up, time on hold included
    hold_s: float = 0.0  # 保持: time the citizen spent on hold
    abandoned: bool = False
    lost: bool = False  # Asterisk stopped under it, or forgot it while the bridge was away
    transferred_to: str = ""
    conference: str = ""
    recordings: tuple[str, ...] = ()  # MixMonitor's file names
    recording_base: str = ""  # HL_RECBASE: <base>.wav, <base>-in.wav (citizen), <base>-out.wav (operator)
    location: str = ""  # HL_LOCATION from the AGI lookup
    survey: int | None = None  # 1 满意, 2 基本满意, 3 不满意
    callback_requested: bool = False
    reconstructed: bool = False  # rebuilt from Asterisk's own records: the bridge did not see it

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    def yields_to(self, stored: FinishedCall) -> bool:
        """Whether this report of a call must not replace ``stored``, the one already logged.

        Two witnesses may report one call, in either order (the bridge's report can wait in the
        outbox while Asterisk's is rebuilt): what the bridge saw beats a reconstruction (it knows
        the operator, the hold, the transfer), and a call Asterisk saw end beats the bridge's
        ``lost`` (the bridge was away when it ended)."""
        if self.reconstructed and not stored.reconstructed and not stored.lost:
            return True
        return self.lost and stored.reconstructed and not stored.lost

    def as_record(self) -> dict[str, Any]:
        """JSON-ready (the call log's outbox keeps pending calls on disk in this form): ``asdict``'s
        result, without its deep copy (every field is a number, a string or a tuple of strings), which
        was a tenth of filing a call on the bridge's node."""
        return {f.name: getattr(self, f.name) for f in _FIELDS}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> FinishedCall:
        """Back from :meth:`as_record` (fields it does not know are left out: an older outbox entry
        still reads)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in record.items() if k in known}
        for name in ("seats_rung", "recordings"):
            values[name] = tuple(values.get(name) or ())
        return cls(**values)


_FIELDS = fields(FinishedCall)

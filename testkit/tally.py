"""Nothing lost: the calls SIPp placed, laid one by one beside what the hotline kept of them.

For every number of the ledger (testkit/traffic.py): did Asterisk answer it, did a seat, is it in
``/api/calls`` (asked as a signed-in lead, like any client), once, marked lost or reconstructed;
does an answered call have its recording with all three legs (mixed, citizen, operator) stored
and checked; is each recording transcribed exactly once (one job, done, one finished claim, one
transcript). And how many calls Asterisk's own records hold (:func:`calls_in_asterisk_records`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from cti.witness import Witness
from hotline.settings import Settings
from testkit.traffic import Call


def api_calls(url: str, headers: dict[str, str], since: datetime) -> list[dict[str, Any]]:
    """Every ``/api/calls`` row offered since ``since``, page by page."""
    rows: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        while True:
            r = client.get("/api/calls", params={"since": since.astimezone(UTC).isoformat(), "limit": 1000,
                                                 "offset": len(rows)})
            r.raise_for_status()
            page = r.json()
            rows += page
            if len(page) < 1000:
                return rows


def calls_in_asterisk_records(settings: Settings, numbers: set[str]) -> int | None:
    """How many of these numbers' calls Asterisk's own records hold (its CEL, read by the product's
    own reader, cti/witness.py); None when there are none to read."""
    folder = settings.asterisk_events_dir
    files = [*sorted(folder.glob("*.json.old")), *sorted(folder.glob("*.json"))] if folder.is_dir() else []
    if not files:
        return None
    witness = Witness()
    for path in files:
        witness.feed_lines(path.read_bytes().splitlines())
    ended = witness.finished(float("inf"))
    cut = [c for c in map(witness.rebuild_unfinished, witness.unfinished(float("inf"))) if c is not None]
    return len({c.call_id for c in [*ended, *cut] if c.caller_num in numbers})


@dataclass
class Tally:
    """The counts, and each call that breaks a rule (by number or recording) for the report."""

    placed: int = 0  # SIPp started the call
    reached: int = 0  # Asterisk answered it (the hotline's Answer())
    seated: int = 0  # a seat answered it
    ended: int = 0  # it ended as scripted (SIPp's view)
    logged: int = 0  # rows in /api/calls for the ledger's numbers
    logged_answered: int = 0
    logged_lost: int = 0  # rows the bridge closed as lost (it did not see them end)
    reconstructed: int = 0  # rows rebuilt from Asterisk's own records
    in_asterisk_records: int | None = None
    recordings: int = 0  # stored recordings of these calls, all three legs ok
    whole: set[str] = field(default_factory=set)  # placed, seat answered, logged answered once, recording ok
    transcribed_once: int = 0
    missing: list[str] = field(default_factory=list)  # Asterisk answered, the call log has no row
    never_reached: list[str] = field(default_factory=list)  # placed, Asterisk never answered
    doubled: list[str] = field(default_factory=list)  # more than one row for one number
    phantom: list[str] = field(default_factory=list)  # a row for a number nobody called
    seated_not_answered: list[str] = field(default_factory=list)  # a seat answered; the row says nobody did
    without_recording: list[str] = field(default_factory=list)  # answered row, no complete recording
    cut: list[str] = field(default_factory=list)  # lost: Asterisk stopped before the bridge, every leg empty
    recording_states: Counter[str] = field(default_factory=Counter)
    not_transcribed: list[str] = field(default_factory=list)  # recording ok, its job not done (yet)
    transcribed_twice: list[str] = field(default_factory=list)  # more than one finished claim
    without_job: list[str] = field(default_factory=list)
    jobs: Counter[str] = field(default_factory=Counter)
    spool_left: int = 0  # files still in Asterisk's spool (not yet taken into storage)

    @property
    def lost(self) -> int:
        """Calls placed that did not come through whole: never answered by a seat, or answered
        without a single answered row in the call log and a complete recording."""
        return self.placed - len(self.whole)

    def problems(self, *, strict_calls: bool) -> list[str]:
        """What must not happen; ``strict_calls``: also no call Asterisk had may be missing from the log
        (once Asterisk's own records rebuild what the bridge missed)."""
        out = []
        for name in ("doubled", "phantom", "seated_not_answered", "without_recording", "transcribed_twice",
                     "without_job", "not_transcribed"):
            items = getattr(self, name)
            if items:
                out.append(f"{name}: {len(items)} ({', '.join(items[:8])}{'…' if len(items) > 8 else ''})")
        if strict_calls and self.missing:
            out.append(f"missing from /api/calls: {len(self.missing)} ({', '.join(self.missing[:8])})")
        if self.in_asterisk_records is not None and self.in_asterisk_records != self.logged:
            out.append(f"Asterisk's records hold {self.in_asterisk_records} of these calls, /api/calls {self.logged}")
        return out

    def table(self) -> list[str]:
        rows = [
            ("calls placed by SIPp", self.placed), ("answered by Asterisk", self.reached),
            ("answered by a seat", self.seated), ("ended as scripted", self.ended),
            ("in /api/calls", self.logged), ("  answered", self.logged_answered),
            ("  marked lost by the bridge", self.logged_lost), ("  reconstructed", self.reconstructed),
            ("in Asterisk's records (CEL)", "—" if self.in_asterisk_records is None else self.in_asterisk_records),
            ("Asterisk answered, not in /api/calls", len(self.missing)),
            ("placed, never answered by Asterisk", len(self.never_reached)),
            ("doubled / phantom rows", f"{len(self.doubled)} / {len(self.phantom)}"),
            ("seat answered, row says not", len(self.seated_not_answered)),
            ("recordings stored (3 legs ok)", self.recordings),
            ("answered rows without recording", len(self.without_recording)),
            ("  lost before the bridge (Asterisk stopped; legs empty)", len(self.cut)),
            ("recordings transcribed exactly once", self.transcribed_once),
            ("  not (yet) transcribed / twice / no job",
             f"{len(self.not_transcribed)} / {len(self.transcribed_twice)} / {len(self.without_job)}"),
            ("files left in Asterisk's spool", self.spool_left),
        ]
        width = max(len(k) for k, _ in rows)
        return [f"{k.ljust(width)}  {v}" for k, v in rows]


def tally(settings: Settings, ledger: dict[str, Call], rows: list[dict[str, Any]]) -> Tally:
    """Lay the ledger beside the call log rows, the recordings catalog and the transcription queue."""
    t = Tally()
    calls = list(ledger.values())
    t.placed = sum(1 for c in calls if c.placed)
    t.reached = sum(1 for c in calls if c.answered)
    t.seated = sum(1 for c in calls if c.seat)
    t.ended = sum(1 for c in calls if c.ended)
    by_number: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_number.setdefault(str(r["caller"]), []).append(r)
    t.phantom = sorted(n for n in by_number if n not in ledger)
    t.doubled = sorted(n for n, rs in by_number.items() if len(rs) > 1)
    mine = [r for n, rs in by_number.items() if n in ledger for r in rs]
    t.logged = len(mine)
    t.logged_answered = sum(1 for r in mine if r.get("answered"))
    t.logged_lost = sum(1 for r in mine if r.get("lost"))
    t.reconstructed = sum(1 for r in mine if r.get("reconstructed"))
    t.missing = sorted(c.number for c in calls if c.answered and c.number not in by_number)
    t.never_reached = sorted(c.number for c in calls if c.placed and not c.answered)
    t.seated_not_answered = sorted(c.number for c in calls if c.seat and c.number in by_number
                                   and not any(r.get("answered") for r in by_number[c.number]))
    t.in_asterisk_records = calls_in_asterisk_records(settings, {c.number for c in calls if c.placed})
    recorded = _recordings(settings, t, [r for r in mine if r.get("answered")])
    t.whole = {c.number for c in calls if c.placed and c.seat and c.number in recorded
               and len(by_number[c.number]) == 1 and by_number[c.number][0].get("answered")}
    return t


def _recordings(settings: Settings, t: Tally, answered: list[dict[str, Any]]) -> set[str]:
    """Fill the recording and transcription counts; the numbers whose call has a complete recording."""
    engine = sa.create_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            recs = {r.uniqueid: r for r in conn.execute(sa.text("SELECT id, uniqueid, status, problem FROM recording"))}
            legs = Counter(rid for (rid,) in conn.execute(sa.text(
                "SELECT recording_id FROM recording_file WHERE status = 'ok'")))
            audio = dict(conn.execute(sa.text(
                "SELECT recording_id, max(duration_s) FROM recording_file GROUP BY recording_id")).all())
            jobs = {j.recording_id: j for j in conn.execute(sa.text(
                "SELECT id, recording_id, state FROM recording_job"))}
            finished = Counter(jid for (jid,) in conn.execute(sa.text(
                "SELECT job_id FROM recording_job_run WHERE outcome = 'done'")))
            transcripts = {rid for (rid,) in conn.execute(sa.text("SELECT recording_id FROM recording_transcript"))}
    finally:
        engine.dispose()
    t.recording_states = Counter(r.status for r in recs.values())
    t.jobs = Counter(j.state for j in jobs.values())
    recorded = set()
    for row in answered:
        rec = recs.get(str(row["id"]))
        if rec is None or rec.status != "ok" or legs[rec.id] < 3:
            why = f"{row['caller']}:{f'{rec.status} {rec.problem}' if rec else 'none'}"
            # Asterisk stopped under it before the two were bridged (the job-number announcement): the bridge
            # closed it as lost and MixMonitor had nothing to write (every leg empty)
            cut = row.get("lost") and rec is not None and not audio.get(rec.id)
            (t.cut if cut else t.without_recording).append(why)
            continue
        t.recordings += 1
        recorded.add(str(row["caller"]))
    for rec in recs.values():
        if rec.status != "ok":
            continue
        job = jobs.get(rec.id)
        if job is None:
            t.without_job.append(str(rec.uniqueid))
        elif finished[job.id] > 1:
            t.transcribed_twice.append(str(rec.uniqueid))
        elif job.state != "done" or finished[job.id] != 1 or rec.id not in transcripts:
            t.not_transcribed.append(f"{rec.uniqueid}:{job.state}")
        else:
            t.transcribed_once += 1
    spool = settings.recordings_spool
    t.spool_left = sum(1 for _ in spool.glob("*.wav")) if spool.is_dir() else 0
    return recorded


def backlog(settings: Settings) -> dict[str, int]:
    """Transcription jobs per state now."""
    engine = sa.create_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            return dict(Counter({s: n for s, n in conn.execute(sa.text(
                "SELECT state, count(*) FROM recording_job GROUP BY state"))}))
    except sa.exc.OperationalError:  # not migrated yet
        return {}
    finally:
        engine.dispose()


def outbox_pending(settings: Settings) -> int:
    folder: Path = settings.call_outbox_dir
    return sum(1 for _ in folder.glob("*.json")) if folder.is_dir() else 0

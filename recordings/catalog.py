"""The recordings catalog: register finished calls' files, move them out of Asterisk's spool into
storage, check them, queue them for transcription, and purge them when retention ends.

Two ways in, so nothing is lost: :func:`register_call` with the finished call the CTI's
``CallCompleted`` carries (it knows seat, operator and job number, caller and survey) and
:func:`collect`, a scan of the spool that finishes what the event announced and adopts any
finished recording nobody announced (the call log, when given, still knows its seat and
operator). MixMonitor closes its files a moment after hang-up, so files are taken only once they
have stopped changing. The call log (``ticketing.calls.CallLog``) is read through its public
methods only.

Crash-safe in every order (issue #14): a file is placed in storage (a hard link, or a copy made
durable) while it stays in the spool, the catalog commits, and only then the spool's name goes. A
crash before the commit leaves the spool as it was (the next scan places it again, over the
partial copy); a crash after it leaves a spool file identical to the stored one, which the next
scan recognises by its checksum and removes. A different file under a stored name is set aside.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, select

from hotline.calls import FinishedCall
from hotline.db import in_chunks
from recordings.integrity import FileInfo, inspect, restore, settle, sha256_of
from recordings.models import LEG_NAMES, LEGS, SUFFIX, AccessLog, Recording, RecordingFile, TranscriptionJob, utcnow

if TYPE_CHECKING:
    from ticketing.calls import CallLog

log = logging.getLogger("recordings.catalog")
retention_log = logging.getLogger("recordings.retention")

# hotline-20261123-024701-1763866021.42 (queue calls), callback-… (callbacks from the seats)
# the uid: Asterisk's uniqueid, "<second>.<counter>", or "<systemname>-<second>.<counter>" on a server
# that names itself (one centre, several servers: HOTLINE_ASTERISK_SYSTEMNAME)
BASE_RE = re.compile(r"^(?P<kind>[a-z]+)-(?P<date>\d{8})-(?P<time>\d{6})-(?P<uid>(?:[A-Za-z0-9]+-)?\d+\.\d+)$")
SETTLE_S = 2.0  # a file of an ended call unchanged this long is closed by MixMonitor
ORPHAN_SETTLE_S = 120.0  # without the call's end event, wait longer (the call may be on hold)
MISSING_AFTER_S = 600.0  # an announced recording whose files never came is flagged missing


def storage_dir(settings: Any) -> Path:
    return Path(settings.recordings_dir) if settings.recordings_dir else Path(settings.var_dir) / "recordings"


def spool_dir(settings: Any) -> Path:
    """Asterisk's monitor folder as seen from the host (inside the chroot by default)."""
    from hotline.asterisk.render import directories, host_path

    return host_path(settings, directories(settings)["spool"]) / "monitor"


def base_of(name: str) -> str:
    """The recording base of a file name or path.

    >>> base_of("/var/spool/asterisk/monitor/hotline-20261123-024701-1763866021.42-in.wav")
    'hotline-20261123-024701-1763866021.42'
    """
    stem = Path(name).name.removesuffix(".wav")
    for suffix in ("-in", "-out"):
        stem = stem.removesuffix(suffix)
    return stem


def is_message(base: str) -> bool:
    """A voice message (留言, agi's closed flow) rather than a call: one leg, nobody answered.

    >>> is_message("message-20261123-024701-1795401830.42"), is_message("hotline-20261123-024701-1.2")
    (True, False)
    """
    return base.startswith("message-")


def legs_of(base: str) -> tuple[str, ...]:
    """The files a recording has: a call's three, a voice message (留言) only the citizen's.

    >>> legs_of("message-20261123-024701-1795401830.42"), legs_of("hotline-20261123-024701-1.2")
    (('citizen',), ('mixed', 'citizen', 'operator'))
    """
    return ("citizen",) if is_message(base) else LEGS


def uniqueid_of(base: str) -> str:
    """The call's uniqueid (HL_UID) is the tail of the base.

    >>> uniqueid_of("hotline-20261123-024701-1763866021.42"), uniqueid_of("odd-name")
    ('1763866021.42', '')
    >>> uniqueid_of("hotline-20261123-024701-ast2-1763866021.42")
    'ast2-1763866021.42'

    """
    m = BASE_RE.match(base)
    return m.group("uid") if m else ""


def started_of(base: str) -> datetime | None:
    # a uniqueid is "[<systemname>-]<epoch of the channel's creation>.<counter>": the call's start, in UTC
    uid = uniqueid_of(base)
    return datetime.fromtimestamp(int(uid.rpartition("-")[2].split(".")[0]), UTC) if uid else None


def operator_of(settings: Any, seat: str, job_number: str = "") -> str:
    """The job number the recording is filed under: the one of whoever answered, else the seat's
    from the setting ``agi_job_numbers`` (as the AGI announces it), else the seat itself."""
    return job_number or dict(getattr(settings, "agi_job_numbers", {}) or {}).get(seat, seat)


# ------------------------------------------------------------------ registration


def register_call(engine: sa.Engine, settings: Any, call: FinishedCall, calls: CallLog | None = None) -> int | None:
    """Record what the CTI knows of a finished call; the files are taken by :func:`collect` once
    MixMonitor has closed them. Returns the recording's id (None: nothing was recorded)."""
    return register_calls(engine, settings, [call], calls)[0]


def register_calls(engine: sa.Engine, settings: Any, finished: Sequence[FinishedCall],
                   calls: CallLog | None = None) -> list[int | None]:
    """:func:`register_call` for a burst of finished calls, in one transaction (the ids, in order)."""
    known = [_known(c) for c in finished]
    ids = _register(engine, settings, calls, [k for k in known if k is not None])
    return [ids[k.base] if k is not None else None for k in known]


def _known(call: FinishedCall) -> _Known | None:
    base = call.recording_base or (base_of(call.recordings[0]) if call.recordings else "")
    if not base:
        return None  # unanswered: nothing was recorded
    return _Known(base, call.call_id, call.seat, call.job_number, call.caller_num, call.survey)


def register_outbound(engine: sa.Engine, settings: Any, *, base: str, call_id: str, seat: str, job_number: str,
                      number: str, calls: CallLog | None = None) -> int | None:
    """Record what the CTI knows of a call out that ended (回拨 / 回访, ``cti.domain.OutboundEnded``):
    the seat and job number that dialled it, the number called, the ticket the console linked it to.
    Without it the spool scan still adopts the files, later, with the ticket but not the operator."""
    if not base:
        return None
    return _register(engine, settings, calls, [_Known(base, call_id, seat, job_number, number, None)])[base]


@dataclass(frozen=True, slots=True)
class _Known:
    """What the CTI knows of one recording when its call ends."""

    base: str
    call_id: str
    seat: str
    job_number: str
    caller_num: str
    survey: int | None


def _register(engine: sa.Engine, settings: Any, calls: CallLog | None, known: list[_Known]) -> dict[str, int | None]:
    if not known:
        return {}
    try:
        return _upsert(engine, settings, calls, known)
    except sa.exc.IntegrityError:
        # another writer made a row between our read and our insert (two reports of one call
        # filed at once, or the spool scan): it is there now, so this is an update
        return _upsert(engine, settings, calls, known)


def _upsert(engine: sa.Engine, settings: Any, calls: CallLog | None, known: list[_Known]) -> dict[str, int | None]:
    with Session(engine) as session:
        q = select(Recording).where(Recording.base.in_(sorted({k.base for k in known})))  # type: ignore[attr-defined]
        rows = {r.base: r for r in session.exec(q)}
        for k in known:
            rec = rows.get(k.base)
            if rec is None:
                rec = rows[k.base] = Recording(base=k.base, started_at=started_of(k.base))
            rec.uniqueid = k.call_id or uniqueid_of(k.base)
            rec.seat = k.seat
            rec.operator = operator_of(settings, k.seat, k.job_number) if k.seat else rec.operator
            rec.caller_num = k.caller_num
            rec.survey = str(k.survey) if k.survey is not None else rec.survey
            session.add(rec)
        untied = [r for r in rows.values() if r.ticket_id is None]
        if untied and calls is not None:
            tickets = calls.tickets_of([r.uniqueid for r in untied])
            for rec in untied:
                rec.ticket_id = tickets.get(rec.uniqueid)
        session.flush()
        ids = {base: rec.id for base, rec in rows.items()}  # before the commit expires them: no read back each
        session.commit()
        return ids


def collect(engine: sa.Engine, settings: Any, now: float | None = None, calls: CallLog | None = None) -> list[int]:
    """Take every finished recording from the spool into storage; flag announced ones whose files
    never came. Returns the ids stored. Never raises for a bad file."""
    now = time.time() if now is None else now
    spool = spool_dir(settings)
    stored: list[int] = []
    groups: dict[str, list[Path]] = {}
    if spool.is_dir():
        for path in spool.glob("*.wav"):
            groups.setdefault(base_of(path.name), []).append(path)
    with Session(engine) as session:
        announced = _pending_among(session, sorted(groups))
    for base, paths in sorted(groups.items()):
        # a voice message's file is written until the caller stops: unchanged a moment means done
        settle = SETTLE_S if base in announced or is_message(base) else ORPHAN_SETTLE_S
        try:
            newest = max(p.stat().st_mtime for p in paths)
        except FileNotFoundError:
            continue  # moved meanwhile by another collector
        if now - newest < settle:
            continue
        try:
            rid = store(engine, settings, base, spool, calls)
        except Exception:  # one bad recording must not stop the others
            log.exception("could not store recording %s", base)
            continue
        if rid is not None:
            stored.append(rid)
    cutoff = datetime.fromtimestamp(now - MISSING_AFTER_S, UTC)
    with Session(engine) as session:
        # only what waited past the cutoff: a scan every few seconds on the bridge's node must not load
        # every recording still to come (a burst's worth, or all of them while the files do not come)
        for rec in session.exec(select(Recording).where(Recording.status == "pending",
                                                        Recording.registered_at < cutoff)):  # type: ignore[operator]
            if rec.base not in groups:
                rec.status, rec.problem = "missing", "通话结束后未找到录音文件"
                session.add(rec)
                log.warning("recording %s announced but never written", rec.base)
        session.commit()
    return stored


def _pending_among(session: Session, bases: list[str]) -> set[str]:
    """Which of ``bases`` (the spool's) the catalog announced and waits for: asked by name, in
    chunks under the database's limit on parameters, not by reading every pending recording."""
    found: set[str] = set()
    for chunk in in_chunks(bases):
        found.update(session.exec(select(Recording.base).where(
            Recording.status == "pending", Recording.base.in_(chunk))))  # type: ignore[attr-defined]
    return found


def store(engine: sa.Engine, settings: Any, base: str, spool: Path, calls: CallLog | None = None) -> int | None:
    """Move one recording's files from ``spool`` into storage, check them and queue the job."""
    with Session(engine) as session:
        rec = session.exec(select(Recording).where(Recording.base == base)).first()
        if rec is not None and rec.status not in ("pending",):
            _leftovers(session, settings, rec, spool)
            return None
        if rec is None:
            rec = Recording(base=base, uniqueid=uniqueid_of(base), started_at=started_of(base))
            _adopt_call_log(settings, rec, calls)
        day = rec.started_at or utcnow()
        dest_dir = storage_dir(settings) / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
        dest_dir.mkdir(parents=True, exist_ok=True)
        infos: dict[str, tuple[Path, FileInfo]] = {}
        placed: list[Path] = []
        for leg in legs_of(base):
            src = spool / f"{base}{SUFFIX[leg]}.wav"
            dest = dest_dir / src.name
            if src.exists():
                _place(src, dest)  # the spool keeps its name until the catalog has committed
                placed.append(src)
            infos[leg] = (dest, inspect(dest))
        session.add(rec)
        session.flush()
        now = utcnow()
        for leg, (dest, info) in infos.items():
            f = session.exec(select(RecordingFile).where(RecordingFile.recording_id == rec.id,
                                                         RecordingFile.leg == leg)).first()
            f = f or RecordingFile(recording_id=rec.id, leg=leg)
            f.path, f.size_bytes, f.duration_s = str(dest), info.size_bytes, info.duration_s
            f.sha256, f.status, f.problem = info.sha256, info.status, info.problem
            # the checksum every later read is compared with (recordings/integrity.py)
            f.sha256_source, f.checked_at, f.damaged_at = ("catalog" if info.sha256 else ""), now, None
            session.add(f)
        session.flush()
        settle(session, rec)
        problems = rec.status != "ok"
        rec.duration_s = max(info.duration_s for _, info in infos.values())
        queued = session.exec(select(TranscriptionJob).where(TranscriptionJob.recording_id == rec.id)).first()
        if queued is None and any(infos[leg][1].status == "ok" for leg in ("citizen", "operator") if leg in infos):
            session.add(TranscriptionJob(recording_id=rec.id))
        session.add(rec)
        session.commit()
        for src in placed:  # committed: the spool's names may go now
            src.unlink(missing_ok=True)
        if problems:
            log.warning("recording %s stored with problems: %s", base, rec.problem)
        return rec.id


def _place(src: Path, dest: Path) -> None:
    """``dest`` becomes ``src``'s content, durably, and ``src`` stays: a hard link on one file
    system, else a copy fsync'd and renamed into place (storage on a share)."""
    dest.unlink(missing_ok=True)  # a partial copy of an attempt that crashed
    try:
        dest.hardlink_to(src)
        return
    except OSError:
        pass
    tmp = dest.with_name(f".{dest.name}.part")
    shutil.copyfile(src, tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, dest)


def _leftovers(session: Session, settings: Any, rec: Recording, spool: Path) -> None:
    """Spool files under an already stored recording's name: the same bytes as stored (a crash
    after the commit, before the spool was cleared) are removed — unless the stored copy has gone
    or changed since, when this one is put back in its place first; anything else is set aside,
    never over the stored file, for a person to look at."""
    stored = {f.leg: f for f in session.exec(select(RecordingFile).where(RecordingFile.recording_id == rec.id))}
    aside = storage_dir(settings) / "duplicates" / f"{int(time.time())}"
    for leg in legs_of(rec.base):
        src = spool / f"{rec.base}{SUFFIX[leg]}.wav"
        if not src.exists():
            continue
        f = stored.get(leg)
        if f is not None and f.sha256 and f.path and f.status != "purged" and sha256_of(src) == f.sha256:
            dest = Path(f.path)
            if not dest.exists() or sha256_of(dest) != f.sha256:  # the only good copy left: keep it
                if dest.exists():  # the changed one is evidence: set aside, not overwritten
                    aside.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(dest), str(aside / f"damaged-{dest.name}"))
                dest.parent.mkdir(parents=True, exist_ok=True)
                _place(src, dest)
                restore(session, f, str(dest), f"已从 Asterisk 录音目录中的原样副本恢复：{dest.name}")
            src.unlink()
            log.info("recording %s: the spool's copy of %s was already stored; removed", rec.base, leg)
            continue
        aside.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), str(aside / src.name))
        log.warning("recording %s was in the spool again, different; set aside in %s", rec.base, aside)


def _adopt_call_log(settings: Any, rec: Recording, calls: CallLog | None) -> None:
    # no event reached us: the call log may still know the call (its seat, who answered, its ticket)
    call = calls.get(rec.uniqueid) if calls is not None and rec.uniqueid else None
    if call is not None:
        rec.caller_num, rec.survey = call.caller_num, str(call.survey) if call.survey is not None else ""
        if call.seat:
            rec.seat, rec.operator = call.seat, operator_of(settings, call.seat, call.job_number)
    if calls is not None:
        rec.ticket_id = calls.ticket_of(rec.uniqueid)


def ids_of(engine: sa.Engine, bases: Iterable[str]) -> dict[str, int]:
    """Recording ids by base, for the bases already in the catalog."""
    wanted = sorted(set(bases))
    if not wanted:
        return {}
    with Session(engine) as session:
        rows = session.exec(select(Recording.base, Recording.id).where(Recording.base.in_(wanted)))  # type: ignore[attr-defined]
        return {base: rid for base, rid in rows if rid is not None}


def leg_name(leg: str) -> str:
    return LEG_NAMES.get(leg, leg)


def paths(engine: sa.Engine, recording_id: int) -> dict[str, RecordingFile]:
    with Session(engine) as session:
        return {f.leg: f for f in session.exec(select(RecordingFile).where(RecordingFile.recording_id == recording_id))}


def purge(engine: sa.Engine, settings: Any, now: datetime | None = None) -> list[str]:
    """Delete the audio of recordings older than the retention period (metadata, transcript and
    scores stay); each purge is logged and written to the access log as ``system``."""
    now = now or utcnow()
    cutoff = now - timedelta(days=settings.recordings_retention_days)
    purged: list[str] = []
    with Session(engine) as session:
        old = session.exec(select(Recording).where(Recording.status != "purged", Recording.started_at < cutoff))
        for rec in old:
            files = session.exec(select(RecordingFile).where(RecordingFile.recording_id == rec.id))
            for f in files:
                Path(f.path).unlink(missing_ok=True) if f.path else None
                f.status = "purged"
                session.add(f)
            rec.status, rec.purged_at = "purged", now
            session.add(rec)
            session.add(AccessLog(username="system", role="system", recording_id=rec.id, action="purge",
                                  detail=f"超过保存期限 {settings.recordings_retention_days} 天"))
            retention_log.info("purged recording %s (started %s)", rec.base, rec.started_at)
            purged.append(rec.base)
        session.commit()
    return purged


def known_bases(engine: sa.Engine) -> Iterable[str]:
    with Session(engine) as session:
        return [r.base for r in session.exec(select(Recording))]

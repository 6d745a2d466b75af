"""A recording's files are what was stored, or they are not served (issue #14: nothing lost).

The catalog takes every file's SHA-256 as it stores it (:func:`inspect`). Every read a person or
a worker meets compares the bytes with it first: the audio route (each play, range and download)
and the waveform through :func:`checked_path`, the transcription worker through
:func:`read_checked`, the sweep (recordings/sweep.py) through :func:`recheck`. A file that is gone
or changed is marked in the catalog (the file and its recording: ``missing`` / ``corrupt``, with
``damaged_at``), written to the access log (``damaged`` / ``missing``, the audit page shows it) and
to the log, and :class:`Unreadable` says so in Chinese; its bytes never go out. A row catalogued
without a checksum (before checksums were kept) gets one at its first check, once
(``sha256_source = 'late'``).

What it costs. Hashing is the price: SHA-256 reads ≈ 1.3 GB/s on the 2-vCPU box (a 20 MB leg,
about 10 minutes of call, in ≈ 15 ms from the page cache; from a cold disk the disk's read speed
decides). A player seeks with many range requests; hashing the whole file for each would read
20 MB to send 64 KB. So a verified file is remembered per process by what the file system says of
it — device, inode, size, mtime and ctime (:class:`Verified`) — and a range request on a file
unchanged since costs one ``stat`` (≈ 2 µs) and a dict lookup. Anything written through the file
system changes the ctime, which nobody can set back; a fault under the file system (bit rot)
changes nothing the ``stat`` sees, so a remembered verdict is hashed again after
:data:`REVERIFY_S`, and the sweep re-reads every stored file in turn.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import wave
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, select

from recordings.models import LEG_NAMES, LEGS, AccessLog, Recording, RecordingFile, TranscriptionJob, utcnow

log = logging.getLogger("recordings.integrity")

BLOCK = 1 << 20
REVERIFY_S = 600.0  # a remembered verdict is hashed again after this long (bit rot keeps the mtime)
REMEMBERED = 4096  # files remembered per process (≈ 200 bytes each)
UNREADABLE = "录音文件不可用："  # how a job parked for a damaged file begins its error (a repair re-queues it)


def _digest(path: str | os.PathLike[str], keep: bool = False) -> tuple[str, bytes]:
    digest, kept = hashlib.sha256(), []
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(BLOCK), b""):
            digest.update(block)
            if keep:
                kept.append(block)
    return digest.hexdigest(), b"".join(kept)


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks: the one place a file's checksum is computed
    (the catalog, every read, the sweep, and ``hotline backup`` use it).

    >>> sha256_of(os.devnull)
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    return _digest(path)[0]


@dataclass(frozen=True, slots=True)
class FileInfo:
    status: str  # ok | missing | corrupt
    size_bytes: int = 0
    duration_s: float = 0.0
    sha256: str = ""
    problem: str = ""


def inspect(path: Path) -> FileInfo:
    """Size, duration and checksum of one wav; a missing or unreadable file is said, not raised."""
    if not path.exists():
        return FileInfo("missing", problem="文件不存在")
    size = path.stat().st_size
    digest = sha256_of(path)
    try:
        with wave.open(str(path)) as w:
            frames, rate = w.getnframes(), w.getframerate()
            if w.getsampwidth() != 2 or w.getnchannels() != 1:
                return FileInfo("corrupt", size, 0.0, digest, "不是 16 位单声道 wav")
    except (wave.Error, EOFError, OSError) as exc:
        return FileInfo("corrupt", size, 0.0, digest, f"无法读取：{exc}"[:500])
    if frames == 0 or rate <= 0:
        return FileInfo("corrupt", size, 0.0, digest, "录音为空")
    return FileInfo("ok", size, round(frames / rate, 3), digest)


def identity(st: os.stat_result) -> tuple[int, ...]:
    """What the file system says of a file that changes whenever its bytes are written through it."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class Verified:
    """Files whose bytes matched their checksum, remembered by :func:`identity` for ``ttl_s``
    (least recently used forgotten first). Thread-safe: the web app's routes run in a pool. A lock
    per stripe of paths makes two requests for one unverified file hash it once, not twice."""

    def __init__(self, size: int = REMEMBERED, ttl_s: float = REVERIFY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self.ttl_s, self.clock = size, ttl_s, clock
        self.hashes = 0  # files hashed through this cache (the cost, for tests and the curious)
        self._seen: OrderedDict[str, tuple[tuple[int, ...], str, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._stripes = [threading.Lock() for _ in range(64)]

    def stripe(self, path: str) -> threading.Lock:
        return self._stripes[hash(path) % len(self._stripes)]

    def knows(self, path: str, sha256: str, ident: tuple[int, ...]) -> bool:
        with self._lock:
            seen = self._seen.get(path)
            if seen is None or seen[0] != ident or seen[1] != sha256 or self.clock() - seen[2] > self.ttl_s:
                return False
            self._seen.move_to_end(path)
            return True

    def remember(self, path: str, sha256: str, ident: tuple[int, ...]) -> None:
        with self._lock:
            self._seen[path] = (ident, sha256, self.clock())
            self._seen.move_to_end(path)
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)

    def forget(self, path: str) -> None:
        with self._lock:
            self._seen.pop(path, None)

    def counted(self, path: str, keep: bool = False) -> tuple[str, bytes]:
        with self._lock:
            self.hashes += 1
        return _digest(path, keep)


VERIFIED = Verified()  # this process's


@dataclass(frozen=True, slots=True)
class Reader:
    """Who met the file (for the access log): a person, or the system (worker, sweep)."""

    username: str = "system"
    role: str = "system"
    client: str = ""


SYSTEM = Reader()


class Unreadable(Exception):
    """A recording file that cannot be served as stored: ``state`` is ``missing``, ``corrupt`` or
    ``purged``; the message is for the user (Chinese). It has been marked and logged already."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state


def refusal(f: RecordingFile) -> Unreadable:
    """What a user is told about a file the catalog already holds as not servable."""
    leg = LEG_NAMES.get(f.leg, f.leg)
    if f.status == "purged":
        return Unreadable("purged", "录音已超过保存期限并删除")
    if f.status == "missing":
        return Unreadable("missing", f"录音文件缺失（{leg}），已标记，请联系管理员")
    if f.damaged_at is not None:
        return Unreadable("corrupt", f"录音文件校验失败，已标记损坏，请联系管理员（{leg}）")
    return Unreadable("corrupt", f"录音文件已损坏（{leg}）：{f.problem}")


# ------------------------------------------------------------------ the catalog's view of it


def settle(session: Session, rec: Recording) -> None:
    """The recording's status and problem from its files': ok only if every file is."""
    if rec.status == "purged":
        return
    files = {f.leg: f for f in session.exec(select(RecordingFile).where(RecordingFile.recording_id == rec.id)
                                            .execution_options(populate_existing=True))}  # as stored now
    bad = [files[leg] for leg in LEGS if leg in files and files[leg].status != "ok"]
    statuses = {f.status for f in bad}
    rec.status = "ok" if not bad else ("corrupt" if "corrupt" in statuses else "missing")
    rec.problem = "；".join(f"{LEG_NAMES.get(f.leg, f.leg)}：{f.problem}" for f in bad)[:500]
    session.add(rec)


def mark(session: Session, f: RecordingFile, state: str, problem: str, reader: Reader = SYSTEM,
         cache: Verified = VERIFIED) -> Unreadable:
    """A stored file found gone (``missing``) or changed (``corrupt``): the file and its recording
    marked, the finding on the access log and the log; returns what to tell the user."""
    now = utcnow()
    f.status, f.problem, f.damaged_at, f.checked_at = state, problem[:500], now, now
    session.add(f)
    rec = session.get(Recording, f.recording_id)
    if rec is not None:
        settle(session, rec)
    session.add(AccessLog(username=reader.username, role=reader.role, recording_id=f.recording_id, leg=f.leg,
                          action="damaged" if state == "corrupt" else "missing", allowed=False,
                          detail=problem[:500], client=reader.client[:64]))
    session.commit()
    cache.forget(f.path)
    log.error("recording %s, %s: %s (%s; met by %s)", rec.base if rec else f.recording_id, f.leg, problem, f.path,
              reader.username)
    return refusal(f)


def mismatch(expected: str, found: str) -> str:
    return f"校验失败：入库后文件被改动（入库时 SHA-256 {expected[:12]}…，现为 {found[:12]}…）"


GONE = "入库后文件丢失"


def gone(exc: OSError) -> str:
    """A stored file that cannot be opened: gone, or there and unreadable (permissions, a share
    that went away) — either way its bytes cannot be served."""
    return GONE if isinstance(exc, FileNotFoundError) else f"入库后文件无法读取（{exc.strerror or exc}）"


def restore(session: Session, f: RecordingFile, path: str, how: str, reader: Reader = SYSTEM) -> None:
    """A damaged or missing file whose stored bytes are back (``path`` holds them, checksum
    compared): ok again, logged; a transcription parked because of it goes back to the queue."""
    now = utcnow()
    f.path, f.status, f.problem, f.damaged_at, f.checked_at = path, "ok", "", None, now
    session.add(f)
    rec = session.get(Recording, f.recording_id)
    if rec is not None:
        settle(session, rec)
    session.add(AccessLog(username=reader.username, role=reader.role, recording_id=f.recording_id, leg=f.leg,
                          action="repaired", detail=how[:500], client=reader.client[:64]))
    job = session.exec(select(TranscriptionJob).where(TranscriptionJob.recording_id == f.recording_id)).first()
    if job is not None and rec is not None and rec.status == "ok" and job.state == "parked" \
            and job.error.startswith(UNREADABLE):
        job.state, job.attempts, job.error, job.finished_at, job.token = "queued", 0, "", None, ""
        session.add(job)
    session.commit()
    log.warning("recording %s, %s repaired: %s", rec.base if rec else f.recording_id, f.leg, how)


def _late(session: Session, f: RecordingFile, reader: Reader) -> str:
    """A row catalogued without a checksum: take it now, once, from the file as it is (if it is a
    readable recording at all). Returns the checksum."""
    try:
        info = inspect(Path(f.path))
    except OSError as exc:
        raise mark(session, f, "missing", gone(exc), reader) from None
    if info.status == "missing":
        raise mark(session, f, "missing", GONE, reader)
    if info.status != "ok":
        raise mark(session, f, "corrupt", f"无法读取：{info.problem}", reader)
    f.sha256, f.sha256_source, f.checked_at = info.sha256, "late", utcnow()
    session.add(f)
    session.commit()
    log.info("recording file %s had no checksum; taken now (%s)", f.path, info.sha256[:12])
    return info.sha256


def _servable(session: Session, f: RecordingFile, reader: Reader) -> str:
    """The checksum a servable file must match (taken now if the row has none), or the refusal."""
    if f.status != "ok":
        raise refusal(f)
    if not f.path:
        raise mark(session, f, "missing", GONE, reader)
    return f.sha256 or _late(session, f, reader)


# ------------------------------------------------------------------ reads


def checked_path(session: Session, f: RecordingFile, reader: Reader = SYSTEM,
                 cache: Verified = VERIFIED) -> tuple[Path, os.stat_result]:
    """The file, verified against its checksum (or remembered as verified, unchanged since), and
    its ``stat`` as verified: the response sends it only if the file still has that identity."""
    expected = _servable(session, f, reader)
    with cache.stripe(f.path):
        try:
            st = os.stat(f.path)
            ident = identity(st)
            if cache.knows(f.path, expected, ident):
                return Path(f.path), st
            session.refresh(f)  # another request may have marked it while this one waited for the stripe
            if f.status != "ok":
                raise refusal(f)
            found, _ = cache.counted(f.path)
            after = os.stat(f.path)
        except OSError as exc:
            raise mark(session, f, "missing", gone(exc), reader, cache) from None
        if found != expected:
            raise mark(session, f, "corrupt", mismatch(expected, found), reader, cache)
        if identity(after) == ident:  # not written while it was read: the verdict holds for this identity
            cache.remember(f.path, expected, ident)
        f.checked_at = utcnow()
        session.add(f)
        session.commit()
        return Path(f.path), st


def read_checked(session: Session, f: RecordingFile, reader: Reader = SYSTEM) -> bytes:
    """The file's bytes, hashed as they are read: what is returned is what was compared."""
    expected = _servable(session, f, reader)
    try:
        found, data = VERIFIED.counted(f.path, keep=True)
    except OSError as exc:
        raise mark(session, f, "missing", gone(exc), reader) from None
    if found != expected:
        raise mark(session, f, "corrupt", mismatch(expected, found), reader)
    f.checked_at = utcnow()
    session.add(f)
    session.commit()
    return data


def recheck(session: Session, f: RecordingFile, now: datetime | None = None) -> str:
    """The sweep's look at one file, always hashed (a remembered verdict would hide bit rot).
    Returns ``ok``, ``late`` (checksum taken now), ``missing`` / ``corrupt`` (found so now),
    ``repaired`` (marked before, its stored bytes are back) or ``unchanged`` (still marked)."""
    if f.status == "ok" and not f.sha256:
        try:
            _late(session, f, SYSTEM)
        except Unreadable as exc:
            return exc.state
        return "late"
    try:
        found, error = VERIFIED.counted(f.path)[0], None
    except OSError as exc:
        found, error = "", exc
    if f.status == "ok":
        if error is not None:
            mark(session, f, "missing", gone(error))
            return "missing"
        if found != f.sha256:
            mark(session, f, "corrupt", mismatch(f.sha256, found))
            return "corrupt"
        f.checked_at = now or utcnow()
    elif found == f.sha256 and inspect(Path(f.path)).status == "ok":
        restore(session, f, f.path, f"文件已恢复，与入库时的校验值一致：{Path(f.path).name}")
        return "repaired"
    else:
        f.checked_at = now or utcnow()
    session.add(f)
    session.commit()
    return "ok" if f.status == "ok" else "unchanged"

"""The integrity sweep: catalogued files re-read in turn, storage compared with the catalog.

Reads catch a damaged file when someone meets it (recordings/integrity.py); the sweep finds it
before anyone does, and finds what no read ever meets. Each pass (``catalog_loop`` runs one every
:data:`SWEEP_EVERY_S`) does a bounded amount of work:

1. **Re-verify**: the stored files checked longest ago (never-checked first) are hashed again,
   up to :data:`BUDGET_BYTES` and :data:`BUDGET_FILES` a pass. A file gone or changed is marked and
   logged as on a read; a row catalogued without a checksum gets one, once; a file marked damaged
   whose stored bytes are back (restored from a backup) is ok again. With the defaults a pass reads
   at most 256 MB (≈ 0.2 s of hashing, more from a cold disk), and one cycle over storage takes
   ``storage size / 256 MB`` passes: 50 GB in ≈ 200 passes, 16 hours at one pass per 5 minutes.
2. **Compare storage with the catalog**, a few day folders (``YYYY/MM/DD``) a pass, in turn: a
   file no row refers to is an orphan. One whose name is a catalogued file's that is gone or
   damaged, and whose bytes match that file's checksum, is re-linked (the row points at it, ok
   again, logged). The rest are listed in ``recording_orphan`` (the health figures count them) and
   left where they are, for a person to decide.

Rows whose files are gone are found by step 1 (every stored file is reached in turn) and by
reads; they stay marked ``missing`` until a re-link or a restore brings their bytes back.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from hotline.db import in_chunks
from recordings.catalog import base_of, spool_dir, storage_dir
from recordings.integrity import inspect, recheck, restore, sha256_of
from recordings.models import SUFFIX, Recording, RecordingFile, RecordingOrphan, utcnow

log = logging.getLogger("recordings.sweep")

SWEEP_EVERY_S = 300.0
BUDGET_BYTES = 256 << 20  # hashed per pass (at least one file, however big)
BUDGET_FILES = 2000  # looked at per pass (a missing file costs a stat, not a read)
FOLDERS_PER_PASS = 3  # day folders of storage compared with the catalog per pass
DAY = re.compile(r"^\d{4}/\d{2}/\d{2}$")


@dataclass
class Pass:
    """What one pass did (logged; tests read it)."""

    checked: int = 0
    hashed_bytes: int = 0
    late: int = 0  # checksums taken for rows catalogued without one
    missing: int = 0
    corrupt: int = 0
    repaired: int = 0
    orphans: int = 0  # seen in this pass's folders
    folders: list[str] = field(default_factory=list)


class Sweeper:
    """The sweep's state between passes: which day folder comes next (kept in memory: after a
    restart the walk starts again from the oldest folder, which costs one more cycle, nothing else)."""

    def __init__(self, engine: sa.Engine, settings: Any, *, budget_bytes: int = BUDGET_BYTES,
                 budget_files: int = BUDGET_FILES, folders_per_pass: int = FOLDERS_PER_PASS) -> None:
        self.engine, self.settings = engine, settings
        self.budget_bytes, self.budget_files, self.folders_per_pass = budget_bytes, budget_files, folders_per_pass
        self.after = ""  # the last day folder compared

    def run(self, now: datetime | None = None) -> Pass:
        done = Pass()
        self.reverify(done, now or utcnow())
        self.compare(done)
        if done.missing or done.corrupt or done.repaired or done.orphans:
            log.warning("integrity sweep: %s", done)
        else:
            log.info("integrity sweep: %s", done)
        return done

    # ------------------------------------------------------------------ 1. re-verify

    def reverify(self, done: Pass, now: datetime) -> None:
        stored = sa.or_(RecordingFile.status == "ok", sa.and_(  # marked after it was stored: may come back
            RecordingFile.status.in_(("missing", "corrupt")),  # type: ignore[attr-defined]
            RecordingFile.damaged_at.is_not(None), RecordingFile.sha256 != ""))  # type: ignore[union-attr]
        with Session(self.engine) as session:
            rows = session.exec(select(RecordingFile).where(RecordingFile.path != "", stored)
                                .order_by(sa.nulls_first(RecordingFile.checked_at.asc()),  # type: ignore[union-attr]
                                          RecordingFile.id)
                                .limit(self.budget_files)).all()
            for f in rows:
                try:
                    size = os.stat(f.path).st_size
                except OSError:
                    size = 0
                if size and done.hashed_bytes and done.hashed_bytes + size > self.budget_bytes:
                    break
                outcome = recheck(session, f, now)
                done.checked += 1
                done.hashed_bytes += size
                if outcome in ("late", "missing", "corrupt", "repaired"):
                    setattr(done, outcome, getattr(done, outcome) + 1)

    # ------------------------------------------------------------------ 2. storage against the catalog

    def day_folders(self) -> list[str]:
        root = storage_dir(self.settings)
        if not root.is_dir():
            return []
        return sorted(p.relative_to(root).as_posix() for p in root.glob("*/*/*")
                      if p.is_dir() and DAY.match(p.relative_to(root).as_posix()))

    def compare(self, done: Pass) -> None:
        folders = self.day_folders()
        if not folders:
            return
        later = [d for d in folders if d > self.after]
        turn = (later + [d for d in folders if d <= self.after])[:self.folders_per_pass]
        for day in turn:
            done.folders.append(day)
            self.compare_folder(storage_dir(self.settings) / day, done)
        self.after = turn[-1]

    def compare_folder(self, folder: Path, done: Pass) -> None:
        spool = spool_dir(self.settings)
        files = {os.path.abspath(p): p for p in folder.glob("*.wav") if not p.name.startswith(".")}
        bases = sorted({base_of(p.name) for p in files.values()})
        with Session(self.engine) as session:
            rows: dict[tuple[str, str], RecordingFile] = {}
            for chunk in in_chunks(bases):
                for base, f in session.exec(select(Recording.base, RecordingFile).join(
                        RecordingFile, RecordingFile.recording_id == Recording.id).where(
                        Recording.base.in_(chunk))):  # type: ignore[attr-defined]
                    rows[(base, f.leg)] = f
            referenced = {os.path.abspath(f.path) for f in rows.values() if f.path}
            orphans: dict[str, tuple[Path, str]] = {}
            for key, path in sorted(files.items()):
                if key in referenced or (spool / path.name).exists():  # the spool's copy: being stored now
                    continue
                base, leg = base_of(path.name), _leg_of(path.name)
                f = rows.get((base, leg))
                note = self.relink(session, f, path) if f is not None else "目录中无此录音"
                if note:
                    orphans[key] = (path, note)
                else:
                    done.repaired += 1
            self.record(session, folder, orphans)
            done.orphans += len(orphans)

    def relink(self, session: Session, f: RecordingFile, path: Path) -> str:
        """Re-link ``path`` to its row if the row's file is gone or damaged and ``path`` holds the
        bytes the row's checksum names; "" when done, else why it stays an orphan."""
        if f.status == "purged":
            return "录音已过保存期限删除，此文件未随之删除"
        if f.status == "ok" and os.path.exists(f.path):
            return "同名录音已入库（另一个文件）"
        if f.status != "ok" and f.damaged_at is None:
            return "同名录音入库时已缺失或损坏，没有可比对的校验值，请人工核对"
        if not f.sha256:
            return "同名录音文件缺失，但入库时未留校验值，无法确认是同一文件"
        if sha256_of(path) != f.sha256 or inspect(path).status != "ok":
            return "同名录音文件缺失或损坏，但此文件与入库时的校验值不符"
        restore(session, f, str(path), f"找到入库后丢失或损坏的文件，校验值一致，已重新关联：{path}")
        return ""

    def record(self, session: Session, folder: Path, orphans: dict[str, tuple[Path, str]]) -> None:
        """The folder's orphans as seen now: new ones added, gone or re-linked ones removed."""
        now, prefix = utcnow(), os.path.abspath(folder) + os.sep
        listed = {os.path.abspath(o.path): o for o in session.exec(select(RecordingOrphan).where(
            RecordingOrphan.path.startswith(prefix, autoescape=True)))}  # type: ignore[attr-defined]
        for key, o in listed.items():
            if key not in orphans:
                session.delete(o)
        for key, (path, note) in orphans.items():
            o = listed.get(key) or RecordingOrphan(path=key, base=base_of(path.name), found_at=now)
            try:
                o.size_bytes = path.stat().st_size
            except OSError:
                continue
            if key not in listed:
                log.warning("orphan recording file %s: %s", key, note)
            o.note, o.seen_at = note[:200], now
            session.add(o)
        session.commit()


def _leg_of(name: str) -> str:
    """
    >>> _leg_of("hotline-20261123-024701-1.2-in.wav"), _leg_of("hotline-20261123-024701-1.2.wav")
    ('citizen', 'mixed')
    """
    stem = name.removesuffix(".wav")
    for leg, suffix in SUFFIX.items():
        if suffix and stem.endswith(suffix):
            return leg
    return "mixed"


def health(engine: sa.Engine) -> dict[str, Any]:
    """The figures for a health probe: files found gone or changed after they were stored (state
    ``down`` while any: restore them from a backup), orphans, files never checked yet and the
    oldest check; ``detail`` says it in one Chinese line."""
    files = RecordingFile.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        counts = dict(conn.execute(sa.select(files.c.status, sa.func.count()).where(
            files.c.damaged_at.is_not(None)).group_by(files.c.status)).all())
        stored = conn.execute(sa.select(sa.func.count(), sa.func.min(files.c.checked_at),
                                        sa.func.count().filter(files.c.checked_at.is_(None)))
                              .where(files.c.status == "ok")).one()
        orphans = conn.execute(sa.select(sa.func.count()).select_from(RecordingOrphan.__table__)).scalar_one()  # type: ignore[attr-defined]
    missing, corrupt = counts.get("missing", 0), counts.get("corrupt", 0)
    oldest = stored[1]
    out = {"files_ok": stored[0], "missing": missing, "corrupt": corrupt, "orphans": orphans,
           "unchecked": stored[2], "oldest_check": oldest.isoformat() if oldest else None}
    parts = [f"录音文件 {stored[0]} 个正常"]
    if corrupt:
        parts.append(f"{corrupt} 个入库后被改动（校验失败）")
    if missing:
        parts.append(f"{missing} 个入库后丢失")
    if orphans:
        parts.append(f"{orphans} 个孤立文件（目录中无记录）")
    if stored[2]:
        parts.append(f"{stored[2]} 个尚未校验")
    if missing or corrupt:
        parts.append("请从备份恢复")
    return out | {"state": "down" if missing or corrupt else "ok", "detail": " · ".join(parts)}

"""Asterisk's own records (CEL) against the call log: calls the bridge did not see are rebuilt.

The pure part is :mod:`cti.witness`; this is its edge. :class:`CelTail` follows the CEL file(s)
Asterisk writes (``cel_custom.conf``), from about a day back at start, by inode and offset after
that (so a rotated file is finished, then the new one read from its start). :class:`CallWitness`
runs on the node with the CTI bridge:

* every ``tick_s``, calls Asterisk saw end at least ``witness_grace_s`` ago that the call log does
  not hold (or holds as ``lost``) are rebuilt and filed through the same durable path as the
  bridge's own (:class:`launch.filing.CallFiler`), marked ``reconstructed``. Right after a restart
  or reconnect of the bridge that is every call it missed; while it runs, none (the bridge files
  each call within milliseconds, the grace leaves it the time). Calls Asterisk never saw end (it
  was stopped under them) and no longer has are filed as ``lost`` once the bridge can ask it;
* every ``witness_check_s``, both are compared over the last 24 h and the differences are written
  to ``var/witness.json`` for the health page (any process's) and logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cti import events as ev
from cti.witness import Differences, Witness, compare, parse
from hotline import reconciliation
from hotline.calls import FinishedCall
from hotline.reconciliation import Report
from launch.filing import CallFiler
from ticketing.calls import CallLog

log = logging.getLogger(__name__)
LOOK_BACK_S = 24 * 3600
LONGEST_CALL_S = 4 * 3600  # a call that began before what was read is not judged (its start is unseen)
BLOCK = 64 * 1024
ROTATE_BYTES = 64 * 2**20  # about 14 000 calls: a busy day
ARCHIVED = ".old"  # hotline-cel-<time>.json.old: read to its end, kept HOTLINE_WITNESS_KEEP_DAYS


def _seek_since(f: Any, size: int, since: float) -> int:
    """The offset of the first whole line written at or after ``since`` (binary search on the times;
    CEL lines are appended in time order, give or take a few milliseconds)."""
    lo, hi = 0, size
    while hi - lo > BLOCK:
        mid = (lo + hi) // 2
        f.seek(mid)
        f.readline()  # finish the line we landed in
        line = f.readline()
        e = parse(line) if line else None
        if e is None or e.at >= since:
            hi = mid
        else:
            lo = mid
    if lo:
        f.seek(lo)
        f.readline()
        return int(f.tell())
    return 0


class CelTail:
    """New complete lines of every ``*.json`` file in Asterisk's CEL folder, file by file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._at: dict[Path, tuple[int, int]] = {}  # path → (inode, offset)
        self._partial: dict[Path, bytes] = {}
        self.read_from_start = True  # False once a file was entered past its start: older calls unseen
        self._began = False

    def read(self, since: float) -> list[bytes]:
        lines: list[bytes] = []
        if not self.folder.is_dir():
            return lines
        draining = [p for p in self._at if p.suffix == ARCHIVED]  # rotated last pass: a late line may follow
        if not self._began:  # at start: the archives of the look-back window too, oldest first
            self._began = True
            for old in sorted(self.folder.glob(f"*{ARCHIVED}"), key=lambda p: p.stat().st_mtime):
                if old.stat().st_mtime >= since:
                    draining.append(old)
                else:
                    self.read_from_start = False  # events before the window exist: its first hours are partial
        for path in [*draining, *sorted(self.folder.glob("*.json"))]:
            try:
                lines += self._read(path, since)
            except OSError as exc:
                log.warning("CEL file %s unreadable: %s", path, exc)
        for path in draining:
            self._at.pop(path, None)
            self._partial.pop(path, None)
        return lines

    def rotate(self, now: float, max_bytes: int = ROTATE_BYTES, max_age_s: float = 24 * 3600,
               keep_s: float = 180 * 86400) -> list[bytes]:
        """Archive a file that grew large or old (Asterisk opens it for each event, so its next line
        starts a new one); the lines it holds that were not read yet are returned, and archives
        older than ``keep_s`` are removed."""
        lines: list[bytes] = []
        for path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            try:
                st = path.stat()
                with open(path, "rb") as f:
                    first = parse(f.readline())
                if st.st_size < max_bytes and (first is None or now - first.at < max_age_s):
                    continue
                stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
                archive = path.with_name(f"{path.stem}-{stamp}.json{ARCHIVED}")
                os.replace(path, archive)
                if path in self._at:
                    self._at[archive] = self._at.pop(path)
                    if path in self._partial:
                        self._partial[archive] = self._partial.pop(path)
                    lines += self._read(archive, 0.0)
                log.info("CEL file %s archived as %s", path.name, archive.name)
            except OSError as exc:
                log.warning("CEL file %s not archived: %s", path, exc)
        for old in self.folder.glob(f"*{ARCHIVED}") if self.folder.is_dir() else []:
            try:
                if now - old.stat().st_mtime > keep_s and old not in self._at:
                    old.unlink()
            except OSError:
                pass
        return lines

    def _read(self, path: Path, since: float) -> list[bytes]:
        st = path.stat()
        inode, offset = self._at.get(path, (st.st_ino, -1))
        if inode != st.st_ino or offset > st.st_size:  # rotated or truncated: the new file from its start
            inode, offset = st.st_ino, 0
            self._partial.pop(path, None)
        with open(path, "rb") as f:
            if offset < 0:
                offset = _seek_since(f, st.st_size, since)
                self.read_from_start = self.read_from_start and offset == 0
            f.seek(offset)
            data = self._partial.pop(path, b"") + f.read()
            self._at[path] = (inode, f.tell())
        *whole, rest = data.split(b"\n")
        if rest:
            self._partial[path] = rest  # Asterisk is mid-line: the rest comes next time
        return [line for line in whole if line.strip()]


class CallWitness:
    def __init__(self, settings: Any, calls: CallLog, filer: CallFiler, cti: Any = None, *,
                 tick_s: float = 2.0, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.calls = calls
        self.filer = filer
        self.cti = cti  # cti.service.CtiService: asked which calls Asterisk still has
        self.tick_s = tick_s
        self.clock = clock
        self.grace_s = float(settings.witness_grace_s)
        self.witness = Witness(rule_s=settings.answer_rule_s)
        self.tail = CelTail(settings.asterisk_events_dir)
        self.started = clock()
        self.settled: set[str] = set()  # finished calls already checked against the call log
        self.closed_lost: set[str] = set()  # unfinished ones filed as lost (if one ends after all, it is settled)
        self.rebuilt: list[str] = []
        self.last: Report | None = None

    # ------------------------------------------------------------------ one pass

    def read(self) -> None:
        now = self.clock()
        keep_s = float(self.settings.witness_keep_days) * 86400
        self.witness.feed_lines(self.tail.rotate(now, keep_s=keep_s) + self.tail.read(now - LOOK_BACK_S))
        if self.witness.forget(now - LOOK_BACK_S - LONGEST_CALL_S):  # out of the window: out of mind
            known = self.witness.call_ids()
            self.settled &= known
            self.closed_lost &= known

    def settle(self) -> list[str]:
        """File every call Asterisk saw end (a grace ago) that the call log lacks; the ids filed."""
        now = self.clock()
        due = [c for c in self.witness.finished(now - self.grace_s) if c.call_id not in self.settled]
        if not due:
            return []
        logged = self._logged([c.call_id for c in due])
        filed = []
        for call in due:
            ours = logged.get(call.call_id)
            if ours is None or (ours.lost and not call.lost):
                self.filer.file(call)
                filed.append(call.call_id)
            self.settled.add(call.call_id)
        self._note(filed, "ended while the CTI bridge was not watching")
        return filed

    async def settle_unfinished(self) -> list[str]:
        """Calls Asterisk never saw end and no longer has (it stopped under them): filed as lost."""
        link = getattr(self.cti, "link", None)
        if link is None or not link.logged_in:
            return []  # only Asterisk can say a call is gone
        candidates = [u for u in self.witness.unfinished(self.clock() - self.grace_s) if u not in self.closed_lost]
        if not candidates:
            return []
        live = {e.uniqueid for e in await link.query({"Action": "CoreShowChannels"})
                if isinstance(e, ev.CoreShowChannel)}
        gone = [u for u in candidates if u not in live]
        logged = await asyncio.to_thread(self._logged, gone)
        filed = []
        for uid in gone:
            call = self.witness.rebuild_unfinished(uid)
            if call is not None and uid not in logged:
                await asyncio.to_thread(self.filer.file, call)
                filed.append(uid)
            self.closed_lost.add(uid)
        self._note(filed, "cut when Asterisk stopped, unseen by the CTI bridge")
        return filed

    def check(self) -> Report:
        """Asterisk's records beside the call log over the last 24 h (calls ended a grace ago)."""
        now = self.clock()
        since = now - LOOK_BACK_S
        if not self.tail.read_from_start:
            since = max(since, self.started - LOOK_BACK_S + LONGEST_CALL_S)
        until = now - self.grace_s
        theirs = self.witness.finished(until, since)
        logged = self.calls.recent(datetime.fromtimestamp(since, UTC))
        ours = [c for c in logged if c.ended_at < until and self._mine(c)]
        diff = compare(theirs, ours)
        report = self._report(diff)
        if diff.count:
            log.warning("call log vs Asterisk's records over 24 h: %d differ (%s)", diff.count,
                        {k: v for k, v in asdict(report).items() if isinstance(v, list) and v})
        return report

    def _report(self, diff: Differences) -> Report:
        report = Report(
            at=Report.now(), source=str(self.tail.folder),
            readable=self.tail.folder.is_dir(), checked=diff.checked, missing=list(diff.missing),
            unknown_to_asterisk=list(diff.unknown_to_asterisk), outcome_differs=list(diff.outcome_differs),
            lost_but_finished=list(diff.lost_but_finished), rebuilt_total=len(self.rebuilt),
            malformed_lines=self.witness.malformed)
        self.last = report
        try:
            reconciliation.write(self.settings.var_dir, report)
        except OSError as exc:
            log.warning("witness report not written: %s", exc)
        return report

    def _mine(self, call: FinishedCall) -> bool:
        """Whether a logged call is this Asterisk server's: the call log is the centre's, and another
        server's calls are not missing from this one's records. A server of several names itself
        (HOTLINE_ASTERISK_SYSTEMNAME) and its uniqueids carry the name; a callback a web node
        numbered carries none, and is this server's when its seat is."""
        name = str(getattr(self.settings, "asterisk_systemname", "") or "")
        if not name:
            return True  # one server (several without names lose calls: the health page says so)
        if call.call_id.startswith(f"{name}-"):
            return True
        return "-" not in call.call_id and call.seat in self.settings.seats

    def _logged(self, ids: list[str]) -> dict[str, FinishedCall]:
        return {c.call_id: c for c in (self.calls.get(i) for i in ids) if c is not None}

    def _note(self, filed: list[str], why: str) -> None:
        if filed:
            self.rebuilt += filed
            log.warning("rebuilt %d calls from Asterisk's records (%s): %s", len(filed), why, ", ".join(filed))

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        if not self.settings.asterisk_events_dir.is_dir():
            log.warning("Asterisk's call records not found at %s: calls the bridge misses cannot be "
                        "rebuilt (HOTLINE_WITNESS_DIR)", self.settings.asterisk_events_dir)
        next_check = self.clock() + min(60.0, float(self.settings.witness_check_s))
        while True:
            try:
                await asyncio.to_thread(self.read)
                await asyncio.to_thread(self.settle)
                await self.settle_unfinished()
                if self.clock() >= next_check:
                    await asyncio.to_thread(self.check)
                    next_check = self.clock() + float(self.settings.witness_check_s)
            except Exception:
                log.exception("witness pass failed; trying again")
            await asyncio.sleep(self.tick_s)


"""A folder of pending work, on disk before the work is tried and gone once it is done.

The call log is what a centre reports to the government: a finished call must not vanish because
the database was locked, down or slow at the moment the bridge reported it, nor because the
process died while it retried. :class:`Outbox` keeps one JSON file per pending record (written to a
temporary file, fsync'd, renamed, the folder fsync'd: a crash leaves the old state or the new, never
half), keyed so that putting the same record twice is one entry; the writer removes it after its
commit and retries whatever remains, at start and on a timer. The writes themselves are idempotent
(the call log by uniqueid), so a record tried twice is stored once.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class Outbox:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / f"{_UNSAFE.sub('_', key)[:120]}.json"

    def put(self, key: str, record: dict[str, Any]) -> None:
        """Durably note ``record`` as pending under ``key`` (replacing a pending one of the same key)."""
        self.put_many([(key, record)])

    def put_many(self, entries: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """:meth:`put` for several records: each file written and synced, then all renamed in place
        and the folder synced once (a burst of hang-ups: one folder sync, not one per call)."""
        if not entries:
            return
        if not self.folder.is_dir():
            # exist_ok: calls filed at once (a burst of hang-ups) race to make the folder, and the
            # loser used to skip its journal ("the outbox cannot be written")
            self.folder.mkdir(parents=True, exist_ok=True)
            self.folder.chmod(0o700)  # citizens' numbers wait here: not for other local users
        placed = []
        for key, record in entries:
            path = self._path(key)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            with open(tmp, "w", encoding="utf-8") as f:  # one write (json.dump writes it piece by piece)
                f.write(json.dumps({"key": key, "record": record}, ensure_ascii=False))
                f.flush()
                os.fsync(f.fileno())
            placed.append((tmp, path))
        for tmp, path in placed:
            os.replace(tmp, path)
        self._sync_folder()

    def done(self, key: str) -> None:
        self.done_many([key])

    def done_many(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)
        self._sync_folder()

    def pending(self) -> list[tuple[str, dict[str, Any]]]:
        """What is still to be done, oldest first; an unreadable entry is set aside (``bad/``) and logged."""
        if not self.folder.is_dir():
            return []
        entries = sorted(self.folder.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))
        out = []
        for path in entries:
            try:
                body = json.loads(path.read_text(encoding="utf-8"))
                out.append((str(body["key"]), dict(body["record"])))
            except (OSError, ValueError, KeyError, TypeError):
                (self.folder / "bad").mkdir(exist_ok=True)
                os.replace(path, self.folder / "bad" / path.name)
                log.error("outbox entry %s is unreadable: set aside in %s", path.name, self.folder / "bad")
        return out

    def __len__(self) -> int:
        return len(list(self.folder.glob("*.json"))) if self.folder.is_dir() else 0

    def _sync_folder(self) -> None:
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

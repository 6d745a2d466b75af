"""The leases the CTI bridges elect their active one by (:mod:`cti.leader`), one per Asterisk server.

* :class:`PgLease` (PostgreSQL, any number of machines): a session-level advisory lock
  (``pg_try_advisory_lock``) on a connection of its own, never one of the pool's (a pooled
  connection goes back to the pool, and its session's lock with it). The lock lives exactly as long
  as that session: a holder killed (``kill -9``, the machine down with a clean network) loses it
  with its socket; a holder cut off (network, frozen machine) loses it when the server gives up on
  the connection, ``dead_s`` after it last heard from it, by the server-side TCP keepalives and
  ``tcp_user_timeout`` set on this session. The holder's own ``SELECT 1`` every ``check_s``
  (``statement_timeout``, and libpq's keepalives and ``tcp_user_timeout`` on its side) tells it
  first. Each acquisition counts a **term** (table ``cti_lease``: name, term, holder, since), the
  bridge's fencing number in its logs and on the health page. It needs a direct connection to
  PostgreSQL: a transaction-pooling proxy (pgbouncer) would hand the session's lock to others.
* :class:`FileLease` (SQLite, one machine): an exclusive ``flock`` on a file beside the database,
  which the kernel releases when the holder's process dies; the term is kept in the file.

The PostgreSQL calls run on one thread per connection: a query stuck on a dead network holds that
thread, not the event loop, and :meth:`PgLease.abandon` leaves it to end when the socket does.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import math
import os
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hotline.db import upgrade

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "cti_alembic_version"
TABLES = frozenset({"cti_lease"})

_NEXT_TERM = (  # psycopg's placeholders: this runs on the lease's own connection, not SQLAlchemy's
    "INSERT INTO cti_lease (name, term, holder, since) VALUES (%(name)s, 1, %(holder)s, now()) "
    "ON CONFLICT (name) DO UPDATE SET term = cti_lease.term + 1, holder = EXCLUDED.holder, since = EXCLUDED.since "
    "RETURNING term")


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """The ``cti_lease`` table (PostgreSQL nodes: the terms of :class:`PgLease`)."""
    upgrade(engine, MIGRATIONS, revision)


def lock_key(name: str) -> int:
    """The advisory lock's 64-bit key for one Asterisk server's lease (stable across processes and
    machines; hashed with a prefix so it meets no other lock of this database, e.g. the migrations').

    >>> lock_key("127.0.0.1:5038") == lock_key("127.0.0.1:5038") != lock_key("10.0.0.5:5038")
    True
    """
    return int.from_bytes(hashlib.sha256(f"hotline-cti-lease:{name}".encode()).digest()[:8], "big", signed=True)


def holder_id() -> str:
    """Who holds a lease, in logs and in ``cti_lease.holder``: this machine and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def pg_conninfo(url: sa.URL | str) -> str:
    """A libpq connection URL from the node's database URL (``postgresql+psycopg://`` too)."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class _Session:
    """One connection and the single thread that uses it (libpq connections are not shared)."""

    def __init__(self) -> None:
        self.conn: Any = None
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="cti-lease")

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()  # the session ends: PostgreSQL releases its advisory locks
            except Exception as exc:
                log.debug("CTI lease connection close: %s", exc)


class PgLease:
    def __init__(self, conninfo: str, name: str, holder: str, *, timeout_s: float = 1.0, dead_s: int = 4) -> None:
        self.conninfo = conninfo
        self.name = name
        self.key = lock_key(name)
        self.holder = holder
        self.timeout_s = timeout_s
        self.dead_s = dead_s
        self._session: _Session | None = None

    async def acquire(self) -> int | None:
        return await self._run(self._acquire)

    async def check(self) -> bool:
        return await self._run(self._check)

    async def release(self) -> None:
        session, self._session = self._session, None
        if session is not None:  # closed on its own thread, after anything still running there
            closed = session.pool.submit(self._give_back, session)
            session.pool.shutdown(wait=False)
            await asyncio.wrap_future(closed)

    def abandon(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.pool.submit(session.close)  # after whatever still hangs on that thread
            session.pool.shutdown(wait=False)

    # ------------------------------------------------------------------ on the session's thread

    async def _run(self, fn: Any) -> Any:
        if self._session is None:
            self._session = _Session()
        session = self._session
        return await asyncio.get_running_loop().run_in_executor(session.pool, fn, session)

    def _connect(self) -> Any:
        import psycopg

        dead_ms = self.dead_s * 1000
        # the server's side: a holder silent for dead_s is dropped, and its lock freed, whether its
        # last packet was answered (keepalives) or not (tcp_user_timeout)
        server = (f"-c statement_timeout={max(1, int(self.timeout_s * 1000))} -c tcp_keepalives_idle=1 "
                  f"-c tcp_keepalives_interval=1 -c tcp_keepalives_count={max(1, self.dead_s - 1)} "
                  f"-c tcp_user_timeout={dead_ms}")
        return psycopg.connect(
            self.conninfo, autocommit=True, connect_timeout=max(2, math.ceil(self.timeout_s)),
            keepalives=1, keepalives_idle=1, keepalives_interval=1, keepalives_count=max(1, self.dead_s - 1),
            tcp_user_timeout=dead_ms, options=server, application_name=f"hotline cti lease {self.name}"[:63])

    def _acquire(self, session: _Session) -> int | None:
        try:
            if session.conn is None:
                session.conn = self._connect()
            conn = session.conn
            if not conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()[0]:
                return None
            return int(conn.execute(_NEXT_TERM, {"name": self.name, "holder": self.holder[:200]}).fetchone()[0])
        except BaseException:
            session.close()  # a lock taken without its term is given back with the session
            raise

    @staticmethod
    def _give_back(session: _Session) -> None:
        """A graceful release unlocks before it closes: the lock is free when this returns, not when
        the server's backend has finished exiting (a standby asking at once was refused under load)."""
        if session.conn is not None:
            try:
                session.conn.execute("SELECT pg_advisory_unlock_all()")
            except Exception as exc:  # the session's end frees it anyway
                log.debug("CTI lease unlock: %s", exc)
        session.close()

    def _check(self, session: _Session) -> bool:
        if session.conn is None:
            return False
        try:
            session.conn.execute("SELECT 1")
            return True
        except Exception as exc:
            log.error("CTI lease %s: the database does not answer on the lease's session: %s", self.name, exc)
            session.close()
            return False


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def lock_file(database: str | None, var_dir: Path, name: str) -> Path:
    """Where :class:`FileLease` locks: beside the SQLite database (the processes that write one
    call log elect one bridge, whatever their working folders), else under ``var_dir``."""
    slug = _UNSAFE.sub("_", name)[:80]
    if database and database != ":memory:":
        return Path(f"{database}.cti-{slug}.lock")
    return var_dir / f"cti-{slug}.lock"


class FileLease:
    def __init__(self, path: Path, name: str, holder: str) -> None:
        self.path = path
        self.name = name
        self.holder = holder
        self._fd: int | None = None
        self._inode = 0

    async def acquire(self) -> int | None:
        return self._acquire()  # a local, non-blocking flock: no thread needed

    async def check(self) -> bool:
        if self._fd is None:
            return False
        try:  # the file replaced under us (deleted, re-created) could be locked by another: not ours any more
            return os.stat(self.path).st_ino == self._inode
        except OSError:
            return False

    async def release(self) -> None:
        self.abandon()

    def abandon(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # the kernel releases the flock with the last descriptor

    def _acquire(self) -> int | None:
        if self._fd is not None:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            term = _read_term(fd) + 1
            body = json.dumps({"name": self.name, "term": term, "holder": self.holder, "since": time.time()})
            os.ftruncate(fd, 0)
            os.pwrite(fd, body.encode(), 0)
            os.fsync(fd)
            self._inode = os.fstat(fd).st_ino
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return term


def _read_term(fd: int) -> int:
    try:
        return int(json.loads(os.pread(fd, 4096, 0) or b"{}").get("term", 0))
    except (ValueError, AttributeError, TypeError):
        return 0  # a damaged file: terms start again, the lock itself is what elects

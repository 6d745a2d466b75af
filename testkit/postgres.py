"""A throwaway PostgreSQL cluster: initdb'd under var/test-pg/, for tests and benchmarks.

UTF-8 with ``LC_CTYPE=C.UTF-8`` (pg_trgm then sees Chinese characters as word characters),
trust authentication, listening on 127.0.0.1 only, on a free port, with durability switched
off (it is thrown away). As root the server runs as the ``postgres`` system user (PostgreSQL
refuses to run as root). :func:`start_server` raises ``LookupError`` when the server binaries
are absent, so that tests can skip and benchmarks can say so.

Tests take the session fixture ``postgres_server`` (tests/support/postgres.py); a benchmark
starts and stops its own::

    server = start_server(workdir)
    try:
        url = server.create_database("bench")
    finally:
        server.stop()
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from testkit import ROOT, free_port

BASE = ROOT / "var" / "test-pg"


def find_bindir() -> Path | None:
    """The newest PostgreSQL server binaries on the machine (Debian layout first, then PATH)."""
    for env in (os.environ.get("HOTLINE_PG_BINDIR"),):
        if env and (Path(env) / "initdb").exists():
            return Path(env)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PostgresServer:
    bindir: Path
    workdir: Path
    port: int = field(default_factory=free_port)
    user: str | None = None  # system user the server runs as (None: the current one)
    max_connections: int = 50
    proc: subprocess.Popen | None = None

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *args] if self.user else list(args)

    def start(self) -> PostgresServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.user:
            pw = pwd.getpwnam(self.user)
            for p in (self.workdir.parent, self.workdir):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        initdb = subprocess.run(
            self._cmd(
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "--locale=C.UTF-8",
                "--encoding=UTF8",
                "--no-sync",
            ),
            capture_output=True,
            timeout=120,
        )
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed in {self.datadir}: {initdb.stderr.decode(errors='replace')[-1000:]}")
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 (lives as long as the server)
        self.proc = subprocess.Popen(
            self._cmd(
                str(self.bindir / "postgres"),
                "-D",
                str(self.datadir),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                str(self.workdir),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                f"max_connections={self.max_connections}",
                "-c",
                "shared_buffers=128MB",
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited: {(self.workdir / 'server.log').read_text()[-2000:]}")
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("PostgreSQL did not become ready within 30 s")

    def create_database(self, name: str | None = None) -> str:
        """A fresh UTF-8 database; returns its SQLAlchemy URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(
                f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
            )
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: smart shutdown of our own server only
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_server(base: Path = BASE, max_connections: int = 50) -> PostgresServer:
    """Start a cluster; the caller stops it. Raises ``LookupError`` when PostgreSQL is absent."""
    bindir = find_bindir()
    if bindir is None:
        raise LookupError("PostgreSQL server binaries not found (apt-get install postgresql)")
    user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
            user = "postgres"
        except KeyError:
            raise LookupError("running as root but no 'postgres' system user to run the server as") from None
    if user is not None and not _reachable(user, base):
        base = Path(tempfile.gettempdir()) / "hotline-test-pg"
    return PostgresServer(
        bindir=bindir, workdir=base / f"{os.getpid()}-{uuid.uuid4().hex[:6]}", user=user,
        max_connections=max_connections
    ).start()


def _reachable(user: str, path: Path) -> bool:
    """Can ``user`` walk down to ``path``? Not when the checkout sits in a private folder (a
    ``mktemp -d`` clone is 0700): the server then keeps its files under the system's temp dir."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    return subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(probe)], capture_output=True).returncode == 0

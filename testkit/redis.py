"""A throwaway redis-server for tests: on a free port on 127.0.0.1, its files in a temporary
folder, nothing ever saved (``--save "" --appendonly no``: a restart loses every key, as a
production Redis without persistence would).

:func:`start_server` raises ``LookupError`` when redis-server is absent, so that tests can skip.
Besides starting and stopping, a test can :meth:`RedisServer.restart` it on the same port (Redis
lost its data) or :meth:`RedisServer.pause` it (SIGSTOP: connections stay open, nothing answers)::

    server = start_server()
    try:
        bus = RedisBus(server.url)
        ...
    finally:
        server.close()
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from testkit import free_port


def find_binary() -> Path | None:
    found = os.environ.get("HOTLINE_REDIS_SERVER") or shutil.which("redis-server")
    return Path(found) if found and Path(found).exists() else None


@dataclass
class RedisServer:
    binary: Path
    workdir: Path
    port: int = field(default_factory=free_port)
    args: tuple[str, ...] = ()  # more of redis-server's options (a TLS port, a password…)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, deadline_s: float = 15.0) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 (lives as long as the server)
        self.proc = subprocess.Popen(
            [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--daemonize", "no", "--loglevel", "warning", *self.args],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()  # the child has its own copy
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log_tail()}")
            if self.ping():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING within {deadline_s} s: {self.log_tail()}")

    def ping(self, timeout: float = 0.5) -> bool:
        """Whether it answers PING now (a raw socket: no client library needed)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def log_tail(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def pause(self) -> None:
        """SIGSTOP: open connections stay open and nothing answers (a Redis stuck or far away)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 10 s); the data is gone (nothing is saved)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused server would not act on SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> RedisServer:
        """Stopped and started again on the same port: an empty Redis where the old one was."""
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.workdir)


def start_server() -> RedisServer:
    """Start one; the caller closes it. Raises ``LookupError`` when redis-server is absent."""
    binary = find_binary()
    if binary is None:
        raise LookupError("redis-server not found (apt-get install redis-server, or set HOTLINE_REDIS_SERVER)")
    return RedisServer(binary=binary, workdir=Path(tempfile.mkdtemp(prefix="hotline-redis-"))).start()

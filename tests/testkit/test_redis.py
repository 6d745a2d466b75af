"""The throwaway redis-server: it answers, pauses, loses its data on a restart, and goes away."""

from __future__ import annotations

import socket

import pytest

from testkit.redis import start_server


def _command(port: int, *words: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"".join(f"${len(w)}\r\n{w}\r\n".encode() for w in words).join([f"*{len(words)}\r\n".encode(), b""]))
        return s.recv(256)


def test_start_pause_restart_stop() -> None:
    try:
        server = start_server()
    except LookupError as exc:
        pytest.skip(str(exc))
    try:
        assert server.ping() and server.url.startswith("redis://127.0.0.1:")
        assert _command(server.port, "SET", "k", "v") == b"+OK\r\n"
        server.pause()
        assert not server.ping(timeout=0.3)  # open, but nobody answers
        server.resume()
        assert server.ping()
        server.restart()
        assert _command(server.port, "GET", "k") == b"$-1\r\n"  # nothing was saved
        workdir = server.workdir
    finally:
        server.close()
    assert not server.ping() and not workdir.exists()

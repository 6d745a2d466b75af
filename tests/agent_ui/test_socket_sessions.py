"""The sessions behind a node's open websockets, re-read together (agent_ui.socket_sessions)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from accounts.sessions import Sessions
from agent_ui.socket_sessions import SocketSessions
from hotline.identity import Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import session_for, use


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = web_app(Settings(var_dir=tmp_path, services=[]))
    with use(TestClient(app)) as c:
        yield c


def watch(client: TestClient, recheck_s: float) -> tuple[SocketSessions, list[int]]:
    """The app's watch, re-checking every ``recheck_s``; the sizes of the reads it makes."""
    sessions = client.app.state.sessions
    reads: list[int] = []
    real = sessions.resolve_many

    class Counted:
        def resolve_many(self, tokens):
            tokens = list(tokens)
            reads.append(len(tokens))
            return real(tokens)

        def __getattr__(self, name):
            return getattr(sessions, name)

    w = client.app.state.socket_sessions = SocketSessions(Counted(), recheck_s=recheck_s)
    return w, reads


def test_every_open_socket_is_re_checked_in_one_read(client: TestClient) -> None:
    _w, reads = watch(client, recheck_s=0.2)
    tokens = [session_for(client, f"op{100 + i}", Role.OPERATOR) for i in range(6)]
    with ExitStack() as stack:
        sockets = [stack.enter_context(client.websocket_connect("/ws", headers={"Authorization": f"Bearer {t}"}))
                   for t in tokens]
        for ws in sockets:
            assert ws.receive_json()["type"] == "hello"
        n = len(reads)  # rounds while they connected, one after another
        deadline = time.monotonic() + 10
        while len(reads) < n + 2 and time.monotonic() < deadline:  # two rounds with all six open
            time.sleep(0.05)
        for ws in sockets:  # all still open: their sessions stand
            ws.send_json({"type": "ping"})
            assert ws.receive_json() == {"type": "pong"}
    assert reads[n:n + 2] == [6, 6]  # one read for the six sockets each round, not one each


def test_a_revocation_made_by_another_node_closes_the_socket_at_the_next_re_check(client: TestClient) -> None:
    watch(client, recheck_s=0.2)
    token = session_for(client, "lead2", Role.LEAD)
    other_token = session_for(client, "op2001", Role.OPERATOR)
    elsewhere = Sessions(client.app.state.sessions.engine)  # another process: nothing here hears it revoke
    with client.websocket_connect("/ws", headers={"Authorization": f"Bearer {token}"}) as ws, \
            client.websocket_connect("/ws", headers={"Authorization": f"Bearer {other_token}"}) as other:
        assert ws.receive_json()["type"] == "hello" and other.receive_json()["type"] == "hello"
        assert elsewhere.revoke_account("lead2", "logout") == 1
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_json()
        assert closed.value.code == 4401
        other.send_json({"type": "ping"})
        assert other.receive_json() == {"type": "pong"}  # the other session stands: its socket too


def test_a_sign_out_on_this_node_closes_its_socket_at_once_not_at_the_next_round(client: TestClient) -> None:
    watch(client, recheck_s=60)  # no round would come during the test: only the revocation wakes the watch
    token = session_for(client, "qa7", Role.QA)
    with client.websocket_connect("/ws", headers={"Authorization": f"Bearer {token}"}) as ws:
        assert ws.receive_json()["type"] == "hello"
        started = time.monotonic()
        assert client.app.state.sessions.revoke_account("qa7", "logout") == 1
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_json()
    assert closed.value.code == 4401 and time.monotonic() - started < 10


def test_the_watch_ends_with_its_last_socket_not_at_its_next_round(client: TestClient) -> None:
    """Its task waited out its round with nothing to watch, and a loop closed meanwhile destroyed it
    pending (an error line at every test stack's end)."""
    w, _reads = watch(client, recheck_s=600)
    token = session_for(client, "op101", Role.OPERATOR)
    with client.websocket_connect("/ws", headers={"Authorization": f"Bearer {token}"}) as ws:
        assert ws.receive_json()["type"] == "hello"
        task = w._task
        assert task is not None and not task.done()
    deadline = time.monotonic() + 5
    while not task.done():
        assert time.monotonic() < deadline, "the watch still waits with no socket open"
        time.sleep(0.02)
    assert w._open == {}

"""Server-side sessions: what a token means is decided by the session and the account as they are
now; the database holds only the token's hash."""

from __future__ import annotations

import sqlalchemy as sa

from accounts.admin import AccountAdmin, Actor
from accounts.sessions import token_hash

ADMIN = Actor("admin", "127.0.0.1")


def test_a_token_means_its_account_as_it_is_now_and_the_database_never_holds_the_token(accounts, engine) -> None:
    accounts.upsert("op2001", "Right-pass-2001", "operator", job_number="2001")
    token = accounts.sessions.open("op2001", client="10.0.0.9")
    assert accounts.sessions.resolve(token).job_number == "2001"
    with engine.connect() as c:
        stored = c.execute(sa.text("SELECT token_hash FROM account_session")).scalars().all()
    assert stored == [token_hash(token)] and token not in stored
    assert accounts.sessions.resolve(token + "x") is None and accounts.sessions.resolve("") is None


def test_signing_out_ends_the_session_on_the_server(accounts) -> None:
    accounts.upsert("lead", "Lead-pass-2026", "lead")
    token = accounts.sign_in("lead", "Lead-pass-2026").token
    other = accounts.sign_in("lead", "Lead-pass-2026").token  # another browser
    accounts.sign_out(token, client="10.0.0.9")
    assert accounts.sessions.resolve(token) is None
    assert accounts.sessions.resolve(other) is not None  # only the one signed out
    assert accounts.audit.list(action="logout")[0] == 1


def test_disabling_or_changing_a_role_ends_every_session_at_once_a_name_change_does_not(accounts) -> None:
    admin = AccountAdmin(accounts)
    accounts.upsert("admin", "Admin-pass-2026", "admin")
    accounts.upsert("op2001", "Right-pass-2001", "operator", job_number="2001")
    token = accounts.sessions.open("op2001")
    admin.update(ADMIN, "op2001", display_name="孙丽")
    assert accounts.sessions.resolve(token).display_name == "孙丽"  # same powers: the session goes on
    admin.update(ADMIN, "op2001", role="qa")
    assert accounts.sessions.resolve(token) is None
    token = accounts.sessions.open("op2001")
    admin.update(ADMIN, "op2001", centre="北区中心")
    assert accounts.sessions.resolve(token) is None
    token = accounts.sessions.open("op2001")
    admin.set_active(ADMIN, "op2001", False)
    assert accounts.sessions.resolve(token) is None
    admin.set_active(ADMIN, "op2001", True)
    assert accounts.sessions.resolve(token) is None  # enabling again opens no old session


def test_idle_and_absolute_limits(accounts, clock) -> None:
    accounts.upsert("qa", "Qa-pass-20261", "qa")
    token = accounts.sessions.open("qa")
    for _ in range(10):  # used every 20 minutes: never idle, for 3 h 20 min
        clock.advance(20 * 60)
        assert accounts.sessions.resolve(token) is not None
    clock.advance(31 * 60)  # then half an hour untouched: idle (the limit is 30 min)
    assert accounts.sessions.resolve(token) is None
    assert accounts.sessions.list("qa", open_only=False)[0].revoked_reason == "idle"
    token = accounts.sessions.open("qa")
    for _ in range(24):  # busy all the time, but 8 h after sign-in it ends anyway
        clock.advance(20 * 60)
    assert accounts.sessions.resolve(token) is None


def test_revocations_wake_the_listeners(accounts) -> None:
    accounts.upsert("lead", "Lead-pass-2026", "lead")
    heard: list[int] = []
    stop = accounts.sessions.on_revoke(lambda: heard.append(1))
    token = accounts.sessions.open("lead")
    accounts.sign_out(token)
    AccountAdmin(accounts).revoke_sessions(ADMIN, "lead")
    stop()
    accounts.sessions.revoke_account("lead", "admin")
    assert len(heard) == 2


def test_many_tokens_are_resolved_in_one_read_each_as_resolve_would(accounts, engine, clock) -> None:
    """A web node re-checks the sessions of all its open websockets together (agent_ui.socket_sessions)."""
    for name in ("op2001", "op2002", "op2003"):
        accounts.upsert(name, "Right-pass-2001", "operator")
    live, ended, idle = (accounts.sessions.open(n) for n in ("op2001", "op2002", "op2003"))
    accounts.sign_out(ended)
    clock.advance(25 * 60)
    assert accounts.sessions.resolve(live) is not None  # used: not idle
    clock.advance(10 * 60)  # op2003's untouched for 35 min: past the 30 min limit
    selects: list[str] = []

    def count(_conn, _cursor, statement: str, *_rest) -> None:
        if statement.startswith("SELECT"):
            selects.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    got = accounts.sessions.resolve_many([live, ended, idle, "unknown"])
    sa.event.remove(engine, "before_cursor_execute", count)
    assert len(selects) == 1
    assert got[live].username == "op2001" and got[ended] is None and got[idle] is None and got["unknown"] is None
    assert accounts.sessions.list("op2003", open_only=False)[0].revoked_reason == "idle"  # as resolve ends it
    assert accounts.sessions.resolve_many([]) == {}

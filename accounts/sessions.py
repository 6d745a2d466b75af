"""Server-side sessions: a random token per sign-in, its SHA-256 in the database.

Every request asks :meth:`Sessions.resolve`, which reads the session and its account together,
so what the account is *now* decides: signing out, disabling the account, a role, department or
centre change (which revoke the account's sessions), the idle limit and the absolute limit all
take effect on the very next request. Websockets re-check on every revocation in this process
(:meth:`Sessions.on_revoke`) and every 15 s for revocations made by another process, all of a node's
sockets in one read (:meth:`Sessions.resolve_many`, agent_ui.socket_sessions).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from accounts.models import PRINCIPAL_COLUMNS, Account, AccountSession, principal_of
from hotline.db import in_chunks
from hotline.identity import Principal

TOUCH_EVERY_S = 60.0  # last_seen is written at most this often: no write per request
# a session and what its account makes of it, as the tables' own columns: Core compares the ORM's
# annotated ones with ``==`` (building expressions) each time it maps a cached statement's result
_S, _A = AccountSession.__table__.c, Account.__table__.c  # type: ignore[attr-defined]
_LIVE = (sa.select(_S.id, _S.token_hash, _S.revoked_at, _S.expires_at, _S.last_seen_at, _A.active,
                   *(_A[name] for name in PRINCIPAL_COLUMNS))
         .join_from(AccountSession.__table__, Account.__table__, _A.username == _S.username))  # type: ignore[attr-defined]
# built once, the values bound at each read: building ``token_hash.in_([...])`` and its cache key anew
# was half of what a request's session read cost
_LIVE_ONE = _LIVE.where(_S.token_hash == sa.bindparam("hash"))
_LIVE_ANY = _LIVE.where(_S.token_hash.in_(sa.bindparam("hashes", expanding=True)))


def _live(c: sa.Connection, hashes: list[str]) -> Iterator[sa.Row]:
    """The sessions of ``hashes`` with their accounts (one read for one, else one a chunk)."""
    if len(hashes) == 1:
        yield from c.execute(_LIVE_ONE, {"hash": hashes[0]})
        return
    for chunk in in_chunks(hashes):
        yield from c.execute(_LIVE_ANY, {"hashes": chunk})


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SessionInfo:
    """One session as the admin page and ``hotline account sessions`` show it (never the token)."""

    id: int
    username: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str
    client: str
    user_agent: str

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "username": self.username, "created_at": self.created_at.isoformat(),
                "last_seen_at": self.last_seen_at.isoformat(), "expires_at": self.expires_at.isoformat(),
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
                "revoked_reason": self.revoked_reason, "client": self.client, "user_agent": self.user_agent}


class Sessions:
    def __init__(self, engine: sa.Engine, *, idle_s: float = 3600, absolute_s: float = 12 * 3600,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.idle_s = idle_s
        self.absolute_s = absolute_s
        self.clock = clock
        self._listeners: list[Callable[[], None]] = []

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- opening and resolving -----------------------------------------------------------------

    def open(self, username: str, *, client: str = "", user_agent: str = "") -> str:
        """A new session of ``username``; returns its token (shown once, never stored)."""
        token = secrets.token_urlsafe(32)
        now = self._now()
        with Session(self.engine) as s:
            s.add(AccountSession(token_hash=token_hash(token), username=username, created_at=now, last_seen_at=now,
                                 expires_at=now + timedelta(seconds=self.absolute_s), client=client[:64],
                                 user_agent=user_agent[:200]))
            s.commit()
        return token

    def resolve(self, token: str) -> Principal | None:
        """The principal of a live session of an active account, as the account is now."""
        return self.resolve_many([token])[token]

    def resolve_many(self, tokens: Iterable[str]) -> dict[str, Principal | None]:
        """:meth:`resolve` for several tokens in one read a chunk (a node's open websockets, re-checked
        together): each token's principal, None where its session no longer stands.

        Every request comes here, so it reads columns, not objects: building the session and the
        account as ORM objects was most of a request's 0.35 ms of CPU here."""
        now = self._now()
        by_hash = {token_hash(t): t for t in tokens}
        out: dict[str, Principal | None] = dict.fromkeys(by_hash.values())
        hashes = list(by_hash)
        idle: list[int] = []
        seen: list[int] = []
        with self.engine.connect() as c:
            for row in _live(c, hashes):
                if row.revoked_at is not None or not row.active or now >= row.expires_at:
                    continue
                quiet_s = (now - row.last_seen_at).total_seconds()
                if quiet_s > self.idle_s:
                    idle.append(row.id)
                    continue
                if quiet_s >= TOUCH_EVERY_S:
                    seen.append(row.id)
                out[by_hash[row.token_hash]] = principal_of(row)
            for chunk in in_chunks(idle):  # a sign-out that came meanwhile keeps its reason
                c.execute(sa.update(AccountSession).where(_S.id.in_(chunk), _S.revoked_at.is_(None))
                          .values(revoked_at=now, revoked_reason="idle"))
            for chunk in in_chunks(seen):
                c.execute(sa.update(AccountSession).where(_S.id.in_(chunk)).values(last_seen_at=now))
            if idle or seen:
                c.commit()
        return out

    # --- ending ------------------------------------------------------------------------------

    def close(self, token: str, reason: str = "logout") -> str | None:
        """Sign one session out; returns its user name (None if it was not open)."""
        return self._end_one(lambda s: s.exec(select(AccountSession).where(
            AccountSession.token_hash == token_hash(token))).first(), reason)

    def revoke_account(self, username: str, reason: str, *, session: Session | None = None) -> int:
        """End every open session of ``username`` (in the caller's transaction when given one)."""
        def run(s: Session) -> int:
            open_ = list(s.exec(select(AccountSession).where(AccountSession.username == username,
                                                             AccountSession.revoked_at.is_(None))))  # type: ignore[union-attr]
            self._revoke(s, open_, reason, self._now())
            return len(open_)

        if session is not None:
            n = run(session)
        else:
            with Session(self.engine) as s:
                n = run(s)
                s.commit()
            self._notify()
        return n

    def revoke_one(self, session_id: int, reason: str = "admin") -> str | None:
        return self._end_one(lambda s: s.get(AccountSession, session_id), reason)

    def _end_one(self, find: Callable[[Session], AccountSession | None], reason: str) -> str | None:
        """End the session ``find`` picks, if it is open; its user name, else None."""
        with Session(self.engine) as s:
            session = find(s)
            if session is None or session.revoked_at is not None:
                return None
            self._revoke(s, [session], reason, self._now())
            s.commit()
            username = session.username
        self._notify()
        return username

    @staticmethod
    def _revoke(s: Session, sessions: list[AccountSession], reason: str, now: datetime) -> None:
        for session in sessions:
            session.revoked_at, session.revoked_reason = now, reason[:32]
            s.add(session)

    def on_revoke(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` after any revocation in this process; returns the way to stop."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def notify(self) -> None:
        """Tell the listeners (websockets) to re-check: after a change committed elsewhere."""
        self._notify()

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()

    # --- what the admin sees ------------------------------------------------------------------

    def list(self, username: str | None = None, *, open_only: bool = True, limit: int = 200) -> list[SessionInfo]:
        now = self._now()
        stmt = select(AccountSession).order_by(AccountSession.last_seen_at.desc()).limit(limit)  # type: ignore[attr-defined]
        if username is not None:
            stmt = stmt.where(AccountSession.username == username)
        if open_only:
            stmt = stmt.where(AccountSession.revoked_at.is_(None), AccountSession.expires_at > now,  # type: ignore[union-attr]
                              AccountSession.last_seen_at > now - timedelta(seconds=self.idle_s))
        with Session(self.engine) as s:
            return [SessionInfo(r.id or 0, r.username, r.created_at, r.last_seen_at, r.expires_at, r.revoked_at,
                                r.revoked_reason, r.client, r.user_agent) for r in s.exec(stmt)]

    def purge(self, older_than_days: int = 90) -> int:
        """Drop ended sessions older than the audit needs (the audit trail keeps the sign-ins)."""
        cut = self._now() - timedelta(days=older_than_days)
        with Session(self.engine) as s:
            n = s.execute(sa.delete(AccountSession).where(AccountSession.expires_at < cut)).rowcount
            s.commit()
        return int(n or 0)

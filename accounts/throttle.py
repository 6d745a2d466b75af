"""Sign-in throttling, per account and per client, from the attempts in the database (so every
web process of a centre counts the same attempts).

An account is held after ``per_account`` failures in ``window_s`` since its last success (or an
admin's password reset); a client after ``per_client`` failures in the window, whoever it tried.
While held, even the right password is refused without being checked: the answer must not tell
a guesser when they got it right.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from accounts.models import LoginAttempt


class LoginThrottle:
    def __init__(self, engine: sa.Engine, *, per_account: int = 5, per_client: int = 20, window_s: float = 900,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.per_account = per_account
        self.per_client = per_client
        self.window_s = window_s
        self.clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def held_for(self, username: str, client: str) -> float:
        """Seconds until this account and client may try again; 0 when they may now."""
        now = self._now()
        start = now - timedelta(seconds=self.window_s)
        with Session(self.engine) as s:
            last_ok = s.exec(select(sa.func.max(LoginAttempt.at))
                             .where(LoginAttempt.username == username, LoginAttempt.ok.is_(True))).one()  # type: ignore[attr-defined]
            since = max(start, last_ok) if last_ok is not None else start
            waits = [self._wait(s, LoginAttempt.username == username, since, self.per_account, now)]
            if client:
                waits.append(self._wait(s, LoginAttempt.client == client, start, self.per_client, now))
        return max(waits)

    def _wait(self, s: Session, who: sa.ColumnElement[bool], since: datetime, limit: int, now: datetime) -> float:
        failures = list(s.exec(select(LoginAttempt.at).where(who, LoginAttempt.ok.is_(False),  # type: ignore[attr-defined]
                                                             LoginAttempt.at > since)
                               .order_by(LoginAttempt.at.desc()).limit(limit)))  # type: ignore[attr-defined]
        if len(failures) < limit:
            return 0.0
        # held until the oldest of the last ``limit`` failures leaves the window
        return max(0.0, (failures[-1] + timedelta(seconds=self.window_s) - now).total_seconds())

    def attempt(self, s: Session, username: str, client: str, ok: bool) -> None:
        """Count one attempt in the caller's transaction."""
        s.add(LoginAttempt(at=self._now(), username=username[:64], client=client[:64], ok=ok))

    def purge(self, older_than_days: int = 90) -> int:
        cut = self._now() - timedelta(days=older_than_days)
        with Session(self.engine) as s:
            n = s.execute(sa.delete(LoginAttempt).where(LoginAttempt.at < cut)).rowcount
            s.commit()
        return int(n or 0)

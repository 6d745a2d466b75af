"""Signed-in tests and benchmarks: a real account shaped like a :class:`Principal` and a real
server-side session of it, so every route sees exactly what it sees in production."""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from accounts import store as account_store
from accounts.store import Accounts
from hotline.identity import Principal, Role

#: the password of the accounts :func:`session_for` makes: random per process, never told to anyone
#: (they sign in by session, not by password)
THROWAWAY_PASSWORD = secrets.token_urlsafe(16)


def _accounts(where: Any) -> Accounts:
    """An app (or a TestClient of one) with ``state.accounts``, or an :class:`Accounts` itself."""
    app = getattr(where, "app", where)
    state = getattr(app, "state", None)
    return state.accounts if state is not None and hasattr(state, "accounts") else where


def session_for(where: Any, principal: Principal | str, role: Role | str | None = None, **fields: Any) -> str:
    """A session token of ``principal`` (or of a user name, a role and fields); the account is
    created or brought in line with it first, and left alone when it already matches (so earlier
    sessions of the same person stay open)."""
    if isinstance(principal, str):
        principal = Principal(principal, Role(role or "operator"), **fields)
    accounts = _accounts(where)
    wanted = {"role": principal.role.value, "display_name": principal.display_name or principal.username,
              "job_number": principal.job_number, "department_id": principal.department_id,
              "centre": principal.centre, "dept_lead": principal.dept_lead}
    have = accounts.get(principal.username)
    if have is None or not have.active or any(getattr(have, k) != v for k, v in wanted.items()):
        accounts.upsert(principal.username, THROWAWAY_PASSWORD, **wanted)
    return accounts.sessions.open(principal.username)


def bearer(where: Any, principal: Principal | str, role: Role | str | None = None, **fields: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {session_for(where, principal, role, **fields)}"}


_serving: list[Any] = []  # the app the lazy headers below sign in to (the test module's own)
_generation = [0]  # bumped by every use(): a header made for an earlier app is made again


def use(where: Any) -> Any:
    """Make ``where`` (an app, a TestClient, or an :class:`Accounts`) the one :class:`Bearer`
    headers sign in to; returns it, so ``client = use(TestClient(...))`` reads naturally."""
    _serving[:] = [_accounts(where)]
    _generation[0] += 1
    return where


class Bearer(Mapping[str, str]):
    """``Authorization: Bearer …`` for a person, made when first sent: test modules declare their
    people once (``LEAD = Bearer("lead", Role.LEAD)``) before the app exists; the header opens a
    real session on the app given to :func:`use` (again if that app changes)."""

    def __init__(self, principal: Principal | str, role: Role | str | None = None, **fields: Any) -> None:
        self.principal = principal if isinstance(principal, Principal) else Principal(
            principal, Role(role or "operator"), **fields)
        self._token: tuple[int, str] | None = None

    @property
    def token(self) -> str:
        if not _serving:
            raise RuntimeError("testkit.auth.use(app) first: no app to sign in to")
        if self._token is None or self._token[0] != _generation[0]:
            self._token = (_generation[0], session_for(_serving[0], self.principal))
        return self._token[1]

    def _header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def __getitem__(self, key: str) -> str:
        return self._header()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(("Authorization",))

    def __len__(self) -> int:
        return 1

    def __or__(self, other: Mapping[str, str]) -> dict[str, str]:
        return self._header() | dict(other)

    def __ror__(self, other: Mapping[str, str]) -> dict[str, str]:
        return dict(other) | self._header()


class _HashedOnce:
    """``hash_password`` for the passwords of ``sizes``: each of them hashed for real (argon2id at the
    product's parameters) ``size`` times, then those hashes handed out in turn, so that accounts
    sharing a password in one database (the three departments' ``demodept``) still get distinct
    salts; any other password is hashed anew on every call."""

    def __init__(self, real: Callable[[str], str], sizes: Mapping[str, int]) -> None:
        self.real, self.sizes = real, dict(sizes)
        self.made: dict[str, list[str]] = {}
        self.turn: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, password: str) -> str:
        size = self.sizes.get(password)
        if size is None:
            return self.real(password)
        with self.lock:
            made = self.made.setdefault(password, [])
            i = self.turn[password] % size
            self.turn[password] += 1
            if i == len(made):
                made.append(self.real(password))
            return made[i]


@contextmanager
def demo_hashes_once() -> Iterator[None]:
    """The README's demo accounts' password hashes (and :func:`session_for`'s) made once per test
    session instead of for every app: each app a test starts (``launch.compose.web_app`` in demo
    mode) makes its eight demo accounts, eight argon2 hashes of a tenth to a quarter of a second
    each on a 2-core box. Every sign-in still verifies a real argon2id hash; every other password
    (an admin's new account, a changed or reset password) is still hashed anew."""
    sizes = Counter(str(spec["password"]) for spec in account_store.DEMO_ACCOUNTS)
    sizes[THROWAWAY_PASSWORD] = 1
    real = account_store.hash_password
    account_store.hash_password = _HashedOnce(real, sizes)  # type: ignore[assignment]
    try:
        yield
    finally:
        account_store.hash_password = real


def with_sessions(app: Any, engine: Any) -> Accounts:
    """A router-sized test app signs people in as the whole app does: the account tables on its
    database, ``app.state.accounts`` and ``app.state.sessions``; and :func:`use` it."""
    from accounts import db as accounts_db

    accounts_db.migrate(engine)
    accounts = Accounts(engine)
    app.state.accounts, app.state.sessions = accounts, accounts.sessions
    use(accounts)
    return accounts


def signed_in(url: str, username: str, password: str) -> dict[str, str]:
    """Sign in to a running server as a user would (its login route) and return the bearer header."""
    import httpx

    r = httpx.post(f"{url}/api/auth/login", json={"username": username, "password": password}, timeout=10)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['token']}"}

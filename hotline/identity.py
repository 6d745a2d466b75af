"""Who is asking: roles, the authenticated principal, and the role checks every route uses.

The ground floor of identity: every package that serves routes (ticketing, recordings, the web
room) depends on this module, never on the web room or on the account store. A request carries
an opaque session token (the ``hotline_token`` cookie, or ``Authorization: Bearer`` for tools);
what it means is decided by the :class:`SessionResolver` the composition root puts on
``app.state.sessions`` (``accounts.sessions.Sessions``: server-side sessions, so signing out,
disabling an account or changing its role ends its sessions at once). Tokens are never taken
from a URL: URLs end up in logs, histories and Referer headers.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, HTTPException, Request, WebSocket, status

from hotline.readers import Readers

TOKEN_COOKIE = "hotline_token"
# what someone whose password must be changed may still reach: the form, and the way out
PASSWORD_CHANGE_PATHS = frozenset({"/api/auth/password", "/api/auth/logout", "/api/auth/me", "/account/password"})
PASSWORD_CHANGE_REQUIRED = "请先修改初始密码"


class Role(enum.StrEnum):
    OPERATOR = "operator"
    LEAD = "lead"
    QA = "qa"
    DEPARTMENT = "department"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    role: Role
    display_name: str = ""
    job_number: str = ""  # 工号, operators
    department_id: int | None = None  # departments only
    centre: str = ""  # their centre's traffic, calls and recordings only ("" = all): hotline/centres.py
    dept_lead: bool = False  # a department's lead (负责人): chooses the handler of each ticket (分派)
    must_change_password: bool = False  # an admin's reset: nothing else until the password is changed


class SessionResolver(Protocol):
    """What a token means now: the live principal of an open session, or None."""

    def resolve(self, token: str) -> Principal | None: ...

    def resolve_many(self, tokens: Iterable[str]) -> dict[str, Principal | None]: ...


class PasswordChangeRequired(HTTPException):
    """403 for everything but the password form; pages turn it into a redirect to that form."""

    def __init__(self) -> None:
        super().__init__(status.HTTP_403_FORBIDDEN, PASSWORD_CHANGE_REQUIRED)


def token_of(headers_auth: str | None, cookie: str | None) -> str | None:
    """The session token a request carries: a bearer header first (tools), else the cookie."""
    if headers_auth and headers_auth.lower().startswith("bearer "):
        return headers_auth[7:].strip() or None
    return cookie or None


def resolve(sessions: SessionResolver | None, token: str | None) -> Principal | None:
    """None without a token or a resolver: an app wired without sessions lets nobody in."""
    if not token or sessions is None or len(token) > 256:
        return None
    return sessions.resolve(token)


# the session read of every request, off the loop: a few threads of the process's own, since a thread
# pool's hand-over cost the loop more than the read (hotline.readers). A second thread starts while a
# read is slow (PostgreSQL far away, a lock), up to eight
_SESSION_READS = Readers(8, name="session-read")


async def optional_principal(request: Request) -> Principal | None:
    """The signed-in principal or None (pages that show something to everyone, e.g. ``/``)."""
    token = token_of(request.headers.get("authorization"), request.cookies.get(TOKEN_COOKIE))
    return await _read(getattr(request.app.state, "sessions", None), token)


async def _read(sessions: SessionResolver | None, token: str | None) -> Principal | None:
    """:func:`resolve` on the session-read threads (no thread for a request without a token)."""
    if not token or sessions is None:
        return None
    return await _SESSION_READS.run(resolve, sessions, token)


async def current_principal(request: Request) -> Principal:
    """The signed-in principal, else 401 (a ``Depends``: FastAPI runs an ``async def`` one on the
    loop, a ``def`` one through the thread pool)."""
    principal = await optional_principal(request)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "未登录或登录已过期，请重新登录",
                            headers={"WWW-Authenticate": "Bearer"})
    if principal.must_change_password and request.url.path not in PASSWORD_CHANGE_PATHS:
        raise PasswordChangeRequired()
    return principal


def websocket_token(ws: WebSocket) -> str | None:
    return token_of(ws.headers.get("authorization"), ws.cookies.get(TOKEN_COOKIE))


async def websocket_principal(ws: WebSocket) -> Principal | None:
    return _on_socket(await _read(getattr(ws.app.state, "sessions", None), websocket_token(ws)))


def socket_principals(sessions: SessionResolver | None, tokens: Iterable[str]) -> dict[str, Principal | None]:
    """:func:`websocket_principal` for the tokens of several open sockets, in one read."""
    if sessions is None:
        return dict.fromkeys(tokens)
    return {token: _on_socket(p) for token, p in sessions.resolve_many(tokens).items()}


def _on_socket(principal: Principal | None) -> Principal | None:
    # a socket carries no page to change the password on: until it is changed, no events
    return None if principal is None or principal.must_change_password else principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role):
    """Dependency factory: the principal, if their role is one of ``roles`` (admin always passes)."""

    async def check(principal: CurrentPrincipal) -> Principal:  # async: nothing to wait for, no thread
        if principal.role is not Role.ADMIN and principal.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "当前角色无权访问此功能")
        return principal

    return check

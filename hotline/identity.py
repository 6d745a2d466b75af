"""Who is asking: roles, the authenticated principal, and the role checks every route uses.

The ground floor of identity: every package that serves routes (ticketing, recordings, the web
room) depends on this module, never on the web room. A signed token is
``base64(json payload).hex(hmac-sha256)``, signed with a secret kept under ``var/secrets``.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, WebSocket, status

from hotline.settings import get_settings

TOKEN_COOKIE = "hotline_token"
DEFAULT_TTL_S = 12 * 3600  # one shift and a half


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
    centre: str = ""  # leads see only their centre ("" = all)
    dept_lead: bool = False  # a department's lead (负责人): chooses the handler of each ticket (分派)


def _secret() -> bytes:
    settings = get_settings()
    path = settings.secrets_dir / "session"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return bytes.fromhex(path.read_text().strip())


def issue_token(principal: Principal, ttl_s: int = DEFAULT_TTL_S, now: float | None = None) -> str:
    payload = asdict(principal) | {"exp": (now or time.time()) + ttl_s}
    body = base64.urlsafe_b64encode(json.dumps(payload, ensure_ascii=False).encode()).decode().rstrip("=")
    sig = hmac.new(_secret(), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{sig}"


def verify_token(token: str, now: float | None = None) -> Principal | None:
    """The principal a token names, or None if it is forged, malformed or expired."""
    body, _, sig = token.partition(".")
    if not body or not sig:
        return None
    expected = hmac.new(_secret(), body.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, sig):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if float(payload.pop("exp")) < (now or time.time()):
            return None
        payload["role"] = Role(payload["role"])
        return Principal(**payload)
    except (ValueError, TypeError, KeyError):
        return None


def _token_from(headers_auth: str | None, cookie: str | None) -> str | None:
    if headers_auth and headers_auth.lower().startswith("bearer "):
        return headers_auth[7:].strip()
    return cookie


def current_principal(request: Request) -> Principal:
    token = _token_from(request.headers.get("authorization"), request.cookies.get(TOKEN_COOKIE))
    principal = verify_token(token) if token else None
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "未登录或登录已过期，请重新登录",
                            headers={"WWW-Authenticate": "Bearer"})
    return principal


def websocket_principal(ws: WebSocket) -> Principal | None:
    token = _token_from(ws.headers.get("authorization"), ws.cookies.get(TOKEN_COOKIE))
    token = token or ws.query_params.get("token")
    return verify_token(token) if token else None


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role):
    """Dependency factory: the principal, if their role is one of ``roles`` (admin always passes)."""

    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role is not Role.ADMIN and principal.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "当前角色无权访问此功能")
        return principal

    return check

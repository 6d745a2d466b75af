"""CSRF defence for requests authenticated by the session cookie.

The cookie is already ``SameSite=Strict`` (a cross-site page cannot make the browser send it).
As a second, independent line we require, on every state-changing ``/api`` request that rides on
the cookie, a header no cross-site form can set: ``X-Requested-With`` (any value; our scripts
send ``hotline``) or a JSON ``Content-Type`` — both force a CORS preflight, which this app never
grants. A browser's ``Origin``, when sent, must also be this host. Requests that carry
``Authorization: Bearer`` (tools, tests) are not exposed to CSRF and pass. Login is covered too:
a forged login would sign the victim in as the attacker.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from hotline.identity import TOKEN_COOKIE

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REFUSAL = "请求被拒绝：缺少防跨站请求标记（请刷新页面后重试）"


def refused(request: Request) -> str | None:
    """Why this request must be refused, or None."""
    if request.method not in UNSAFE or not request.url.path.startswith("/api/"):
        return None
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return None
    if TOKEN_COOKIE not in request.cookies and request.url.path != "/api/auth/login":
        return None  # no session to abuse: the route's own auth answers 401
    origin = request.headers.get("origin")
    if origin and origin.split("://", 1)[-1] != request.headers.get("host", ""):
        return "请求被拒绝：来源不是本系统页面"
    if request.headers.get("x-requested-with"):
        return None
    if request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json":
        return None
    return REFUSAL


class CsrfMiddleware:
    """The check as plain ASGI: starlette's ``BaseHTTPMiddleware`` runs every request through a task
    and memory streams of its own, a few per cent of a web node's CPU in a burst of clicks (py-spy,
    bench/screen_pop.py), for a check that reads only the headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (why := refused(Request(scope))):
            await JSONResponse({"detail": why}, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)

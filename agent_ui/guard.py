"""Two checks on every request and websocket, before any route: the Host header is one of this
server's names (a DNS-rebinding page elsewhere cannot reach a console on 127.0.0.1), and every
answer carries the headers that keep the console out of frames and browsers from guessing types
(plus HSTS over TLS).
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REFUSED = "请求被拒绝：访问地址不是本系统的名称（请使用管理员公布的地址）"


def host_name(host_header: str) -> str:
    """``example:8000`` → ``example``; ``[::1]:8000`` → ``::1``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class GuardMiddleware:
    def __init__(self, app: ASGIApp, hosts: frozenset[str], tls: bool) -> None:
        self.app = app
        self.hosts = hosts
        self.tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if host_name(Headers(scope=scope).get("host", "")) not in self.hosts:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await PlainTextResponse(REFUSED, status_code=400)(scope, receive, send)
            return
        if scope["type"] == "websocket":  # its messages carry no headers: each pop spares a wrapper's call
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "same-origin")
                if self.tls:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            await send(message)

        await self.app(scope, receive, with_headers)

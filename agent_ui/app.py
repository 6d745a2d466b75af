"""The web app: every page, the JSON APIs of the rooms below, the websocket, over parts the
composition root (``launch.compose``) has already wired. This module builds no service; it
serves what it is given and runs the root's start/stop in its lifespan.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

import notify.routes
import recordings.routes
import ticketing.attachment_routes
import ticketing.routes
from accounts.setup import SetupToken
from accounts.store import Accounts
from agent_ui import (
    admin,
    api,
    approvals,
    auth,
    console,
    dept,
    desk,
    health,
    intake,
    lead,
    live,
    oversight,
    pages,
    public,
    qa,
    ws,
)
from agent_ui.csrf import CsrfMiddleware
from agent_ui.guard import GuardMiddleware
from agent_ui.hub import Hub
from hotline.bus import Bus, follow
from hotline.identity import PasswordChangeRequired
from hotline.params import serve_refusals_described
from hotline.settings import Settings
from ticketing.store import Store

if TYPE_CHECKING:
    from cti.service import Live

HERE = Path(__file__).resolve().parent


class Runtime(Protocol):
    """What the app's lifespan starts and stops: the node the composition root wired."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class WebParts:
    """What the web room serves (``app.state`` holds each under its name)."""

    settings: Settings
    engine: sa.Engine
    store: Store
    accounts: Accounts
    bus: Bus
    cti: Live | None = None  # the bridge in this process, or the centre's bridges through the board
    lead: Any = None  # agent_ui.lead.LeadRuntime: the lead's alerts


def create_app(parts: WebParts, runtime: Runtime | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is not None:
            await runtime.start()
        seen = asyncio.get_running_loop().create_task(
            follow(parts.bus, app.state.listeners.on_envelope, kinds=health.Listeners.KINDS), name="health-listeners")
        try:
            yield
        finally:
            seen.cancel()
            await app.state.hub.stop()
            if runtime is not None:
                await runtime.stop()

    # the API description is served to signed-in users only, with Swagger UI from our own files
    app = FastAPI(title="hotline 政务服务热线", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    state = app.state
    for name in ("settings", "engine", "store", "accounts", "bus", "cti", "lead"):
        setattr(state, name, getattr(parts, name))
    state.runtime = runtime  # the node's parts, for the health page and the tests that look inside
    state.sessions = parts.accounts.sessions  # what a token means: hotline.identity asks it on every request
    state.setup_token = SetupToken(parts.settings.secrets_dir)
    # who sits where (the bridge keeps the map; none without it): the websockets' audiences ask it,
    # and the hub routes seat-addressed events by it
    state.roster = _roster_of(parts.cti)
    state.seat_of = lambda username: state.roster().get(username)
    # this node's one reader of the bus for its websockets
    state.hub = Hub(parts.bus, lambda: state.roster(), observe=getattr(parts.cti, "observe", None))
    state.listeners = health.Listeners()  # the listening nodes' heartbeats, for the health page
    state.probes = [
        health.asterisk_probe(parts.settings), health.ami_probe(parts.settings), health.cti_probe(parts.cti),
        health.agi_probe(parts.settings), health.database_probe(parts.engine), health.disk_probe(parts.settings),
        health.call_log_probe(parts.settings), health.witness_probe(parts.settings),
        health.recordings_probe(parts.engine), health.listen_probe(state.listeners),
    ]
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in (auth.router, api.router, pages.router, admin.router, ws.router, live.router, lead.router,
                   lead.transcripts_router, console.router, approvals.router, qa.router, oversight.router,
                   desk.router, dept.router,
                   ticketing.attachment_routes.router,  # before ticketing.routes: its /{action} would take it
                   ticketing.routes.router, recordings.routes.router, notify.routes.router,
                   intake.router, intake.bridge_router, public.router):
        app.include_router(router)
    app.add_middleware(CsrfMiddleware)  # cookie-borne state changes need a header no other site can send
    app.add_middleware(GuardMiddleware, hosts=parts.settings.hosts, tls=parts.settings.tls)  # outermost: first

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) or "请求" for e in exc.errors()})
        return JSONResponse({"detail": f"请求内容有误：{'、'.join(fields)}"}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse | RedirectResponse:
        # people who open a page without a session land on the login page, not on JSON
        wants_page = "text/html" in request.headers.get("accept", "") and not request.url.path.startswith("/api")
        if exc.status_code == 401 and wants_page:
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        if isinstance(exc, PasswordChangeRequired) and wants_page:
            return RedirectResponse("/account/password", status_code=303)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    serve_refusals_described(app)  # the OpenAPI document says what a 422 really is (one Chinese sentence)
    return app


def _roster_of(cti: Live | None) -> Callable[[], dict[str, str]]:
    """operator username → the seat they are signed in to. The bridge hands out one shared dict
    per roster version, so asking per message costs a lookup, not a rebuild."""
    if cti is None:
        empty: dict[str, str] = {}
        return lambda: empty
    return cti.operator_seats

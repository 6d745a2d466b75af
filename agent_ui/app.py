"""The web app and the one place that wires everything: database, store, accounts, and (as they
land) the CTI bridge, the bus and the workers. ``hotline up`` and ``hotline web`` serve it
through :func:`server_config`."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlmodel import Session

import recordings.routes
import recordings.service
from agent_ui import api, approvals, console, health, lead, live, pages, ws
from agent_ui.accounts import ensure_demo_accounts
from agent_ui.csrf import CsrfMiddleware
from agent_ui.db import migrate as migrate_accounts
from agent_ui.services import Services
from hotline.bus import InProcessBus
from hotline.settings import Settings, get_settings

HERE = Path(__file__).resolve().parent


def create_app(settings: Settings | None = None, *, freeze_heap: bool = False) -> FastAPI:
    """``freeze_heap``: for the one long-running server process (see :func:`server_config`)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import ticketing.routes
        from ticketing.service import service_from_settings

        service = service_from_settings(settings)  # migrates the ticketing tables
        ticketing.routes._service = service  # the router's dependency serves this one store
        engine = service.engine
        migrate_accounts(engine)
        if settings.demo_accounts:
            with Session(engine) as session:
                ensure_demo_accounts(session)
        app.state.settings = settings
        app.state.bus = InProcessBus()  # each envelope builds its message once for every websocket
        app.state.engine = engine
        app.state.tickets = service
        services = Services(settings, engine, service, app.state.bus)
        app.state.services = services
        app.state.seat_of = services.seat_of  # the websocket's audience filter
        app.state.probes = [
            health.asterisk_probe(settings), health.ami_probe(settings), health.cti_probe(services),
            health.agi_probe(settings), health.database_probe(engine), health.disk_probe(settings),
        ]
        stop_recordings = recordings.service.start(app, settings, engine)  # tables, bus → catalog, spool scan
        await services.start()
        lead_runtime = lead.start(app, settings)  # the lead's alert rules, fed by the bus
        await lead_runtime.start()
        if freeze_heap:
            # ~200 000 objects live from start-up to shutdown (libraries, the directory, the
            # dictionaries): a full collection walking them stalls the event loop for 100 ms+,
            # every pop of a burst arrived that much later. Frozen, collections skip them.
            gc.collect()
            gc.freeze()
        yield
        await lead_runtime.stop()
        await services.stop()
        stop_recordings()
        engine.dispose()

    # the API description is served to signed-in users only, with Swagger UI from our own files
    app = FastAPI(title="hotline 政务服务热线", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(ws.router)
    app.include_router(live.router)
    app.include_router(lead.router)
    app.include_router(console.router)
    app.include_router(approvals.router)
    app.add_middleware(CsrfMiddleware)  # cookie-borne state changes need a header no other site can send
    import ticketing.routes

    app.include_router(ticketing.routes.router)
    app.include_router(recordings.routes.router)
    app.include_router(recordings.routes.pages)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) or "请求" for e in exc.errors()})
        return JSONResponse({"detail": f"请求内容有误：{'、'.join(fields)}"}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse | RedirectResponse:
        # people who open a page without a session land on the login page, not on JSON
        wants_page = "text/html" in request.headers.get("accept", "") and not request.url.path.startswith("/api")
        if exc.status_code == 401 and wants_page:
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    return app


def server_config(settings: Settings, **overrides: Any) -> uvicorn.Config:
    """How the console is served, the same for ``hotline up``, ``hotline web`` and the benchmarks.

    No permessage-deflate: the console's messages are a few KB on an office LAN, and compressing
    each one for each operator cost the single event loop more than the bytes it saved (a burst
    of 50 pops went out ≈ 10 ms later with it).
    """
    options: dict[str, Any] = {
        "host": settings.web_host, "port": settings.web_port, "proxy_headers": False,
        "ws_per_message_deflate": False, "log_level": "info",
    }
    return uvicorn.Config(create_app(settings, freeze_heap=True), **(options | overrides))

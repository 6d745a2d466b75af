"""Server-rendered pages; live parts update over the API/websocket without reloads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from accounts.policy import MIN_LENGTH
from hotline.identity import CurrentPrincipal, Principal, Role, optional_principal, require_roles

templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
router = APIRouter(include_in_schema=False)

Supervisors = Annotated[Principal, Depends(require_roles(Role.LEAD))]
# where each role starts its day
HOMES = {Role.OPERATOR: "/console", Role.LEAD: "/lead", Role.QA: "/qa", Role.DEPARTMENT: "/dept",
         Role.ADMIN: "/admin"}


def safe_next(target: str) -> str:
    """Where to go after signing in: a path on this site, never another site.

    Browsers read a backslash as a slash, and skip tabs and newlines, so ``/`` + backslash +
    ``evil.example`` goes off-site: only a plain path of printable characters without
    backslashes, and not starting with ``//``, is kept.
    """
    if (not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(c) < 0x21 or ord(c) == 0x7F for c in target) or len(target) > 512):
        return "/"
    return target


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> RedirectResponse:
    principal = await optional_principal(request)
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    if principal.must_change_password:
        return RedirectResponse("/account/password", status_code=303)
    return RedirectResponse(HOMES.get(principal.role, "/login"), status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {"next": safe_next(next)})


@router.get("/account/password", response_class=HTMLResponse)
async def password_page(request: Request, principal: CurrentPrincipal) -> HTMLResponse:
    return templates.TemplateResponse(request, "account/password.html", {
        "user": principal, "settings": request.app.state.settings, "forced": principal.must_change_password,
        "home": HOMES.get(principal.role, "/"), "min_length": MIN_LENGTH})


@router.get("/setup", response_class=HTMLResponse)
async def setup_page(request: Request) -> HTMLResponse:
    """Production's first admin: open only while a one-time token waits and no admin exists."""
    open_ = request.app.state.setup_token.pending() and not await run_in_threadpool(
        request.app.state.accounts.admins_present)
    return templates.TemplateResponse(request, "account/setup.html", {
        "settings": request.app.state.settings, "open": open_, "min_length": MIN_LENGTH},
        status_code=200 if open_ else 404)


@router.get("/health", response_class=HTMLResponse)
async def health_page(request: Request, principal: Supervisors) -> HTMLResponse:
    return templates.TemplateResponse(request, "health.html", {"user": principal,
                                                               "settings": request.app.state.settings})


@router.get("/docs", response_class=HTMLResponse)
async def api_docs(_principal: CurrentPrincipal) -> HTMLResponse:
    """Swagger UI over /api/openapi.json, from vendored files (no CDN on this network)."""
    return get_swagger_ui_html(openapi_url="/api/openapi.json", title="hotline API",
                               swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
                               swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
                               swagger_favicon_url="/static/vendor/swagger-ui/favicon.png")

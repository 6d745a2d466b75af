"""Server-rendered pages; live parts update over the API/websocket without reloads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from hotline.identity import TOKEN_COOKIE, CurrentPrincipal, Principal, Role, require_roles, verify_token

templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
router = APIRouter(include_in_schema=False)

Supervisors = Annotated[Principal, Depends(require_roles(Role.LEAD))]
# where each role starts its day
HOMES = {Role.OPERATOR: "/console", Role.LEAD: "/lead", Role.QA: "/qa", Role.DEPARTMENT: "/dept",
         Role.ADMIN: "/health"}


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> RedirectResponse:
    token = request.cookies.get(TOKEN_COOKIE)
    principal = verify_token(token) if token else None
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(HOMES.get(principal.role, "/health"), status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/") -> HTMLResponse:
    safe_next = next if next.startswith("/") and not next.startswith("//") else "/"
    return templates.TemplateResponse(request, "login.html", {"next": safe_next})


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

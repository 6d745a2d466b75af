"""JSON API of the web app itself: the health of every component and the API description
(sign-in lives in :mod:`agent_ui.auth`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from agent_ui.health import run_checks
from hotline.identity import CurrentPrincipal, Principal, Role, require_roles

router = APIRouter(prefix="/api")

Supervisors = Annotated[Principal, Depends(require_roles(Role.LEAD))]


@router.get("/health")
async def health(_principal: Supervisors, request: Request) -> dict[str, object]:
    checks = await run_checks(request.app.state.probes)
    return {"ok": all(c.state != "down" for c in checks), "components": [c.as_dict() for c in checks]}


@router.get("/openapi.json", include_in_schema=False)
async def openapi(_principal: CurrentPrincipal, request: Request) -> dict[str, object]:
    return request.app.openapi()

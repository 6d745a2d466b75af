"""JSON API of the web app itself: sign-in and the health of every component."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from agent_ui.health import run_checks
from hotline.identity import DEFAULT_TTL_S, TOKEN_COOKIE, CurrentPrincipal, Principal, Role, issue_token, require_roles

router = APIRouter(prefix="/api")

Supervisors = Annotated[Principal, Depends(require_roles(Role.LEAD))]


class LoginForm(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


@router.post("/auth/login")
async def login(form: LoginForm, request: Request, response: Response) -> dict[str, object]:
    from fastapi.concurrency import run_in_threadpool

    principal = await run_in_threadpool(request.app.state.accounts.authenticate, form.username.strip(), form.password)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "用户名或密码错误")
    token = issue_token(principal)
    response.set_cookie(TOKEN_COOKIE, token, max_age=DEFAULT_TTL_S, httponly=True, samesite="strict")
    return {"token": token, "user": {"username": principal.username, "role": principal.role.value,
                                     "display_name": principal.display_name, "job_number": principal.job_number}}


@router.post("/auth/logout")
async def logout(_principal: CurrentPrincipal, response: Response) -> dict[str, bool]:
    response.delete_cookie(TOKEN_COOKIE)
    return {"ok": True}


@router.get("/auth/me")
async def me(principal: CurrentPrincipal) -> dict[str, object]:
    return {"username": principal.username, "role": principal.role.value,
            "display_name": principal.display_name, "job_number": principal.job_number}


@router.get("/health")
async def health(_principal: Supervisors, request: Request) -> dict[str, object]:
    checks = await run_checks(request.app.state.probes)
    return {"ok": all(c.state != "down" for c in checks), "components": [c.as_dict() for c in checks]}


@router.get("/openapi.json", include_in_schema=False)
async def openapi(_principal: CurrentPrincipal, request: Request) -> dict[str, object]:
    return request.app.openapi()

"""账号管理: the admin's page and API over :class:`accounts.admin.AccountAdmin`.

A new account or a reset gets a temporary password, shown once to the admin and changed by its
owner at the first sign-in; the admin never chooses anyone's password. Every change is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from accounts.admin import ROLE_LABELS, AccountAdmin, Actor
from accounts.store import AccountError
from agent_ui.auth import client_of
from agent_ui.pages import templates
from hotline.identity import Principal, Role, require_roles

router = APIRouter(tags=["账号管理"])
Admins = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
T = TypeVar("T")
Username = Annotated[str, Field(min_length=1, max_length=64)]


class AccountForm(BaseModel):
    username: Username
    role: str = Field(max_length=16)
    display_name: str = Field(default="", max_length=64)
    job_number: str = Field(default="", max_length=16)
    department_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    centre: str = Field(default="", max_length=32)
    dept_lead: bool = False


class AccountChange(BaseModel):
    role: str | None = Field(default=None, max_length=16)
    display_name: str | None = Field(default=None, max_length=64)
    job_number: str | None = Field(default=None, max_length=16)
    department_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    centre: str | None = Field(default=None, max_length=32)
    dept_lead: bool | None = None


def _admin(request: Request) -> AccountAdmin:
    return AccountAdmin(request.app.state.accounts)


def _actor(principal: Principal, request: Request) -> Actor:
    return Actor(principal.username, client_of(request))


async def _run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """The store's refusals as HTTP answers with their Chinese message."""
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except AccountError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from None
    except LookupError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e.args[0]) if e.args else "账号不存在") from None


@router.get("/admin", response_class=HTMLResponse)
async def accounts_page(request: Request, principal: Admins) -> HTMLResponse:
    settings = request.app.state.settings
    return templates.TemplateResponse(request, "admin/accounts.html", {
        "user": principal, "settings": settings, "active": "accounts", "roles": ROLE_LABELS,
        "centres": sorted(settings.centres), "mode": settings.mode})


@router.get("/api/admin/accounts")
async def list_accounts(request: Request, _principal: Admins) -> list[dict[str, Any]]:
    return await _run(_admin(request).list)


@router.post("/api/admin/accounts", status_code=status.HTTP_201_CREATED)
async def create_account(form: AccountForm, request: Request, principal: Admins) -> dict[str, Any]:
    account, temporary = await _run(_admin(request).create, _actor(principal, request), form.username, form.role,
                                    display_name=form.display_name, job_number=form.job_number,
                                    department_id=form.department_id, centre=form.centre, dept_lead=form.dept_lead)
    return {"account": account, "temporary_password": temporary}


@router.patch("/api/admin/accounts/{username}")
async def change_account(username: str, change: AccountChange, request: Request, principal: Admins) -> dict[str, Any]:
    fields = change.model_dump(exclude_unset=True)  # a null sent on purpose (no department) stays
    return await _run(_admin(request).update, _actor(principal, request), username[:64], **fields)


@router.post("/api/admin/accounts/{username}/disable")
async def disable_account(username: str, request: Request, principal: Admins) -> dict[str, Any]:
    return await _run(_admin(request).set_active, _actor(principal, request), username[:64], False)


@router.post("/api/admin/accounts/{username}/enable")
async def enable_account(username: str, request: Request, principal: Admins) -> dict[str, Any]:
    return await _run(_admin(request).set_active, _actor(principal, request), username[:64], True)


@router.post("/api/admin/accounts/{username}/reset-password")
async def reset_password(username: str, request: Request, principal: Admins) -> dict[str, str]:
    temporary = await _run(_admin(request).reset_password, _actor(principal, request), username[:64])
    return {"temporary_password": temporary}


@router.post("/api/admin/accounts/{username}/logout")
async def end_sessions(username: str, request: Request, principal: Admins) -> dict[str, int]:
    return {"revoked": await _run(_admin(request).revoke_sessions, _actor(principal, request), username[:64])}


@router.get("/api/admin/accounts/{username}/sessions")
async def sessions_of(username: str, request: Request, _principal: Admins) -> list[dict[str, object]]:
    infos = await run_in_threadpool(request.app.state.accounts.sessions.list, username[:64], open_only=False, limit=50)
    return [i.as_dict() for i in infos]

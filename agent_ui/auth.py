"""Sign-in, sign-out, one's own password, and production's first administrator (``/setup``).

The session token goes out once, in an ``HttpOnly``, ``SameSite=Strict`` cookie (``Secure`` over
TLS) and in the sign-in answer for tools that send it as a bearer header; the server keeps only
its hash. Failed sign-ins are counted per account and per client; a held account or client gets
429 with ``Retry-After`` and no password check at all.
"""

from __future__ import annotations

import math

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from accounts.admin import AccountAdmin, Actor
from accounts.store import AccountError
from hotline.identity import TOKEN_COOKIE, CurrentPrincipal, Principal, token_of

router = APIRouter(prefix="/api/auth")
WRONG = "用户名或密码错误"


class LoginForm(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class PasswordForm(BaseModel):
    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class SetupForm(BaseModel):
    token: str = Field(min_length=1, max_length=128)
    username: str = Field(min_length=1, max_length=64)
    display_name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


def client_of(request: Request) -> str:
    return request.client.host if request.client else ""


def user_json(principal: Principal) -> dict[str, object]:
    return {"username": principal.username, "role": principal.role.value, "display_name": principal.display_name,
            "job_number": principal.job_number, "must_change_password": principal.must_change_password}


@router.post("/login")
async def login(form: LoginForm, request: Request, response: Response) -> dict[str, object]:
    accounts = request.app.state.accounts
    settings = request.app.state.settings
    result = await run_in_threadpool(accounts.sign_in, form.username.strip(), form.password,
                                     client=client_of(request), user_agent=request.headers.get("user-agent", ""))
    if result.held_s > 0:
        minutes = max(1, math.ceil(result.held_s / 60))
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, f"登录失败次数过多，请 {minutes} 分钟后再试",
                            headers={"Retry-After": str(math.ceil(result.held_s))})
    if result.principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, WRONG)
    response.set_cookie(TOKEN_COOKIE, result.token, max_age=settings.session_absolute_hours * 3600, httponly=True,
                        samesite="strict", secure=settings.secure_cookies, path="/")
    return {"token": result.token, "user": user_json(result.principal)}


@router.post("/logout")
async def logout(request: Request, response: Response) -> dict[str, bool]:
    """Ends the session on the server (not only the cookie); answers the same with no session."""
    token = token_of(request.headers.get("authorization"), request.cookies.get(TOKEN_COOKIE))
    if token:
        await run_in_threadpool(request.app.state.accounts.sign_out, token, client_of(request))
    response.delete_cookie(TOKEN_COOKIE, path="/", secure=request.app.state.settings.secure_cookies,
                           httponly=True, samesite="strict")
    return {"ok": True}


@router.get("/me")
async def me(principal: CurrentPrincipal) -> dict[str, object]:
    return user_json(principal)


@router.post("/password")
async def change_password(form: PasswordForm, principal: CurrentPrincipal, request: Request) -> dict[str, bool]:
    """One's own password: the old one, the policy; every other session of the account ends."""
    token = token_of(request.headers.get("authorization"), request.cookies.get(TOKEN_COOKIE)) or ""
    try:
        await run_in_threadpool(request.app.state.accounts.change_password, token, form.old_password,
                                form.new_password, client_of(request))
    except AccountError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from None
    return {"ok": True}


@router.post("/setup")
async def setup(form: SetupForm, request: Request) -> dict[str, object]:
    """Production's first admin, with the one-time token printed at start (no default password)."""
    accounts, token = request.app.state.accounts, request.app.state.setup_token
    if await run_in_threadpool(accounts.admins_present) or not token.check(form.token.strip()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "初始化令牌无效或已使用")
    try:
        made, _ = await run_in_threadpool(
            lambda: AccountAdmin(accounts).create(Actor("setup", client_of(request)), form.username, "admin",
                                                  display_name=form.display_name, password=form.password))
    except AccountError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from None
    token.consume()
    accounts.audit.record("setup", "setup_admin", made["username"], "", client_of(request))
    return {"ok": True, "username": made["username"]}

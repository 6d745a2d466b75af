"""分机密码: the seats' and department lines' SIP passwords, for admins (hotline/asterisk/secrets.py).

The list says which lines have a password and since when, never the password itself; an admin
sees one only by asking for it (查看), and every such look is audited like every rotation (更换),
whose new password is answered once. A rotation reloads PJSIP in the running Asterisk (no restart,
calls go on); the phone needs the new password at its next registration. What production mode
would refuse (:func:`~hotline.asterisk.secrets.weak_telephony_secrets`) is shown as a warning.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from agent_ui.auth import client_of
from agent_ui.pages import templates
from hotline.asterisk import rotation, secrets
from hotline.asterisk.errors import AsteriskError
from hotline.identity import Principal, Role, require_roles
from hotline.settings import Settings

router = APIRouter(tags=["分机密码"])
Admins = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Line = Annotated[str, Path(min_length=1, max_length=16, description="坐席或部门线路的分机号，例如 8001")]
NO_STORE = {"Cache-Control": "no-store"}  # an answer with a password is never kept by a browser or proxy


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _line(settings: Settings, line: str) -> secrets.SipLine:
    """The configured line, or a 404 that says which lines there are."""
    found = next((sip for sip in secrets.lines(settings) if sip.line == line), None)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"没有这条线路：{line}（坐席 {'、'.join(settings.seats)}；"
                                                      f"部门线路 {'、'.join(settings.department_lines)}）")
    return found


def _public(sip: secrets.SipLine) -> dict[str, Any]:
    return {"line": sip.line, "kind": sip.kind, "label": sip.label, "has_password": bool(sip.password),
            "changed_at": sip.changed_at.isoformat() if sip.changed_at else None}


def _audit(request: Request, principal: Principal, action: str, sip: secrets.SipLine, detail: str) -> None:
    request.app.state.accounts.audit.record(principal.username, action, sip.line, detail, client_of(request))


def _overview(settings: Settings) -> dict[str, Any]:
    return {"lines": [_public(sip) for sip in secrets.lines(settings)],
            "problems": secrets.weak_telephony_secrets(settings), "asterisk_mode": settings.asterisk_mode}


@router.get("/admin/sip", response_class=HTMLResponse)
async def sip_page(request: Request, principal: Admins) -> HTMLResponse:
    return templates.TemplateResponse(request, "admin/sip.html", {
        "user": principal, "settings": _settings(request), "active": "sip"})


@router.get("/api/admin/sip")
async def sip_lines(request: Request, _principal: Admins) -> dict[str, Any]:
    """Every line (without its password) and what is unsafe about the telephony credentials."""
    return await run_in_threadpool(_overview, _settings(request))


@router.post("/api/admin/sip/{line}/reveal")
async def reveal(line: Line, request: Request, response: Response, principal: Admins) -> dict[str, Any]:
    """The line's current password, for the admin who asked: audited."""
    sip = await run_in_threadpool(_line, _settings(request), line)
    if not sip.password:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{sip.label} 尚未生成密码：请运行 hotline asterisk install，"
                                                      "或在此更换密码")
    await run_in_threadpool(_audit, request, principal, "sip_reveal", sip, sip.label)
    response.headers.update(NO_STORE)
    return {**_public(sip), "password": sip.password}


def _rotate(settings: Settings, line: str) -> tuple[secrets.SipLine, bool, str]:
    """(the line with its new password, whether Asterisk reloaded it, what to tell the admin)."""
    _line(settings, line)
    try:
        done = rotation.rotate(settings, line)
    except AsteriskError as exc:  # the new password is stored; only rendering or reloading failed
        return _line(settings, line), False, f"新密码已保存，但 Asterisk 未能加载：{exc}"
    if done.reloaded:
        return done.sip, True, "Asterisk 已重新加载 PJSIP 配置（未重启，通话不受影响）；请在话机上改用新密码重新注册。"
    if settings.asterisk_mode == "remote":
        return done.sip, False, (f"已写入 {settings.asterisk_dir / 'etc-remote' / 'pjsip.conf'}：请复制到 Asterisk "
                                 f"服务器并执行 {rotation.RELOAD_COMMAND}")
    return done.sip, False, "Asterisk 未运行：下次启动时生效。"


@router.post("/api/admin/sip/{line}/rotate")
async def rotate(line: Line, request: Request, response: Response, principal: Admins) -> dict[str, Any]:
    """A new password for the line, answered this once, and reloaded into the running Asterisk: audited."""
    sip, reloaded, note = await run_in_threadpool(_rotate, _settings(request), line)
    await run_in_threadpool(_audit, request, principal, "sip_rotate", sip, f"{sip.label}；{note}")
    response.headers.update(NO_STORE)
    return {**_public(sip), "password": sip.password, "reloaded": reloaded, "note": note}

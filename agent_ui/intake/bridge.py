"""``POST /api/intake/{channel}``: the WeChat and SMS bridges (and any other system) hand in what
citizens sent them. Each bridge has its own key (setting ``intake_bridge_keys``, channel → key),
sent as ``Authorization: Bearer <key>`` and compared in constant time; with no key configured for
the channel every request is refused, and an unknown channel, a missing key and a wrong key all get
the same 401. The bridge's ``external_id`` makes a resend harmless: the same submission comes back.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse

from agent_ui.intake.common import TEXTS, call, check_submission, publish, read_json, receipt, submission_schema
from hotline.params import NO_NUL, json_body

router = APIRouter(tags=["网络来件"], dependencies=[NO_NUL])

BRIDGE_CHANNELS = ("wechat", "sms", "api")
BRIDGE_FIELDS = frozenset({"external_id", "name", "contact", "place", "text", "confidential"})
REFUSED = "接口未登录：请在 Authorization 头中提供该渠道的接口密钥（Bearer）"


def authenticate(request: Request, channel: str) -> None:
    """The key configured for ``channel`` must be the one sent; otherwise 401, whatever was wrong."""
    sent = request.headers.get("authorization", "")
    given = sent[7:].strip() if sent[:7].lower() == "bearer " else ""
    keys: dict[str, Any] = request.app.state.settings.intake_bridge_keys
    secret = keys.get(channel) if channel in BRIDGE_CHANNELS else None
    expected = secret.get_secret_value() if secret is not None else ""
    # compared even when there is nothing to compare with: the time taken says nothing either
    same = hmac.compare_digest(given.encode(), (expected or "\0").encode())
    if not (expected and given and same):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, REFUSED, headers={"WWW-Authenticate": "Bearer"})


@router.post("/api/intake/{channel}", summary="微信/短信等渠道接入来件（按渠道密钥认证，external_id 去重）",
             openapi_extra=json_body(submission_schema(BRIDGE_FIELDS, ("external_id", "contact", "text"))))
async def bridge_submit(channel: str, request: Request) -> JSONResponse:
    authenticate(request, channel)
    body = check_submission(read_json(await request.body()), allowed=BRIDGE_FIELDS)
    if not body.get("external_id"):
        label = TEXTS["external_id"][0]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"缺少{label} external_id（重发时据此去重）")
    made = await call(request.app.state.store.intake.submit, channel, body)
    await publish(request, made.id, made.channel, made.status)
    return JSONResponse(receipt(made))

"""网络来件 (the other channels' queue): the ``/intake`` page and its API for operators and leads.

Submissions from the web form and the bridges wait here, the oldest first, each with its 3-minute
mark (004 §5.1.2.3). 受理 turns one into a ticket from a form filled from it (the store sets the
channel and measures the response at that moment); 不受理 keeps a reason. Every change goes out
on the bus as ``intake_update``: the queue and the consoles' badge follow it live.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse

from agent_ui.intake.common import call, publish, read_json, submission_json
from agent_ui.pages import templates
from hotline.identity import Principal, Role, require_roles
from hotline.params import NO_NUL, DbId, json_body
from ticketing.intake import CHANNELS, RESPOND_WITHIN
from ticketing.models import Category, HandlingMode
from ticketing.routes import publish_change
from ticketing.schemas import TicketCreate

router = APIRouter(tags=["网络来件"], dependencies=[NO_NUL])
Centre = Annotated[Principal, Depends(require_roles(Role.OPERATOR, Role.LEAD))]


@router.get("/intake", response_class=HTMLResponse, include_in_schema=False)
async def intake_page(request: Request, who: Centre) -> HTMLResponse:
    return templates.TemplateResponse(request, "intake/intake.html", {
        "user": who, "settings": request.app.state.settings, "categories": [c.value for c in Category],
        "modes": [m.value for m in HandlingMode], "target_s": int(RESPOND_WITHIN.total_seconds()),
        "home": "/lead" if who.role is Role.LEAD else "/console"})


def _queue(store: Any) -> dict[str, Any]:
    now = store.ctx.clock()  # the store's own clock measures the 3 minutes: the page counts from it
    pending = store.intake.pending()
    return {"now": now.timestamp(), "target_s": int(RESPOND_WITHIN.total_seconds()),
            "items": [submission_json(s) for s in pending]}


@router.get("/api/intake/queue", summary="待受理的网络来件（最早的在前）")
async def queue(request: Request, _who: Centre) -> dict[str, Any]:
    return await run_in_threadpool(_queue, request.app.state.store)


@router.post("/api/intake/queue/{submission_id}/confirm", summary="受理：按来件填写的工单登记（渠道随来件）",
             openapi_extra=json_body(TicketCreate))
async def confirm(submission_id: DbId, request: Request, who: Centre) -> dict[str, Any]:
    ticket = await call(request.app.state.store.intake.confirm, submission_id, read_json(await request.body()), who)
    channel = next((code for code, label in CHANNELS.items() if label == ticket.channel), ticket.channel)
    await publish(request, submission_id, channel, "confirmed")
    await publish_change(request, ticket.id, "create", who.username)
    return jsonable_encoder(ticket)  # with the query code: the operator tells it to the citizen


@router.post("/api/intake/queue/{submission_id}/reject", summary="不受理（须填写原因）", openapi_extra=json_body(
    {"type": "object", "properties": {"reason": {"type": "string", "minLength": 1}}, "required": ["reason"]}))
async def reject(submission_id: DbId, request: Request, who: Centre) -> dict[str, Any]:
    reason = read_json(await request.body()).get("reason")
    done = await call(request.app.state.store.intake.reject, submission_id, reason if isinstance(reason, str) else "",
                      who)
    await publish(request, done.id, done.channel, done.status)
    return submission_json(done)

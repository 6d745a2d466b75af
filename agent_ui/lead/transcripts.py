"""A lead reads a live call's transcript (issue #16): from the wallboard, for a call of their own
centre, each opening written to the recordings' access log like a play of a recording.

The lines are the listening node's settled sentences as written to the database (every node of the
centre reads the same), asked again every second by the page; the operator's own console gets the
partials too, from its websocket, which never carries a transcript to anyone else.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session, select

from agent_ui.centre import scope, seat_queues
from agent_ui.lead.routes import Leads
from hotline.params import NO_NUL
from recordings import live_legs
from recordings.access import log_access
from recordings.models import AccessLog, utcnow

router = APIRouter(dependencies=[NO_NUL])
LOGGED_FOR = timedelta(minutes=10)  # one log row per lead and call while the page keeps asking
STATES = {"listening": "转写中", "complete": "已完成", "dropped": "已中断（通话结束后转写）",
          "partial": "已完成（三方通话：录音在通话结束后另行转写）"}


def read(engine: Any, who: Any, call_id: str, client: str) -> dict[str, Any] | None:
    """The call's legs, or None if nothing was heard of it; the access is logged (once a while)."""
    legs = live_legs.legs_of(engine, call_id)
    if not legs:
        return None
    detail = f"通话 {call_id}"
    with Session(engine) as s:
        recent = s.exec(select(AccessLog.id).where(
            AccessLog.username == who.username, AccessLog.action == "live", AccessLog.detail == detail,
            AccessLog.at > utcnow() - LOGGED_FOR)).first()
        if recent is None:
            log_access(s, who, None, "", "live", True, detail, client)
    latest = max(legs, key=lambda leg: leg.started_at)
    # each leg's times count from its own start: a transfer's second operator leg starts later
    t0 = min(leg.started_at for leg in legs)
    lines = sorted(({"speaker": leg.speaker, "seat": leg.seat, **ln,
                     "at": (leg.started_at - t0).total_seconds() + ln.get("start", 0.0)}
                    for leg in legs for ln in leg.lines), key=lambda ln: (ln["at"], ln["speaker"]))
    return {"call_id": call_id, "seat": latest.seat, "lines": lines,
            "legs": {_key(leg): {"state": leg.state, "label": STATES.get(leg.state, leg.state), "model": leg.model,
                                 "seat": leg.seat, "audio_s": leg.audio_s} for leg in legs}}


def _key(leg: Any) -> str:
    return leg.speaker if leg.part == 1 else f"{leg.speaker}{leg.part}"  # operator2: after a transfer


@router.get("/api/lead/live/{call_id}")
async def live_transcript(call_id: str, request: Request, who: Leads) -> dict[str, Any]:
    if len(call_id) > 64:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "通话编号过长")
    engine = request.app.state.engine
    legs = await run_in_threadpool(live_legs.legs_of, engine, call_id)
    seat = legs[0].seat if legs else ""
    if not legs or not scope(request.app, who).has_seat_queues(seat_queues(request.app)(seat)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "该通话没有实时转写")  # another centre's: as unknown
    client = request.client.host if request.client else ""
    got = await run_in_threadpool(read, engine, who, call_id, client)
    if got is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "该通话没有实时转写")
    return got

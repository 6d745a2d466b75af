"""What the intake routes share (the citizens' web form, the bridges, the operators' queue): the
submission's checks in plain Chinese, its JSON, the bus event, and the store's refusals as HTTP.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, TypeVar

from fastapi import HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder

from hotline.params import inline_defs
from ticketing.intake import SubmissionIn, SubmissionRead
from ticketing.models import LONG, MEDIUM, SHORT
from ticketing.schemas import Forbidden, InvalidInput, NotFound, SubmissionChanged, check_text
from ticketing.workflow import TransitionError

T = TypeVar("T")

# field → (label, required, max length); the store checks again (its own limits are the same)
TEXTS = {"name": ("姓名", False, SHORT), "contact": ("联系方式", True, SHORT), "place": ("事发地点", False, MEDIUM),
         "text": ("反映内容", True, LONG), "external_id": ("外部编号", False, SHORT)}
MIN_LENGTH = 5  # a contact and a matter shorter than this are no report


def submission_schema(allowed: frozenset[str], required: tuple[str, ...] = ("contact", "text")) -> dict[str, Any]:
    """The JSON schema of a submission with the fields a channel may send (for the OpenAPI
    description: these routes read their body raw, to refuse it in words a citizen understands)."""
    schema = inline_defs(SubmissionIn.model_json_schema())
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k in allowed}
    schema["required"] = [k for k in required if k in allowed]
    return schema


def read_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 422 that says so."""
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "请求内容不是有效的 JSON") from None
    if not isinstance(data, dict):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "请求内容应为 JSON 对象") from None
    return data


def check_submission(data: dict[str, Any], *, allowed: frozenset[str]) -> dict[str, Any]:
    """The submission's fields, or a 422 listing every problem in words a citizen understands."""
    problems = [f"不认识的字段“{k}”" for k in data if k not in allowed]
    out: dict[str, Any] = {}
    for key in sorted(allowed & TEXTS.keys()):
        label, required, longest = TEXTS[key]
        value = data.get(key, "")
        if value is None and key == "external_id":
            continue
        if not isinstance(value, str):
            problems.append(f"{label}应为文本")
            continue
        try:
            value = check_text(value)  # control characters refused, the ends stripped
        except ValueError as e:
            problems.append(f"{label}{e}")
            continue
        if required and len(value) < MIN_LENGTH:
            problems.append(f"请填写{label}（至少 {MIN_LENGTH} 个字）" if value else f"请填写{label}")
        elif len(value) > longest:
            problems.append(f"{label}过长（最多 {longest} 个字）")
        out[key] = value
    if "confidential" in data and not isinstance(data["confidential"], bool):
        problems.append("是否保密应为 true 或 false")
    out["confidential"] = data.get("confidential") is True
    if problems:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "；".join(problems))
    return out


def receipt(s: SubmissionRead) -> dict[str, Any]:
    """What the sender learns of a submission: when it arrived and by when it is answered."""
    return jsonable_encoder({"id": s.id, "channel": s.channel, "status": s.status, "received_at": s.received_at,
                             "respond_by": s.respond_by})


def submission_json(s: SubmissionRead) -> dict[str, Any]:
    """The whole submission, for the centre (operators and leads see the reporter: they call back)."""
    return jsonable_encoder(asdict(s))


async def publish(request: Request, submission_id: int, channel: str, state: str) -> None:
    """The operators' queues and consoles refresh (``intake_update``)."""
    # stored already: the refresh never fails the request (a Redis bus away sends it when back)
    request.app.state.bus.publish_nowait(SubmissionChanged(at=time.time(), submission_id=submission_id,
                                                           channel=channel, status=state))


# the ticket store's refusals → the HTTP status the pages expect (their messages are Chinese)
REFUSED_AS = {InvalidInput: status.HTTP_422_UNPROCESSABLE_CONTENT, TransitionError: status.HTTP_409_CONFLICT,
              NotFound: status.HTTP_404_NOT_FOUND, Forbidden: status.HTTP_403_FORBIDDEN}


@contextmanager
def store_errors() -> Iterator[None]:
    try:
        yield
    except tuple(REFUSED_AS) as exc:
        code = next(c for kind, c in REFUSED_AS.items() if isinstance(exc, kind))
        raise HTTPException(code, str(exc) or "请求无法完成") from None


async def call(fn: Callable[..., T], *args: Any) -> T:
    """A store call in the thread pool (it blocks), its refusals as HTTP."""
    with store_errors():
        return await run_in_threadpool(fn, *args)

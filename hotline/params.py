"""What every room's routes accept, defined once: database ids, page sizes and offsets the database
can hold, whole numbers in ASCII digits, no NUL characters, and request bodies described whole.

Fuzzing the API through its OpenAPI description (issue #13) found the same few mistakes in many
routes. Python's ``int`` has no bound, so an id or a ``limit`` of 2**64 reached the database
driver (SQLite: OverflowError; PostgreSQL: integer out of range); ``str.isdigit`` is true for "²"
and "١", which ``int()`` refuses; a NUL character broke SQLite's FTS5 query syntax, and
PostgreSQL refuses NUL in any text. Each was a 500. Here each is one definition that every route
uses, and a request that breaks it gets a 422 in Chinese before any store sees it.

>>> parse_id("42"), parse_id("²"), parse_id("0"), parse_id("99999999999"), parse_id(" 7")
(42, None, None, None, None)
>>> whole_number("50", 1, 100), whole_number("١٢", 1, 100), whole_number("101", 1, 100)
(50, None, None)
"""

from __future__ import annotations

import copy
import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from annotated_types import Ge, Le
from fastapi import Depends, HTTPException, Request, status

from hotline.days import CENTRE_TZ

DB_INT_MAX = 2**31 - 1  # PostgreSQL's INTEGER: the narrowest id column of the two databases
LIMIT_MAX = 1000  # no list answers more rows at once

#: a row's id, in a path, a query or a JSON body
DbId = Annotated[int, Ge(1), Le(DB_INT_MAX)]
#: how many rows a list answers (each route keeps its own default, and may cap it lower)
Limit = Annotated[int, Ge(1), Le(LIMIT_MAX)]
#: how many rows a list skips
Offset = Annotated[int, Ge(0), Le(DB_INT_MAX)]
#: a count of days, seconds, points… that still fits the database
Count = Annotated[int, Ge(0), Le(DB_INT_MAX)]

NUL_REFUSAL = "请求内容有误：文本中不能包含控制字符（空字符 NUL）"


def is_digits(text: str) -> bool:
    """ASCII digits only: ``"²".isdigit()`` is true, and ``int("²")`` raises."""
    return text.isascii() and text.isdigit()


def whole_number(raw: str, lo: int, hi: int) -> int | None:
    """``raw`` as a whole number between ``lo`` and ``hi``, or None."""
    if not is_digits(raw) or len(raw) > len(str(hi)):
        return None
    value = int(raw)
    return value if lo <= value <= hi else None


def parse_id(raw: str) -> int | None:
    """A row's id written in a path or a query string, or None (the caller says why, in its words)."""
    return whole_number(raw, 1, DB_INT_MAX)


# --- NUL characters ---------------------------------------------------------------------------

# "\u0000" in JSON text: an escape unless its backslash is itself escaped ("\\u0000" is text)
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


def has_nul(body: bytes) -> bool:
    r"""Whether a request body carries a NUL character, raw or as a JSON escape.

    >>> has_nul(b'{"q": "a\\u0000"}'), has_nul(b'{"q": "a\\\\u0000"}'), has_nul(b"a\x00"), has_nul(b"{}")
    (True, False, True, False)
    """
    return b"\x00" in body or (b"u0000" in body and _JSON_NUL.search(body) is not None)


async def refuse_nul(request: Request) -> None:
    """Router dependency: a NUL character in the path, the query or a JSON body is a 422.

    No text field of this system may hold one (PostgreSQL cannot store it, SQLite's full-text
    syntax breaks on it, logs and exports cut at it), so it is refused once, here, rather than by
    each field. Forms (attachments) are not read here: their files may hold any byte.
    """
    if "\x00" in request.url.path or any("\x00" in k or "\x00" in v for k, v in request.query_params.multi_items()):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, NUL_REFUSAL)
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in _FORMS and has_nul(await request.body()):  # the body is kept: the route reads it again
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, NUL_REFUSAL)


#: ``APIRouter(dependencies=[NO_NUL])``: every route of the router refuses NUL characters
NO_NUL = Depends(refuse_nul)


# --- the OpenAPI description of bodies read raw --------------------------------------------------


def inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its ``$defs`` put in place of each ``$ref`` to them.

    pydantic writes ``{"$ref": "#/$defs/Category"}`` with the definitions beside the schema; put into
    an OpenAPI document as a route's body, that ``#`` is the document, which has no ``$defs``: the
    reference did not resolve, and generated clients could not use the body (issue #13). The models
    here are not recursive, so every definition can stand in its place.

    >>> inline_defs({"$defs": {"C": {"enum": ["a"]}}, "properties": {"c": {"$ref": "#/$defs/C", "default": "a"}}})
    {'properties': {'c': {'enum': ['a'], 'default': 'a'}}}
    """
    defs = schema.get("$defs", {})

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [walk(x, seen) for x in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in seen:
                raise ValueError(f"recursive model {name}: describe it in components instead")
            rest = {k: walk(v, seen) for k, v in node.items() if k != "$ref"}
            return walk(copy.deepcopy(defs[name]), (*seen, name)) | rest
        return {k: walk(v, seen) for k, v in node.items() if k != "$defs"}

    return walk(schema, ())


def json_body(model: type | dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its JSON body raw (to refuse it in Chinese): the
    body's schema (a model's, or a JSON schema), whole, so the OpenAPI document describes it and a
    client can be generated."""
    raw = model if isinstance(model, dict) else model.model_json_schema()  # type: ignore[attr-defined]
    schema = inline_defs(raw)
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}


def query_params(model: type) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its query string raw: each field a parameter."""
    schema = inline_defs(model.model_json_schema())  # type: ignore[attr-defined]
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if prop.get("type") == "array":
            param |= {"style": "form", "explode": True}
        params.append(param)
    return {"parameters": params}


# --- the OpenAPI description of refusals -----------------------------------------------------------

#: every refusal of this app, 422 included: ``{"detail": "请求内容有误：…"}`` (agent_ui.app's handlers)
REFUSAL_SCHEMA: dict[str, Any] = {
    "title": "HTTPValidationError", "type": "object", "required": ["detail"],
    "properties": {"detail": {"title": "Detail", "type": "string", "description": "为什么拒绝（中文，可直接展示）"}},
}


def describe_refusals(document: dict[str, Any]) -> dict[str, Any]:
    """The document with its 422 answers described as the app gives them.

    FastAPI documents every 422 as its own ``{"detail": [{"loc": …, "msg": …}]}``; this app answers a
    request it refuses with one sentence in Chinese (``{"detail": "请求内容有误：limit"}``), so the
    document promised a shape no response has, and a generated client (or schemathesis, issue #13)
    could not read a refusal. Idempotent: it rewrites the one shared definition every 422 refers to.

    >>> doc = {"components": {"schemas": {"HTTPValidationError": {"properties": {"detail": {"type": "array"}}},
    ...                                   "ValidationError": {"type": "object"}}}}
    >>> describe_refusals(doc)["components"]["schemas"]["HTTPValidationError"]["properties"]["detail"]["type"]
    'string'
    >>> "ValidationError" in doc["components"]["schemas"]
    False
    """
    schemas = document.get("components", {}).get("schemas", {})
    if "HTTPValidationError" in schemas:
        schemas["HTTPValidationError"] = copy.deepcopy(REFUSAL_SCHEMA)
        schemas.pop("ValidationError", None)  # only FastAPI's HTTPValidationError referred to it
    return document


def serve_refusals_described(app: Any) -> None:
    """``app.openapi()`` (what ``/api/openapi.json`` serves) with :func:`describe_refusals` applied;
    call it once in the app factory, after FastAPI has made the app."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        return describe_refusals(build())  # FastAPI keeps the document: rewritten in place, once

    app.openapi = openapi


__all__ = [
    "DB_INT_MAX",
    "LIMIT_MAX",
    "NO_NUL",
    "NUL_REFUSAL",
    "REFUSAL_SCHEMA",
    "Count",
    "DbId",
    "Limit",
    "Offset",
    "describe_refusals",
    "has_nul",
    "inline_defs",
    "is_digits",
    "json_body",
    "parse_id",
    "query_params",
    "refuse_nul",
    "serve_refusals_described",
    "whole_number",
]


# --- days -------------------------------------------------------------------------------------

def day_bounds(date_from: date | None, date_to: date | None) -> tuple[datetime | None, datetime | None]:
    """Whole days in the centres' calendar as a time range, ``date_to`` included; a range that ends
    before it starts is a 422 in Chinese.

    >>> since, until = day_bounds(date(2026, 12, 1), date(2026, 12, 1))
    >>> since.isoformat(), until.isoformat()
    ('2026-12-01T00:00:00+08:00', '2026-12-02T00:00:00+08:00')
    """
    since = datetime.combine(date_from, time(), CENTRE_TZ) if date_from else None
    until = datetime.combine(date_to + timedelta(days=1), time(), CENTRE_TZ) if date_to else None
    if since and until and since >= until:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "结束日期不能早于开始日期")
    return since, until

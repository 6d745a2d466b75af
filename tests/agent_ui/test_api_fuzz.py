"""Fuzzing the HTTP API through its OpenAPI description (issue #13).

The description must be a valid OpenAPI 3.x document a client generator can read (every ``$ref``
resolves). Then schemathesis draws requests from it for every operation — path, query and body,
schema-conforming ones and deliberately broken ones — and sends them in-process to the whole app
(``launch.compose.web_app`` over a temporary SQLite database with a little demo data, so ids 1, 2…
exist), once per role: anonymous, operator, lead, qa, admin and department, each signed in with a
real server-side session (``Authorization: Bearer``, which needs no CSRF header). Whatever it
sends:

* the app never answers 5xx, and never raises (in-process, an unhandled error is an exception);
* an answer whose status the route documents conforms to its documented schema;
* anonymous gets 401 from every route but the public ones (sign-in, setup, the citizens' routes,
  health), and signed-in roles are never told to sign in.

Not driven: the websocket ``/ws`` (not in the OpenAPI document; ``tests/agent_ui/test_ws.py``
covers it) and the pages (``include_in_schema=False``, HTML). The recording audio route is in the
document and is driven like any other (no recordings here: it answers 404 or a refusal), and so are
the exports (files, not JSON: only their status is checked).

Bounded in ``make test`` (a fixed number of requests per operation, derandomized); ``make fuzz``
(``HOTLINE_FUZZ=long``) repeats fresh random rounds per role for ``HOTLINE_FUZZ_SECONDS``
(``testkit.fuzz``). ``HOTLINE_FUZZ_ALL=1`` reports every failing operation instead of stopping at
the first (for a hunt).
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import given
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import response_schema_conformance

from hotline.identity import Principal, Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import session_for
from testkit.fuzz import LONG, figures, fuzz_settings, run
from ticketing.seed import seed_demo

pytestmark = pytest.mark.fuzz

CENTRES = {"菏泽中心": ["hotline"], "东明分中心": ["hotline_expert"]}
#: who fuzzes: None is anonymous
PEOPLE: dict[str, Principal | None] = {
    "anonymous": None,
    "operator": Principal("fz_operator", Role.OPERATOR, job_number="9001"),
    "lead": Principal("fz_lead", Role.LEAD, centre="菏泽中心"),
    "qa": Principal("fz_qa", Role.QA),
    "admin": Principal("fz_admin", Role.ADMIN),
    "department": Principal("fz_department", Role.DEPARTMENT, department_id=1, dept_lead=True),
}
#: what anonymous may reach (as tests/agent_ui/test_console.py's PUBLIC, for the routes in the document)
PUBLIC = {"/api/auth/login", "/api/auth/logout", "/api/auth/setup", "/api/health",
          "/api/public/status", "/api/public/rate", "/api/public/submissions", "/api/intake/{channel}"}
#: routes that end the session they are called with: a fresh one before each call
SESSION_ENDING = {("POST", "/api/auth/logout"), ("POST", "/api/auth/password")}
#: requests per operation, generation mode and role in a bounded run
EXAMPLES = {GenerationMode.POSITIVE: 6, GenerationMode.NEGATIVE: 4}
LONG_ROUND = 5  # long mode: a round draws this many times as many, with a fresh seed
HUNT = os.environ.get("HOTLINE_FUZZ_ALL", "") not in ("", "0")


@dataclass
class Api:
    app: Any
    schema: Any
    client: asgi.ASGIClient
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, role: str, *, fresh: bool = False) -> dict[str, str]:
        person = PEOPLE[role]
        if person is None:
            return {}
        if fresh or role not in self.tokens:
            self.tokens[role] = session_for(self.app, person)
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    var: Path = tmp_path_factory.mktemp("var")
    app = web_app(Settings(var_dir=var, services=[], centres=CENTRES))
    seed_demo(app.state.engine, tickets=40)  # tickets, departments, KB articles, calls: ids 1, 2… exist
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.app = app
    try:
        with asgi.get_client(app) as client:  # the app's lifespan runs, as served
            yield Api(app, schema, client)
    finally:
        asgi.shutdown_lifespans()


def test_the_openapi_document_is_valid_and_complete(api: Api) -> None:
    document = api.app.openapi()
    validate(document)  # OpenAPI 3.1: structure, and every $ref resolves
    text = repr(document)
    assert "$defs" not in text  # pydantic's local definitions, which the document does not hold


def _operations(api: Api) -> list[Any]:
    ops = [result.ok() for result in api.schema.get_all_operations()]
    assert len(ops) > 80, len(ops)
    return sorted(ops, key=lambda op: (op.path, op.method))


def _fault(role: str, op: Any, case: Any, response: Any, why: str) -> AssertionError:
    sent = case.as_curl_command() if case is not None else ""
    status = getattr(response, "status_code", None)
    body = getattr(response, "text", "")[:300] if response is not None else ""
    return AssertionError(f"{role}: {op.method.upper()} {op.path}: {why} (status {status})\n{sent}\n{body}")


def _exercise(api: Api, role: str, op: Any, mode: GenerationMode, examples: int, fig: Any) -> None:
    method, path = op.method.upper(), op.path
    ending = (method, path) in SESSION_ENDING

    @fuzz_settings(examples, **({"max_examples": examples * LONG_ROUND} if LONG else {}))
    @given(case=op.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        fig.tried += 1
        headers = api.headers(role, fresh=ending)
        response = case.call(session=api.client, headers=headers)
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance], headers=headers)
        if role == "anonymous" and path not in PUBLIC and response.status_code != 401:
            # a request refused as malformed before anyone is asked who sent it (422) tells nothing
            if not (response.status_code == 422 and mode is GenerationMode.NEGATIVE):
                raise _fault(role, op, case, response, "anonymous was not refused with 401")
        if role != "anonymous" and response.status_code == 401 and path not in PUBLIC:
            raise _fault(role, op, case, response, "a signed-in session was told to sign in")

    check()


@pytest.mark.parametrize("role", list(PEOPLE))
def test_no_request_breaks_the_api(api: Api, role: str) -> None:
    fig = figures(f"http api: {role}")
    ops = _operations(api)
    found: list[str] = []

    def one_round() -> None:
        for op in ops:
            for mode, examples in EXAMPLES.items():
                try:
                    _exercise(api, role, op, mode, examples, fig)
                except Exception as exc:  # noqa: BLE001 - collected: every failing operation is reported
                    if not HUNT:
                        raise
                    found.append(f"{op.method.upper()} {op.path} [{mode.value}]\n"
                                 + "".join(traceback.format_exception(exc))[-4000:])
        if found:
            raise AssertionError(f"{len(found)} failing operations:\n\n" + "\n\n".join(found))

    started = time.monotonic()
    run(fig.target, one_round)
    if not LONG:
        assert time.monotonic() - started < 60, "a bounded run must stay short"

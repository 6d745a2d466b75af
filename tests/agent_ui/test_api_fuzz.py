"""Fuzzing the HTTP API through its OpenAPI description (issue #13).

The description must be a valid OpenAPI 3.x document a client generator can read (every ``$ref``
resolves, a refusal is described as the app answers it). Then schemathesis draws requests from it
for every operation — path, query and body; requests that conform to the description and requests
that break it — and sends them in-process to the whole app (``launch.compose.web_app`` over a
temporary SQLite database with the demo city in it, so ids 1, 2… exist), once per role: anonymous,
operator, lead (of one of two centres), qa, admin and department (its lead), each signed in with a
real server-side session (``Authorization: Bearer``, which needs no CSRF header). The WeChat/SMS
intake bridges are fuzzed with their keys. Whatever is sent:

* the app never answers 5xx and never raises (in-process, an unhandled error is an exception);
* an answer whose status the route documents conforms to the schema it documents;
* anonymous gets 401 from every route but the public ones (sign-in, setup, the citizens' routes,
  the bridges' own keys) — or, for a request malformed before anyone is asked who sent it
  (a NUL character, a body that is no JSON), 400/422; a signed-in session is never told to sign in.

Not driven: the websocket ``/ws`` (no OpenAPI operation; ``tests/agent_ui/test_ws.py``) and the
HTML pages (not in the document). The CTI bridge does not run here (nothing may reach a real
Asterisk): the live routes (seat, queues, calls/live) answer their 503 "实时话务服务未运行" after
authorisation, which counts as an answer, not a server error. The recording audio route and the
exports are driven like any other route (no recordings here; exports are files: only their status
is checked). The login throttle and the public pages' rate limits are opened wide, so what they
would refuse reaches the code behind them (they have their own tests).

Bounded in ``make test``: a fixed number of requests per operation, mode and role, derandomized.
``make fuzz`` (``HOTLINE_FUZZ=long``): per role, schemathesis' coverage sweep first (boundary and
type-confusion values of every parameter and field, deterministic), then fresh random rounds for
``HOTLINE_FUZZ_SECONDS`` (``testkit.fuzz``). ``HOTLINE_FUZZ_ALL=1`` reports every failing operation
instead of stopping at the first (for a hunt).
"""

from __future__ import annotations

import json
import os
import re
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import given
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import response_schema_conformance

from agent_ui.intake.bridge import BRIDGE_CHANNELS
from agent_ui.public import PublicLimits, SlidingWindow
from hotline.identity import Principal, Role
from hotline.params import NUL_REFUSAL
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import session_for
from testkit.fuzz import LONG, Figures, figures, fuzz_settings, run
from ticketing.seed import seed_demo

pytestmark = pytest.mark.fuzz

CENTRES = {"菏泽中心": ["hotline"], "东明分中心": ["hotline_expert"]}
#: who fuzzes (None: anonymous)
PEOPLE: dict[str, Principal | None] = {
    "anonymous": None,
    "operator": Principal("fz_operator", Role.OPERATOR, job_number="9001"),
    "lead": Principal("fz_lead", Role.LEAD, centre="菏泽中心"),
    "qa": Principal("fz_qa", Role.QA),
    "admin": Principal("fz_admin", Role.ADMIN),
    "department": Principal("fz_department", Role.DEPARTMENT, department_id=1, dept_lead=True),
}
#: what anonymous may reach (tests/agent_ui/test_console.py's PUBLIC, as far as the document has it;
#: the bridges authenticate with their own keys)
PUBLIC = {"/api/auth/login", "/api/auth/logout", "/api/auth/setup",
          "/api/public/status", "/api/public/rate", "/api/public/submissions", "/api/intake/{channel}"}
#: calls that may end the session they are made with: each gets a session of its own
SESSION_ENDING = {("POST", "/api/auth/logout"), ("POST", "/api/auth/password")}
#: requests per operation, mode and role in a bounded run (≈ 850 a role, ≈ 10 s)
EXAMPLES = {GenerationMode.POSITIVE: 6, GenerationMode.NEGATIVE: 4}
LONG_ROUND = 5  # long mode: a round draws this many times as many, each round from a fresh seed
NOT_RUNNING = r"未运行|未启动"  # a 503 that says this node runs no such service (agent_ui.live, ticketing.routes…)
BRIDGE_KEY = "fuzz-bridge-key-" + "k" * 32
HUNT = os.environ.get("HOTLINE_FUZZ_ALL", "") not in ("", "0")


@dataclass
class Api:
    app: Any
    schema: Any
    client: asgi.ASGIClient
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, role: str, *, throwaway: bool = False) -> dict[str, str]:
        """The role's bearer header; ``throwaway``: a session of its own, for a call that may end it."""
        person = PEOPLE[role]
        if person is None:
            return {}
        if throwaway:
            return {"Authorization": f"Bearer {session_for(self.app, person)}"}
        if role not in self.tokens:
            self.tokens[role] = session_for(self.app, person)
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    var: Path = tmp_path_factory.mktemp("var")
    keys = {channel: BRIDGE_KEY for channel in BRIDGE_CHANNELS}
    app = web_app(Settings(var_dir=var, services=[], centres=CENTRES, intake_bridge_keys=keys,
                           login_max_failures_account=10**6, login_max_failures_client=10**6))
    wide = SlidingWindow(10**6, 60)
    app.state.public_limits = PublicLimits(per_client=wide, per_number=wide, submissions=wide)
    seed_demo(app.state.engine, tickets=40)  # departments, tickets, KB articles, calls: ids 1, 2… exist
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.app = app
    try:
        with asgi.get_client(app) as client:  # the app's lifespan runs, as when served
            yield Api(app, schema, client)
    finally:
        asgi.shutdown_lifespans()


def test_the_openapi_document_is_valid_and_complete(api: Api) -> None:
    served = api.client.get("/api/openapi.json", headers=api.headers("operator"))
    assert served.status_code == 200
    document = served.json()
    assert document == json.loads(json.dumps(api.app.openapi()))  # what is fuzzed below is what is served
    validate(document)  # OpenAPI 3.1: its structure, and every $ref resolves
    assert "$defs" not in json.dumps(document)  # pydantic's local definitions, which the document does not hold
    # a refusal is described as the app answers it: {"detail": "请求内容有误：…"}, one sentence
    detail = document["components"]["schemas"]["HTTPValidationError"]["properties"]["detail"]
    assert detail.get("type") == "string", (
        "422 is documented as FastAPI's list of errors, and the app answers a sentence: "
        "agent_ui.app.create_app must call hotline.params.serve_refusals_described(app)")


# --- what every answer must be ----------------------------------------------------------------


def _detail(response: Any) -> str | None:
    """The app's sentence in a JSON answer (``{"detail": "…"}``), if there is one."""
    if not response.headers.get("content-type", [""])[0].startswith("application/json"):
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else None


def _server_error(response: Any) -> bool:
    """5xx, but for a service this node does not run saying so (503 "…未运行/未启动")."""
    if response.status_code < 500:
        return False
    return not (response.status_code == 503 and re.search(NOT_RUNNING, _detail(response) or ""))


def _refused_before_auth(response: Any, mode: GenerationMode) -> bool:
    """A request refused for its form before anyone is asked who sent it: a NUL character (every
    router refuses it first, ``hotline.params.NO_NUL``), or a body that is no JSON at all (FastAPI
    reads the body before the route's dependencies). Neither tells an anonymous caller anything."""
    if response.status_code == 422 and _detail(response) == NUL_REFUSAL:
        return True
    return mode is GenerationMode.NEGATIVE and response.status_code in (400, 422)


def _fault(role: str, op: Any, case: Any, response: Any, why: str) -> AssertionError:
    body = response.content[:300].decode("utf-8", "replace")
    return AssertionError(f"{role}: {op.method.upper()} {op.path}: {why} (status {response.status_code})\n"
                          f"{case.as_curl_command()}\n{body}")


def _send(api: Api, role: str, case: Any, fig: Figures) -> None:
    """One request as ``role``, and what its answer must be."""
    op = case.operation
    method, path = op.method.upper(), op.path
    mode = case.meta.generation.mode if case.meta is not None else GenerationMode.POSITIVE
    fig.tried += 1
    headers = api.headers(role, throwaway=(method, path) in SESSION_ENDING)
    response = case.call(session=api.client, headers=headers)  # an error the app raises propagates here
    if _server_error(response):
        raise _fault(role, op, case, response, "server error")
    if case.method.upper() != method:  # the coverage sweep tries methods the path does not have
        if response.status_code != 405:
            raise _fault(role, op, case, response, "a method the path does not have was not refused with 405")
        return
    case.validate_response(response, checks=[response_schema_conformance], headers=headers)
    if path in PUBLIC:
        return
    if role == "anonymous" and response.status_code != 401 and not _refused_before_auth(response, mode):
        raise _fault(role, op, case, response, "anonymous was not refused with 401")
    if role != "anonymous" and response.status_code == 401:
        raise _fault(role, op, case, response, "a signed-in session was told to sign in")


# --- the runs ------------------------------------------------------------------------------------


def _operations(api: Api) -> list[Any]:
    ops = [result.ok() for result in api.schema.get_all_operations()]
    assert len(ops) > 80, len(ops)
    return sorted(ops, key=lambda op: (op.path, op.method))


def _negatable(op: Any) -> bool:
    """Whether a request can break this operation's description at all: not when it has no body and
    its parameters are optional or plain strings in the path (any text is one)."""
    raw = op.definition.raw
    if "requestBody" in raw:
        return True
    for param in raw.get("parameters", []):
        schema = {k: v for k, v in param.get("schema", {}).items() if k not in ("title", "description", "default")}
        if (param.get("required") and param["in"] != "path") or schema != {"type": "string"}:
            return True
    return False


def _drawn(api: Api, role: str, op: Any, mode: GenerationMode, examples: int, fig: Figures) -> None:
    """Hypothesis draws ``examples`` requests (a round of ``examples * LONG_ROUND`` when long)."""

    @fuzz_settings(examples, **({"max_examples": examples * LONG_ROUND} if LONG else {}))
    @given(case=op.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        _send(api, role, case, fig)

    check()


def _coverage(api: Api, role: str, op: Any, fig: Figures) -> None:
    """schemathesis' coverage sweep of ``op``: each parameter and field at its bounds, just past
    them, of the wrong type, missing, and unknown ones added; deterministic."""
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    config = api.schema.config.generation_for(operation=op)
    for case in api.schema.iter_coverage_cases(op, generation_modes=modes, generation_config=config):
        _send(api, role, case, fig)


def _each(ops: list[Any], attempt: Callable[[Any], None], found: list[str]) -> None:
    """``attempt(op)`` for each operation; with HOTLINE_FUZZ_ALL each failure goes to ``found`` and
    the next operation is tried (a hunt reports them all), else the first one fails the test."""
    for op in ops:
        try:
            attempt(op)
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is a BaseExceptionGroup
            if not HUNT:
                raise
            found.append(f"{op.method.upper()} {op.path}\n" + "".join(traceback.format_exception(exc))[-4000:])


@pytest.mark.parametrize("role", list(PEOPLE))
def test_no_request_breaks_the_api(api: Api, role: str) -> None:
    fig = figures(f"http api: {role}")
    ops = _operations(api)
    swept: list[bool] = []

    def drawn(op: Any) -> None:
        for mode, examples in EXAMPLES.items():
            if mode is GenerationMode.POSITIVE or _negatable(op):
                _drawn(api, role, op, mode, examples, fig)

    def one_round() -> None:
        found: list[str] = []
        if LONG and not swept:
            swept.append(True)
            _each(ops, lambda op: _coverage(api, role, op, fig), found)
        _each(ops, drawn, found)
        if found:
            raise AssertionError(f"{len(found)} failing operations:\n\n" + "\n\n".join(found))

    run(fig.target, one_round)


@pytest.mark.parametrize("channel", BRIDGE_CHANNELS)
def test_the_intake_bridges_take_any_body(api: Api, channel: str) -> None:
    """``POST /api/intake/{channel}`` with the channel's key: above, a role's session is no bridge
    key (401), so the body is fuzzed here, as a bridge sends it."""
    fig = figures(f"http api: intake bridge {channel}")
    op = api.schema["/api/intake/{channel}"]["POST"]
    headers = {"Authorization": f"Bearer {BRIDGE_KEY}"}
    taken = set()

    def one_round() -> None:
        for mode, examples in EXAMPLES.items():
            @fuzz_settings(examples * 5, **({"max_examples": examples * 5 * LONG_ROUND} if LONG else {}))
            @given(case=op.as_strategy(generation_mode=mode, path_parameters={"channel": channel}))
            def check(case: Any) -> None:
                fig.tried += 1
                response = case.call(session=api.client, headers=headers)
                if _server_error(response) or response.status_code == 401:
                    raise _fault("bridge", op, case, response, "server error, or the key refused")
                case.validate_response(response, checks=[response_schema_conformance], headers=headers)
                taken.add(response.status_code)

            check()

    run(fig.target, one_round)
    assert 200 in taken, taken  # some of it was taken: the body was read, not only refused

"""智能回访 (live/visit.py and the assistant in a call the seat dialled): the citizen's words propose
the 回访 form's two verdicts, 办理结果 and 办理过程, and the reason when one is 不满意, beside what any
call proposes (each page offers what its own form has a field for); an emergency cue still raises
its flag. On a call that came in, no verdict is proposed: "不满意" there is a complaint."""

from __future__ import annotations

import doctest

import pytest

import live.visit
from live.assist import CITIZEN, OPERATOR, Assistant
from live.visit import verdicts
from tests.live.test_assist import FORBIDDEN, FakeLookups

R, P = "satisfaction", "satisfaction_process"


def test_doctests() -> None:
    assert doctest.testmod(live.visit).failed == 0


@pytest.mark.parametrize(("said", "expected"), [
    # the form's own words: both verdicts; the qualified and negated ones are not read as 满意
    ("满意", {R: "满意", P: "满意"}),
    ("不满意", {R: "不满意", P: "不满意"}),
    ("基本满意吧", {R: "基本满意", P: "基本满意"}),
    ("说实话不太满意", {R: "不满意", P: "不满意"}),
    ("比较满意", {R: "基本满意", P: "基本满意"}),
    # the result alone: solved or not
    ("灯已经修好了", {R: "满意"}),
    ("问题已经解决了", {R: "满意"}),
    ("到现在还是没修好", {R: "不满意"}),
    ("晚上路灯还是不亮", {R: "不满意"}),
    ("一直没解决", {R: "不满意"}),
    # the process alone: how the department dealt with the citizen
    ("第二天就有人上门了", {P: "满意"}),
    ("处理得很及时", {P: "满意"}),
    ("打了好几次电话都没人管", {P: "不满意"}),
    ("他们推来推去的", {P: "不满意"}),
    # one sentence, two verdicts that differ
    ("他们很快联系了我，可是到现在还是没解决", {R: "不满意", P: "满意"}),
    # nothing of the kind
    ("喂，你好，请问是哪里", {}),
    ("我家住在牡丹区花园小区", {}),
])
def test_what_a_citizen_says_proposes_the_verdicts(said: str, expected: dict[str, str]) -> None:
    assert dict(verdicts(said)) == expected


def test_in_a_call_the_seat_dialled_the_assistant_proposes_the_verdicts_and_the_reason_too() -> None:
    a = Assistant(FakeLookups(), forbidden=FORBIDDEN, visit=True)
    assert not [p for p in a.hear(CITIZEN, "喂，你好").proposals if p.field in (R, P, "result")]
    said = "灯是修好了，我打电话叫13953012345也没人来，态度不好"
    got = {p.field: (p.value, p.label) for p in a.hear(CITIZEN, said).proposals}
    assert (got[R], got[P], got["result"]) == (("满意", "办理结果"), ("不满意", "办理过程"), (said, "回访情况"))
    assert got["contact"][0] == "13953012345", "the ticket's fields still, for a console that dialled it"

    def verdicts_in(text: str) -> list[tuple[str, str]]:
        return [(p.field, p.value) for p in a.hear(CITIZEN, text).proposals if p.field in (R, P)]

    assert verdicts_in("修好了") == [], "the same verdict again is not proposed twice"
    assert verdicts_in("其实也就还行吧") == [(R, "基本满意"), (P, "基本满意")]
    # an emergency still reaches the leads, a forbidden phrase of the operator's too
    assert [f.phrase for f in a.hear(CITIZEN, "楼道里着火了").flags] == ["着火"]
    assert a.hear(OPERATOR, f"这个{FORBIDDEN[0]}").flags


def test_outside_a_visit_nothing_of_it_is_proposed() -> None:
    a = Assistant(FakeLookups(), forbidden=FORBIDDEN)
    assert not [p for p in a.hear(CITIZEN, "不满意，到现在还是没修好").proposals
                if p.field in (R, P, "result")]

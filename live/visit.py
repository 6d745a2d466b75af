"""智能回访: what the citizen's words say of a replied ticket, proposed on the 回访 form (issue #16).

In a 回访 the operator asks two things, the 2025 national guidance's two verdicts: how the matter
was handled (办理过程: the department's attitude, whether it came or called back in time) and its
result (办理结果: is it solved). Each is 满意 / 基本满意 / 不满意. A citizen rarely answers with the
form's words alone: "路灯修好了" is a result, "一直没人联系我" a process, "还行吧" both. The cues
below read a settled sentence of the citizen's; the operator takes a proposal with one key, and
nothing is written by itself. When a verdict is 不满意, the sentence itself is proposed as the
reason the form then asks for (回访情况).

The order matters: a negative or a qualified cue is looked for before the plain one it contains
(不满意 holds 满意; 没修好 holds 修好). Pure logic, no I/O.

>>> verdicts("路灯已经修好了，挺满意的")
[('satisfaction', '满意'), ('satisfaction_process', '满意')]
>>> verdicts("到现在还是没解决，也没人联系我")
[('satisfaction', '不满意'), ('satisfaction_process', '不满意')]
>>> verdicts("还行吧")
[('satisfaction', '基本满意'), ('satisfaction_process', '基本满意')]
>>> verdicts("我想问一下天气")
[]
"""

from __future__ import annotations

import re

RESULT, PROCESS = "satisfaction", "satisfaction_process"  # ticketing's names for the two verdicts
UNSATISFIED, FAIR, SATISFIED = "不满意", "基本满意", "满意"
# the 回访 form's own words for its fields (templates/desk/callbacks.html)
LABELS = {RESULT: "办理结果", PROCESS: "办理过程", "result": "回访情况"}

# (cue, verdict, the fields it speaks of), most specific first: the first cue that matches decides a field
_CUES: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    (re.compile(p), verdict, fields) for p, verdict, fields in [
        # a verdict in the form's own words, or close to them: both
        (r"不满意|不太满意|很不满|非常不满|不认可|太差|很差|不行", UNSATISFIED, (RESULT, PROCESS)),
        (r"基本满意|还算满意|比较满意|不是很满意|还行|还可以|一般般?|凑合|马马虎虎", FAIR, (RESULT, PROCESS)),
        # the result: solved or not
        (r"没(有)?(解决|修好|处理好|弄好|修|处理|解决)|还(是|在)?没(有)?(修|弄|处理|解决|好)|"
         r"(还是|依然|仍然|一直|照样)(不|没)|问题(还|依旧)在", UNSATISFIED, (RESULT,)),
        (r"(解决|修好|处理好|弄好|恢复)了|已经(解决|处理|修)", SATISFIED, (RESULT,)),
        # the process: how the department dealt with the citizen
        (r"态度(不好|差|恶劣|很差)|推诿|踢皮球|推来推去|敷衍|没(有)?人(来|管|联系|回复)|没(有)?(联系|回复|回电话给?)我",
         UNSATISFIED, (PROCESS,)),
        (r"态度(很|挺|非常)?好|(很|挺|非常)?及时|很快|马上就|当天就|上门|联系(了)?我", SATISFIED, (PROCESS,)),
        # a plain 满意 (the qualified and negated ones were matched above)
        (r"满意|挺好|很好|非常好|不错", SATISFIED, (RESULT, PROCESS)),
    ]
]


def verdicts(text: str) -> list[tuple[str, str]]:
    """(field, verdict) for each of the two verdicts this sentence speaks of, result first."""
    found: dict[str, str] = {}
    for cue, verdict, fields in _CUES:
        if cue.search(text):
            for f in fields:
                found.setdefault(f, verdict)
    return [(f, found[f]) for f in (RESULT, PROCESS) if f in found]

"""Post-call satisfaction survey: 1 满意, 2 基本满意, 3 不满意, one key.

An invalid key or silence asks again, three times in all, then the call goes on with no score.
The score is stored through ``on_survey(uniqueid, caller, score)`` (the call log and its ticket);
a caller who hangs up mid-survey leaves nothing behind (no half-written result).
"""

from __future__ import annotations

import logging

from agi.channel import Channel
from agi.flows.common import OnSurvey, ask

log = logging.getLogger("agi.flows.survey")

SCORES = {"1": 1, "2": 2, "3": 3}
LABELS = {1: "满意", 2: "基本满意", 3: "不满意"}


async def survey(ch: Channel, on_survey: OnSurvey, tries: int = 3, timeout_ms: int = 6000) -> int | None:
    """``AGI(agi://…/survey)``; sets HL_SAT (the digit, or "") for the dialplan's SurveyResult event."""
    asked = await ask(ch, "hotline/survey", SCORES, tries=tries, timeout_ms=timeout_ms)
    score = SCORES[asked.key] if asked.key else None
    # the caller's number as Asterisk has it: the call log matches on the uniqueid anyway
    caller = "".join(c for c in ch.env.callerid if c.isdigit() or c == "+")[:32]
    await ch.set_variables({"HL_SAT": asked.key or ""})
    try:
        await on_survey(ch.env.uniqueid, caller, score)
    except Exception:  # the call log is down: HL_SAT still reaches the CTI in the SurveyResult event
        log.exception("survey not stored uid=%s score=%s", ch.env.uniqueid, score)
    log.info("survey uid=%s score=%s tries=%d", ch.env.uniqueid, score, asked.tries)
    return score

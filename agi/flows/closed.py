"""After hours, no seat signed in, and overflow: say so and offer a callback (回拨).

The callback request leaves through ``on_callback_request(uniqueid, caller, reason)`` (wired to
the callback list) and a ``CallbackRequest`` UserEvent for the CTI. A withheld number cannot be
called back, so it is not offered one.
"""

from __future__ import annotations

import logging

from agi.channel import Channel
from agi.flows.common import OnCallbackRequest, ask, clean_number, say_clock
from agi.flows.hours import ServiceHours

log = logging.getLogger("agi.flows.closed")

REASONS = ("after_hours", "no_seat", "overflow")


def hours_said(hours: ServiceHours) -> list[str]:
    """本热线的服务时间为每天 8点 至 20点."""
    return ["hotline/hours-pre", *say_clock(hours.start.hour, hours.start.minute), "hotline/to",
            *say_clock(*hours.end_clock)]


async def _request(ch: Channel, on_callback: OnCallbackRequest, number: str, reason: str) -> None:
    try:
        await on_callback(ch.env.uniqueid, number, reason)
    except Exception:  # the list is down: the CTI still gets the UserEvent, the caller still hears "ok"
        log.exception("callback request not stored uid=%s reason=%s", ch.env.uniqueid, reason)
    await ch.exec("UserEvent", f"CallbackRequest,Uniqueid: {ch.env.uniqueid},Caller: {number},Reason: {reason}")
    await ch.set_variables({"HL_CALLBACK": "1"})
    log.info("callback requested uid=%s reason=%s", ch.env.uniqueid, reason)


async def closed(ch: Channel, on_callback: OnCallbackRequest, hours: ServiceHours, area_code: str = "0530") -> str:
    """``AGI(agi://…/closed,<reason>)``: the message, then the callback offer. Returns what happened."""
    reason = ch.env.args[0] if ch.env.args and ch.env.args[0] in REASONS else "no_seat"
    if reason == "after_hours":
        await ch.play("hotline/after-hours", *hours_said(hours))
    else:
        await ch.play("hotline/no-seat")
    number = clean_number(ch.env.callerid, area_code)
    if not number:
        await ch.play("hotline/goodbye")
        return "no_number"
    asked = await ask(ch, "hotline/callback-offer", {"1"}, tries=2)
    if asked.key != "1":
        await ch.play("hotline/goodbye")
        return "declined"
    await _request(ch, on_callback, number, reason)
    await ch.play("hotline/callback-ok")
    return "callback"


async def overflow(ch: Channel, on_callback: OnCallbackRequest, area_code: str = "0530") -> str:
    """``AGI(agi://…/overflow)`` after the configured wait: callback (HL_ROUTE=callback) or back to
    the queue at the same place (HL_ROUTE=queue; the dialplan re-enters at ${QUEUEPOSITION})."""
    number = clean_number(ch.env.callerid, area_code)
    if not number:
        await ch.set_variables({"HL_ROUTE": "queue"})
        await ch.play("hotline/please-wait")
        return "queue"
    asked = await ask(ch, "hotline/overflow-offer", {"1", "2"}, tries=1, timeout_ms=5000)
    if asked.key == "1":
        await _request(ch, on_callback, number, "overflow")
        await ch.set_variables({"HL_ROUTE": "callback"})
        await ch.play("hotline/callback-ok")
        return "callback"
    await ch.set_variables({"HL_ROUTE": "queue"})
    await ch.play("hotline/please-wait")
    return "queue"

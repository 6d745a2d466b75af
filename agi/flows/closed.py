"""After hours, no seat signed in, and overflow: say so, and take a voice message (留言) or a
callback request (回拨).

Either leaves through ``on_callback_request(uniqueid, caller, reason, message)`` (wired to the
callback list; ``message`` is the recording's base name, or "") and a ``CallbackRequest``
UserEvent for the CTI. A withheld number cannot be called back, so it is only offered the message.
The message is recorded as the citizen leg of a ``message-…`` recording in Asterisk's monitor
folder, where the recordings catalog takes, checks and transcribes it like a call's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from agi.channel import AgiHangup, Channel
from agi.flows.common import OnCallbackRequest, ask, clean_number, say_clock
from agi.flows.hours import ServiceHours

log = logging.getLogger("agi.flows.closed")

REASONS = ("after_hours", "no_seat", "overflow")
MESSAGE_MAX_MS = 120_000  # two minutes is plenty to say what the matter is
MESSAGE_SILENCE_S = 5
MESSAGE_MIN_S = 1.0  # shorter is a beep and a hang-up, not a message


def hours_said(hours: ServiceHours) -> list[str]:
    """本热线的服务时间为每天 8点 至 20点."""
    return ["hotline/hours-pre", *say_clock(hours.start.hour, hours.start.minute), "hotline/to",
            *say_clock(*hours.end_clock)]


def message_base(uniqueid: str, now: datetime) -> str:
    """The recording base of a voice message (the catalog's ``kind-date-time-uniqueid``).

    >>> message_base("1795401830.42", datetime(2026, 11, 23, 2, 47, 1, tzinfo=UTC))
    'message-20261123-024701-1795401830.42'
    """
    return f"message-{now:%Y%m%d-%H%M%S}-{uniqueid}"


async def _request(ch: Channel, on_callback: OnCallbackRequest, number: str, reason: str, message: str = "") -> None:
    try:
        await on_callback(ch.env.uniqueid, number, reason, message)
    except Exception:  # the list is down: the CTI still gets the UserEvent, the caller still hears "ok"
        log.exception("callback request not stored uid=%s reason=%s", ch.env.uniqueid, reason)
    log.info("callback requested uid=%s reason=%s message=%s", ch.env.uniqueid, reason, message or "-")
    await ch.exec("UserEvent", f"CallbackRequest,Uniqueid: {ch.env.uniqueid},Caller: {number},Reason: {reason},"
                               f"Message: {message}")
    await ch.set_variables({"HL_CALLBACK": "1"})


async def _take_message(ch: Channel, on_callback: OnCallbackRequest, number: str, reason: str, folder: str,
                        now: datetime) -> str:
    base = message_base(ch.env.uniqueid, now)
    await ch.play("hotline/message-record")
    said = await ch.record(f"{folder}/{base}-in", MESSAGE_MAX_MS, MESSAGE_SILENCE_S)
    if said.seconds < MESSAGE_MIN_S or said.ended_by == "error":
        log.info("no message left uid=%s (%s, %.1f s)", ch.env.uniqueid, said.ended_by, said.seconds)
        if said.ended_by != "hangup":
            await ch.play("hotline/goodbye")
        return "no_message"
    try:
        await _request(ch, on_callback, number, reason, base)
        await ch.play("hotline/message-ok")
    except AgiHangup:  # hanging up is how most people end a message: it is on the list already
        pass
    return "message"


async def closed(ch: Channel, on_callback: OnCallbackRequest, hours: ServiceHours, area_code: str = "0530",
                 messages: str = "", clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> str:
    """``AGI(agi://…/closed,<reason>)``: the message, then the offer. Returns what happened.

    ``messages``: the folder (as Asterisk sees it) voice messages are recorded in; "" offers none.
    """
    reason = ch.env.args[0] if ch.env.args and ch.env.args[0] in REASONS else "no_seat"
    if reason == "after_hours":
        await ch.play("hotline/after-hours", *hours_said(hours))
    else:
        await ch.play("hotline/no-seat")
    number = clean_number(ch.env.callerid, area_code)
    if messages:
        # 留言 1, 回电 2; a withheld number cannot be called back: 留言 only
        prompt, valid = ("hotline/closed-offer", {"1", "2"}) if number else ("hotline/message-offer", {"1"})
        asked = await ask(ch, prompt, valid, tries=2)
        if asked.key == "1":
            return await _take_message(ch, on_callback, number, reason, messages, clock())
        callback = asked.key == "2"
    elif not number:
        await ch.play("hotline/goodbye")
        return "no_number"
    else:
        callback = (await ask(ch, "hotline/callback-offer", {"1"}, tries=2)).key == "1"
    if not callback:
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

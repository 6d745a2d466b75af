"""Job-number announcement (首问负责制): the caller hears "X号话务员为您服务" when a seat answers.

Runs as the Queue application's AGI argument: on the citizen's channel, after the seat answered
and before the two are bridged. The seat comes from MEMBERNAME (queues.conf setinterfacevar).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agi.channel import Channel
from agi.flows.common import say_digits

log = logging.getLogger("agi.flows.jobno")

JobNumber = Callable[[str], "str | None"]  # seat → the operator's job number (None: say nothing)


def seat_of(member_name: str, interface: str) -> str:
    """
    >>> seat_of("8001", ""), seat_of("", "PJSIP/8002"), seat_of("", "Local/8003@ctx/n"), seat_of("", "")
    ('8001', '8002', '8003', '')
    """
    if member_name.strip():
        return member_name.strip()
    tail = interface.split("/", 1)[-1] if "/" in interface else interface
    return tail.split("@", 1)[0]


async def announce(ch: Channel, job_number: JobNumber) -> str | None:
    seat = seat_of(await ch.get_variable("MEMBERNAME"), await ch.get_variable("MEMBERINTERFACE"))
    job = job_number(seat) if seat else None
    digits = say_digits(job or "")
    if not digits:
        return None
    await ch.set_variables({"HL_JOBNO": job or ""})
    await ch.play("hotline/operator-pre", *digits, "hotline/operator-post")
    return job

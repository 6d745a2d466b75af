"""`hotline simulate`: real SIP calls that Asterisk counts in queue hotline."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import pytest

from tests.support.ami import chanvars

pytestmark = pytest.mark.asterisk


async def test_simulate_places_five_real_calls_answered_by_bots(pbx, ami, settings) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "launch.cli", "simulate", "--calls", "5", "--rate", "2", "--talk", "3",
        "--ring-delay", "1", "--seed", "3", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    assert "接通 5，放弃 0" in out.decode()

    joins = ami.find("QueueCallerJoin", Queue=settings.queue_name)
    assert len(joins) == 5 and len({j["CallerIDNum"] for j in joins}) == 5
    connects = ami.find("AgentConnect", Queue=settings.queue_name)
    assert {chanvars(c)["HL_CALLER"] for c in connects} == {j["CallerIDNum"] for j in joins}
    assert {c["Interface"] for c in connects} <= {f"PJSIP/{s}" for s in settings.desk_phone_seats[:2]}
    shown = pbx.cli(f"queue show {settings.queue_name}")
    assert re.search(r"C:5, A:0", shown), shown
    assert "No Members" in shown  # the bots signed out again
    assert "8001/sip" not in pbx.cli("pjsip show contacts")  # and unregistered: no stale contact

"""The lead's alerts across two web nodes on one Redis bus (issue #15), real processes: node A holds
the centre's duty (the alert rules run there), node B follows, adopting what A raises. A dies
between a call passing 15 s and A raising it: B takes the duty over and raises it, once, beside
the alert it had adopted from A, which is not raised again; a lead signed in on B sees both.

"Between" is made certain, not raced: A is frozen (SIGSTOP) when the bridge's breach is published,
so only B hears it, then killed -9 (its duty lease, a flock beside the shared SQLite database,
goes with it). The bridge is played by publishing on the bus what ``cti`` publishes
(``AnswerRuleBreached``); the alert rules themselves are ``tests/agent_ui/test_lead_duty.py``'s."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cti.domain import AnswerRuleBreached
from hotline.redis_bus import bus_from_url
from testkit import ROOT, free_port
from testkit.redis import RedisServer
from testkit.stack import LEAD

pytestmark = pytest.mark.timeout(150)
WON, TAKEN = "web duty lease", "web duties (term"


class WebNode:
    def __init__(self, name: str, env: dict[str, str], folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"web-{name}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "launch.cli", "web"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                env=env | {"HOTLINE_WEB_PORT": str(self.port), "HOTLINE_VAR_DIR": str(folder / f"var-{name}")},
                start_new_session=True)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, line: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while line not in self.text():
            assert self.proc.poll() is None, self.text()[-3000:]
            assert time.monotonic() < deadline, f"no {line!r}: {self.text()[-3000:]}"
            time.sleep(0.05)

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/login", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def centre(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[str, WebNode, WebNode]]:
    url = f"{redis_server.url}?prefix=duty-test"
    env = os.environ | {"HOTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'centre.db'}", "HOTLINE_BUS_URL": url,
                        "HOTLINE_SERVICES": "", "PYTHONPATH": str(ROOT)}
    a = WebNode("a", env, tmp_path)  # first: it makes the tables and takes the duty
    nodes = [a]
    try:
        a.wait_for(WON, 60)
        deadline = time.monotonic() + 30
        while not a.answers():
            assert time.monotonic() < deadline, a.text()[-3000:]
            time.sleep(0.2)
        b = WebNode("b", env, tmp_path)
        nodes.append(b)
        while not b.answers():
            assert b.proc.poll() is None and time.monotonic() < deadline + 30, b.text()[-3000:]
            time.sleep(0.2)
        yield url, a, b
    finally:
        for node in nodes:
            with_stopped = node.proc.poll() is None
            if with_stopped:
                os.killpg(node.proc.pid, signal.SIGCONT)
            node.stop()


def breach(call_id: str, number: str) -> AnswerRuleBreached:
    return AnswerRuleBreached(at=time.time(), call_id=call_id, queue="hotline", caller_num=number, waited_ms=15_200,
                              rule_s=15, seats_rung=("8001",))


async def publish(url: str, event: AnswerRuleBreached) -> None:
    bus = bus_from_url(url, timeout=2.0)
    await bus.start()
    try:
        await bus.publish(event)
    finally:
        await bus.close()


def test_a_breach_the_dead_duty_node_never_raised_is_raised_by_the_node_that_takes_over(centre) -> None:
    url, a, b = centre
    lead = httpx.Client(base_url=b.url, timeout=10, headers={"X-Requested-With": "hotline"})
    lead.post("/api/auth/login", json={"username": LEAD[0], "password": LEAD[1]}).raise_for_status()

    def alerts() -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for alert in lead.get("/api/lead/alerts").json():
            out.setdefault(str(alert.get("call_id")), []).append(alert)
        return out

    def wait(pred, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < deadline, f"{what}: {alerts()}\nA: {a.text()[-1500:]}\nB: {b.text()[-1500:]}"
            time.sleep(0.1)

    # A on duty raises the first breach; B adopts it from the bus
    asyncio.run(publish(url, breach("c-1", "13953010001")))
    wait(lambda: "c-1" in alerts(), 10, "B never adopted A's alert")
    [adopted] = alerts()["c-1"]

    # A frozen: the second breach reaches B only; then A dies, and B takes the duty over
    os.killpg(a.proc.pid, signal.SIGSTOP)
    asyncio.run(publish(url, breach("c-2", "13953010002")))
    time.sleep(1.0)  # B's reader has it by now; A has nothing of it
    assert "c-2" not in alerts(), "nobody on duty raised it yet"
    killed = time.monotonic()
    os.killpg(a.proc.pid, signal.SIGKILL)
    a.proc.wait(10)
    b.wait_for(TAKEN, 15)
    wait(lambda: "c-2" in alerts(), 10, "B took the duty over but did not raise the breach A never saw")
    took = time.monotonic() - killed
    got = alerts()
    assert [x["id"] for x in got["c-1"]] == [adopted["id"]], "A's alert is B's now, not raised twice"
    [caught] = got["c-2"]
    assert caught["kind"] == "answer_rule" and "13953010002" in caught["detail"] and not caught["acked_at"]
    assert "1 raised on taking the duty over" in b.text()
    print(f"node A killed -9 while frozen: B took the duty and raised the breach only B had heard {took:.2f} s later")

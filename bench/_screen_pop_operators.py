"""The screen-pop bench's operators (``bench/screen_pop.py``): each signed in over HTTP as a person
signs in, their 50 consoles' ``/ws`` clients (run in a process of their own) and the chromium
page that times a few pops to the moment they are painted.

Apart from the run because this is the client side, what an operator's PC does: the latencies
are taken here, on arrival. Private to screen_pop (the leading ``_`` keeps ``make bench`` from
running it as a benchmark); it imports the product, testkit and the bench's Asterisk, never the
run that uses it. ``bench/screen_pop.py`` puts the checkout on the path.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from dataclasses import dataclass
from typing import Protocol

import httpx
from _screen_pop_asterisk import Call

from testkit.chromium import ARGS, CHROMIUM
from testkit.console import console_socket

XRW = {"X-Requested-With": "hotline"}  # what the console's scripts send with a POST


# --- the operators: signed in as people are, and their browsers (another process) -----------------


@dataclass
class Operator:
    user: str
    password: str
    seat: str
    http: httpx.AsyncClient

    @property
    def cookie(self) -> str:
        return self.http.cookies["hotline_token"]

    async def sign_in(self) -> None:
        """The login form's request, then the console's seat sign-in, on the session cookie."""
        r = await self.http.post("/api/auth/login", json={"username": self.user, "password": self.password})
        assert r.status_code == 200 and self.cookie, r.text
        r = await self.http.post("/api/seat/signin", json={"seat": self.seat}, headers=XRW)
        assert r.status_code == 200, r.text

    async def end_wrapup(self) -> None:
        r = await self.http.post("/api/seat/wrapup/done", headers=XRW)
        assert r.status_code == 200, r.text


def browsers_main(conn, sessions: list[tuple[str, str, str]], stream: tuple[str, str] | None = None) -> None:
    import uvloop

    uvloop.run(_browsers(conn, sessions, stream))


async def tap(url: str, key: str, on_stream: dict[str, float]) -> None:
    """When each pop came off the bus's stream, read here as a web node reads it (XREAD, beside them):
    a pop's time splits into the bridge's part (AMI event → the stream) and the web's (the stream →
    the client: a web node's read, its routing, /ws)."""
    import redis.asyncio as aioredis

    r, last = aioredis.from_url(url), "$"
    try:
        while True:
            got = await r.xread({key: last}, block=1000, count=1000)
            now = time.time()
            for _, entries in got or []:
                for entry_id, fields in entries:
                    last, m = entry_id, fields.get(b"m", b"")
                    if b"screen_pop" in m and (msg := json.loads(m)).get("type") == "screen_pop":
                        on_stream.setdefault(msg["call_id"], now)
    finally:
        await r.aclose()


async def _browsers(conn, sessions: list[tuple[str, str, str]], stream: tuple[str, str] | None) -> None:
    """One /ws per operator (user, session cookie, the node host:port they use), opened as the
    console opens it (its session cookie, its Origin); every pop timed on arrival, then checked for
    the caller's history. With ``stream`` (the bus's Redis URL and stream key), each pop's moment
    on the stream too."""
    pops: dict[str, tuple[float, str, tuple[str, ...], float]] = {}
    on_stream: dict[str, float] = {}
    completed: set[str] = set()
    opened = asyncio.Queue[str]()

    async def follow(user: str, token: str, url: str) -> None:
        async with console_socket(url, token) as ws:
            opened.put_nowait(user)
            async for raw in ws:
                arrived = time.time()
                if '"type":"screen_pop"' in raw:  # type: ignore[operator]
                    msg = json.loads(raw)
                    recent = msg["variables"].get("HL_RECENT", "")
                    pops.setdefault(msg["call_id"], ((arrived - float(msg["at"])) * 1000, user,
                                                     tuple(t.split(":")[0] for t in recent.split(",") if t),
                                                     arrived))
                elif '"CallCompleted"' in raw:  # type: ignore[operator]
                    completed.add(json.loads(raw)["call_id"])
                elif '"ping"' in raw and json.loads(raw).get("type") == "ping":  # type: ignore[operator]
                    await ws.send('{"type":"pong"}')

    tasks = [asyncio.create_task(follow(u, t, where)) for u, t, where in sessions]
    if stream is not None:
        tasks.append(asyncio.create_task(tap(*stream, on_stream)))
    for _ in sessions:
        await asyncio.wait_for(opened.get(), 30)
    gc.collect()  # 200 browsers do not pause together for one collector: what lives now is frozen, and
    # later collections skip it (the simulator also collects its young generation less often)
    gc.freeze()
    loop = asyncio.get_running_loop()
    conn.send("ready")
    await loop.run_in_executor(None, conn.recv)  # "stop"
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    conn.send((pops, sorted(completed), on_stream))
    conn.close()


class Ringer(Protocol):
    """What the chromium samples need of the run (``screen_pop.Bench``): a whole call rung on a seat
    and its end. Named here so that this module need not import the run, which imports it."""

    async def one_call(self, op: Operator) -> Call: ...

    async def finish(self, op: Operator, call: Call) -> None: ...


def browser_samples(url: str, op: Operator, bench: Ringer, k: int, loop: asyncio.AbstractEventLoop) -> list[float]:
    """AgentCalled Timestamp → the strip painted in chromium (``op``'s /console, signed in with the form)."""
    if k <= 0:
        return []
    from playwright.sync_api import sync_playwright

    def on_loop(coro):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(60)

    out = []
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = b.new_context(viewport={"width": 1366, "height": 768}).new_page()
        page.goto(f"http://{url}/login?next=/console")
        page.fill("input[name=username]", op.user)
        page.fill("input[name=password]", op.password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda u: u.split("?")[0].endswith("/console"), timeout=10_000)
        page.wait_for_function("document.getElementById('link')?.className.includes('on')", timeout=10_000)
        page.evaluate("""() => {
          const pop = document.getElementById('pop');
          new MutationObserver(() => { if (!pop.hidden) requestAnimationFrame(() => {
            window.__visibleAt = performance.timeOrigin + performance.now(); }); })
            .observe(pop, {attributes: true, attributeFilter: ['hidden']});
        }""")
        for i in range(k + 1):  # the first pop of a fresh page (fonts, first layout) is shown apart
            page.evaluate("() => { document.getElementById('pop').hidden = true; window.__visibleAt = null; }")
            call = on_loop(bench.one_call(op))
            page.wait_for_function("window.__visibleAt", timeout=10_000)
            out.append(page.evaluate("window.__visibleAt") - call.called_at * 1000)
            if i == 0:
                print(f"browser: first pop on a fresh page {out.pop():.0f} ms (not counted)")
            on_loop(bench.finish(op, call))
        b.close()
    return out


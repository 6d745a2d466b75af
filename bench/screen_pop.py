"""Screen-pop latency: the AgentCalled ``Timestamp`` → the pop arriving at the operator's client.

This machine has 10 SIP seats (8001–8010), so 50 calls ringing 50 seats at once cannot be real
calls here. The bench instead replays *real* Asterisk 22 AMI frames (the recorded transcript of
a SIP call answered at seat 8001: Newchannel, QueueCallerJoin, Newchannel, AgentCalled), renumbered
per call and re-timestamped, from a small AMI server the app's CTI bridge logs in to. Everything
after the socket is the production path: the app runs in its own process, served as ``hotline up``
serves it (``launch.compose.server_config``: AMI parser → state → bus, filtered per audience as it is
published → ``/ws``), 50 operators sign in to 50 seats through
``POST /api/seat/signin`` (QueueAdd answered by the fake AMI with QueueMemberAdded), and 50
websocket clients, one per operator, each wait for their own pop. All 50 calls ring at once.
The 50 clients stand in for 50 browsers on 50 PCs; one process plays them all, on uvloop, so that
their own queueing adds as little as it can to what is measured.

A sample of pops is also timed to the moment it is *visible* in Debian's chromium (the /console
page of one operator: the strip's ``hidden`` removed, then the next animation frame).

Run from the repo root: ``.venv/bin/python bench/screen_pop.py [--calls 50] [--rounds 5]``.
Last line: ``calls=50 p50_ms=… p99_ms=… browser_p50_ms=…`` (goal: p99 ≤ 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import websockets  # noqa: E402

from hotline.identity import Principal, Role  # noqa: E402
from hotline.settings import Settings  # noqa: E402
from launch.compose import build  # noqa: E402
from testkit.auth import session_for  # noqa: E402

TRANSCRIPT = ROOT / "tests/fixtures/ami/test_sip_call_is_answered_by_a_signed_in_seat_in_3_s_and_recorded.ami"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
UID = re.compile(r"1795401830\.(\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def frames_until_ring() -> list[str]:
    """The recorded call's frames from the caller's channel to AgentCalled (one of each)."""
    text = TRANSCRIPT.read_text(encoding="utf-8")
    blocks = ["\r\n".join(b.splitlines()) for b in re.split(r"\r?\n\r?\n", text)]
    wanted = ["Newchannel", "QueueCallerJoin", "Newchannel", "AgentCalled"]
    out = []
    for b in blocks:
        m = re.search(r"^Event: (\w+)", b, re.M)
        if m and wanted and m.group(1) == wanted[0]:
            out.append(b)
            wanted.pop(0)
    assert not wanted, f"transcript lacks {wanted}"
    return out


HISTORY = [  # (deadline colour, status, category, title) of a repeat caller's five latest tickets
    ("red", "已转办", "投诉举报", "小区夜间施工噪音扰民"), ("yellow", "办理中", "求助", "丽景花园停水三天未恢复"),
    ("green", "已签收", "一般诉求", "中华路路灯不亮"), ("green", "已答复", "一般诉求", "公交站台积水严重"),
    ("none", "已办结", "投诉举报", "楼下烧烤油烟扰民"),
]


def history(n: int) -> str:
    """What the AGI lookup puts on a repeat caller's channel for the pop: five recent tickets in
    ``agi.flows.lookup.recent_field``'s format (number, colour, status, category, title)."""
    return ",".join(f"2026112{k}{n:06d}:{colour}:{status}:{category}:{title}"
                    for k, (colour, status, category, title) in enumerate(HISTORY))


def call_frames(template: list[str], n: int, seat: str) -> list[str]:
    """Call ``n`` ringing ``seat``: ids renumbered, the seat swapped, the lookup's findings set
    (location, repeat caller, and the caller's history the pop carries)."""
    out = []
    for b in template:
        b = UID.sub(lambda m: f"1900000000.{n * 100 + int(m.group(1))}", b)
        b = re.sub(r"(?<![\d.])8001(?!\d)", seat, b)
        b = b.replace(f"PJSIP/{seat}-00000007", f"PJSIP/{seat}-{n:08x}")
        b = b.replace("HL_LOCATION=", "HL_LOCATION=山东省菏泽市").replace("HL_REPEAT=", "HL_REPEAT=1")
        # (recorded before HL_RECENT joined manager.conf's channelvars: added after HL_TICKETS)
        b = re.sub(r"(\w*ChanVariable): HL_TICKETS=\r\n", rf"\1: HL_TICKETS=5\r\n\1: HL_RECENT={history(n)}\r\n", b)
        out.append(b)
    return out


class FakeAmi:
    """Just enough AMI for the bridge: login, list actions, QueueAdd → QueueMemberAdded, events."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.members: dict[str, bool] = {}

    async def serve(self, port: int) -> asyncio.AbstractServer:
        return await asyncio.start_server(self._client, "127.0.0.1", port)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        self.writers.append(writer)
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                action = dict(line.split(": ", 1) for line in raw.decode().strip().split("\r\n") if ": " in line)
                self._answer(writer, action)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.writers.remove(writer)

    def _answer(self, w: asyncio.StreamWriter, a: dict[str, str]) -> None:
        aid, name = a.get("ActionID", ""), a.get("Action", "").lower()
        ts = f"{time.time():.6f}"
        if name in ("queuestatus", "coreshowchannels"):
            w.write(f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\nMessage: follows\r\n\r\n".encode())
            done = "QueueStatusComplete" if name == "queuestatus" else "CoreShowChannelsComplete"
            w.write(f"Event: {done}\r\nActionID: {aid}\r\nEventList: Complete\r\nListItems: 0\r\n\r\n".encode())
            return
        w.write(f"Response: Success\r\nActionID: {aid}\r\nMessage: ok\r\n\r\n".encode())
        if name == "login":  # as Asterisk does once booted; the bridge waits for it before resyncing
            w.write(b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n")
        elif name == "queueadd":
            seat = a.get("MemberName", "")
            self.broadcast([
                f"Event: QueueMemberAdded\r\nPrivilege: agent,all\r\nTimestamp: {ts}\r\nQueue: {a.get('Queue')}\r\n"
                f"MemberName: {seat}\r\nInterface: {a.get('Interface')}\r\nStateInterface: {a.get('Interface')}\r\n"
                "Membership: dynamic\r\nPenalty: 0\r\nCallsTaken: 0\r\nLastCall: 0\r\nLastPause: 0\r\n"
                "LoginTime: 0\r\nInCall: 0\r\nStatus: 1\r\nPaused: 0\r\nPausedReason: \r\nRinginuse: 0\r\n"
                "Wrapuptime: 0"])

    def broadcast(self, frames: list[str], stamp: bool = False) -> float:
        now = time.time()
        data = []
        for f in frames:
            if stamp:
                f = re.sub(r"^Timestamp: [\d.]+", f"Timestamp: {now:.6f}", f, flags=re.M)
            data.append(f.encode() + b"\r\n\r\n")
        for w in self.writers:
            w.write(b"".join(data))
        return now


APP = """
import sys, uvicorn
from launch.compose import server_config
from hotline.settings import Settings
seats = sys.argv[3].split(',')
s = Settings(var_dir=sys.argv[1], services=['cti'], ami_host='127.0.0.1', ami_port=int(sys.argv[2]),
             ami_secret='bench', seats=seats, cti_shifts=[], web_host='127.0.0.1', web_port=int(sys.argv[4]))
uvicorn.Server(server_config(s, log_level='warning')).run()
"""


TOKENS: dict[str, str] = {}  # user → a real session, opened in the app's database before it starts


def open_sessions(var: str, users: list[str]) -> None:
    """The benchmark's operators as real accounts with real sessions (the app resolves each token
    on every request, as in production)."""
    settings = Settings(var_dir=var, services=[])
    node = build(settings, set())
    try:
        for user in users:
            TOKENS[user] = session_for(node.accounts, Principal(user, Role.OPERATOR, display_name=user,
                                                                job_number=user[-4:]))
    finally:
        node.engine.dispose()


def token(username: str) -> str:
    return TOKENS[username]


async def client(url: str, username: str, got: dict[str, float], ready: asyncio.Event, count: list[int],
                 n: int, stop: asyncio.Event) -> None:
    async with websockets.connect(f"ws://{url}/ws", additional_headers={"Authorization": f"Bearer {token(username)}"},
                                  max_size=None) as ws:
        await ws.recv()  # hello
        count[0] += 1
        if count[0] == n:
            ready.set()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            arrived = time.time()
            msg = json.loads(raw)
            if msg.get("type") == "ping":
                await ws.send('{"type":"pong"}')
            elif msg.get("type") == "screen_pop" and _whole(msg):
                got[msg["call_id"]] = arrived - float(msg["at"])


def _whole(pop: dict) -> bool:
    """Counted only whole: the caller's five latest tickets ride on the pop itself."""
    return len(pop["variables"].get("HL_RECENT", "").split(",")) == len(HISTORY)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5, help="bursts of --calls simultaneous calls")
    ap.add_argument("--browser-samples", type=int, default=10)
    args = ap.parse_args()
    n = args.calls
    seats = [f"9{i:03d}" for i in range(1, n + 1)]
    users = [f"bench{s}" for s in seats]
    fake = FakeAmi()
    ami_port, web_port = free_port(), free_port()
    server = await fake.serve(ami_port)
    var = tempfile.mkdtemp(prefix="screen-pop-")
    open_sessions(var, users)
    # started once, before anything is measured
    proc = subprocess.Popen([sys.executable, "-c", APP, var, str(ami_port), ",".join(seats),  # noqa: ASYNC220
                             str(web_port)], cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)})
    url = f"127.0.0.1:{web_port}"
    try:
        async with httpx.AsyncClient(base_url=f"http://{url}", timeout=10) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await http.get("/api/auth/me", headers=_bearer(users[0]))).status_code == 200 and fake.writers:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline and proc.poll() is None, "the app did not start"
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # login + resync
            for user, seat in zip(users, seats, strict=True):
                r = await http.post("/api/seat/signin", json={"seat": seat}, headers=_bearer(user))
                assert r.status_code == 200, r.text
            for _ in range(100):
                me = (await http.get("/api/seat", headers=_bearer(users[-1]))).json()
                if me.get("seat"):
                    break
                await asyncio.sleep(0.05)
            assert me.get("seat"), "the seats never showed up as signed in"

        template = frames_until_ring()
        latencies: list[float] = []
        got: dict[str, float] = {}
        ready, stop, count = asyncio.Event(), asyncio.Event(), [0]
        tasks = [asyncio.create_task(client(url, u, got, ready, count, n, stop)) for u in users]
        await asyncio.wait_for(ready.wait(), 30)
        call_no = 0
        for rnd in range(args.rounds + 1):  # round 0 warms up (jieba-free path, JIT-less but caches)
            got.clear()
            frames = []
            for seat in seats:
                call_no += 1
                frames += call_frames(template, call_no, seat)
            fake.broadcast(frames, stamp=True)  # all the calls ring at once
            deadline = time.monotonic() + 10
            while len(got) < n and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            assert len(got) == n, f"round {rnd}: {len(got)} of {n} pops arrived"
            if rnd:
                latencies += [v * 1000 for v in got.values()]
            await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*tasks)
        browser = await asyncio.to_thread(browser_samples, url, users[0], seats[0], fake, template,
                                          args.browser_samples, asyncio.get_running_loop())
    finally:
        proc.terminate()
        proc.wait(10)
        for w in list(fake.writers):
            w.close()
        server.close()
        await asyncio.sleep(0.2)  # the AMI client tasks see their socket close and end
    p50, p99 = statistics.median(latencies), pct(latencies, 99)
    print(f"{len(latencies)} pops over {args.rounds} bursts of {n} simultaneous calls; "
          f"min {min(latencies):.1f} ms, max {max(latencies):.1f} ms; browser samples {len(browser)}: "
          + ", ".join(f"{b:.0f}" for b in browser) + " ms")
    print(f"calls={n} p50_ms={p50:.1f} p99_ms={p99:.1f} browser_p50_ms={statistics.median(browser):.1f}")


def _bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"}


def browser_samples(url: str, user: str, seat: str, fake: FakeAmi, template: list[str], k: int, loop) -> list[float]:
    """AgentCalled Timestamp → the strip painted in chromium (the /console of ``user``)."""
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        ctx = b.new_context(viewport={"width": 1366, "height": 768})
        ctx.add_cookies([{"name": "hotline_token", "value": token(user), "url": f"http://{url}"}])
        page = ctx.new_page()
        page.goto(f"http://{url}/console")
        page.wait_for_function("document.getElementById('link').className.includes('on')", timeout=10_000)
        page.evaluate("""() => {
          const pop = document.getElementById('pop');
          new MutationObserver(() => { if (!pop.hidden) requestAnimationFrame(() => {
            window.__visibleAt = performance.timeOrigin + performance.now(); }); })
            .observe(pop, {attributes: true, attributeFilter: ['hidden']});
        }""")
        for i in range(k + 1):  # the first pop of a fresh page (fonts, first layout) is shown apart
            page.evaluate("() => { document.getElementById('pop').hidden = true; window.__visibleAt = null; }")
            frames = call_frames(template, 100_000 + i, seat)
            sent = asyncio.run_coroutine_threadsafe(_broadcast(fake, frames), loop).result()
            page.wait_for_function("window.__visibleAt", timeout=10_000)
            out.append(page.evaluate("window.__visibleAt") - sent * 1000)
            if i == 0:
                print(f"browser: first pop on a fresh page {out.pop():.0f} ms (not counted)")
            time.sleep(0.2)
        b.close()
    return out


async def _broadcast(fake: FakeAmi, frames: list[str]) -> float:
    return fake.broadcast(frames, stamp=True)


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())

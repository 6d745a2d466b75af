"""Issue #15's "must show", on real parts: a centre of two Asterisk servers (each its own copy of the
chroot, on ports of its own), one PostgreSQL and one Redis; two `hotline cti` candidates for server 1
(one active, one standing by) and one for server 2, a `hotline agi` per server, and two web nodes A
and B without the bridge (``HOTLINE_SERVICES`` empty), every process its own.

1. An operator signs in on node A (a real session: the demo account's password) to a seat of
   server 2; their websocket on A gets the pop of a SIPp call placed into server 2.
2. Under SIPp load into both servers, server 1's active bridge is killed -9: the standby takes over
   within 5 s (timed to its resync from Asterisk and to its first picture on the board; printed).
3. Node A is killed -9: the operator's websocket, kept as the console's live.js keeps it, moves to
   node B with ``?since=<last seq>&epoch=<epoch>`` and misses no pop, one published while it was
   away among them; the bus's seqs are contiguous and none reaches the page twice.
4. Then ``/api/calls`` (as a lead, on node B) holds every call SIPp placed into either server, once.

In ``make test`` the operator's page is a websocket client that does what live.js does (the last
seq it saw, the epoch, the reconnection with both; a balancer in front of the two nodes is modelled
by trying them in turn). ``make test-nodes`` (``HOTLINE_NODES_BROWSER=1``, more calls, faster) runs
the real console page in chromium behind a layer-4 balancer, signing in with its seat picker, its
websocket watched frame by frame.

Each server names itself (``HOTLINE_ASTERISK_SYSTEMNAME``): without it two servers gave one uniqueid
to two calls made in the same second and the call log kept one of them (found here, 1d979ad);
``test_two_servers_never_give_two_calls_one_id`` keeps it so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import redis
import websockets

from hotline.redis_bus import events_key
from hotline.settings import Settings
from testkit import free_port
from testkit.stack import LEAD, OPERATOR, Service, Stack, wait_until
from testkit.stack import free_port as stack_port  # one that no other stack of this process took
from testkit.tally import api_calls
from testkit.traffic import Traffic
from tests.support.ami import AmiRecorder

SERVER1 = ["8001", "8002", "8003", "8004"]
SERVER2 = ["8101", "8102", "8103", "8104"]
SEAT = "8101"  # the operator's, on server 2; signed in and popped through node A, then node B
ACTIVE, RESYNCED = "CTI bridge active (term", "CTI resync:"
TAKEOVER_LIMIT_S = 5.0
# the load: per server, LOAD_CALLS calls at RATE a second (`make test-nodes`: more, faster); each rings
# a second, then the caller hears the job number, 3 s of talk, a second more
LOAD_CALLS = int(os.environ.get("HOTLINE_NODES_CALLS", "10"))
RATE = float(os.environ.get("HOTLINE_NODES_RATE", "1"))
RING_S, TALK_S, AFTER_S = 1.0, 3.0, 1.0
BROWSER = os.environ.get("HOTLINE_NODES_BROWSER") == "1"  # make test-nodes: the operator's console in chromium
NAMES = ("hz1", "hz2")  # the two servers' systemnames: their uniqueids are hz1-<second>.<counter>, hz2-…

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres, pytest.mark.slow,
              pytest.mark.timeout(240 + int(3 * LOAD_CALLS / RATE)),
              pytest.mark.skipif(os.geteuid() != 0, reason="the chroot needs root"),
              *([pytest.mark.browser] if BROWSER else [])]


class Seats(Traffic):
    """SIPp seats and callers on one server; the seats in ``held`` register but are not put in the
    queue from the CLI (the operator's seat is signed in through a web node instead)."""

    held: set[str]

    def sign_in(self, seats: list[str]) -> None:
        super().sign_in([s for s in seats if s not in self.held])


class Console:
    """The operator's live link as agent_ui/static/console/live.js keeps it, in a thread of its own:
    the hello's last seq at first, then the highest seq seen; on a close, after 0.5 s (doubling to
    10 s), ``/ws?since=<last seq>&epoch=<epoch>`` to whichever node answers first, in turn.
    ``back``: while cleared, a dropped link stays down (a page offline a while)."""

    def __init__(self, nodes: dict[str, str], cookie: str) -> None:
        self.nodes, self.cookie = nodes, cookie
        self.last_seq: int | None = None
        self.epoch: str | None = None
        self.messages: list[tuple[str, dict[str, Any]]] = []  # (node, message) with a seq, as received
        self.links: list[dict[str, Any]] = []  # each connection: node, since, epoch, hello, opened/closed times
        self.resyncs = 0
        self.back = threading.Event()  # cleared: a dropped link stays down until it is set again
        self.back.set()
        self.changed = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._main, name="operator-console", daemon=True)

    def start(self) -> Console:
        self._thread.start()
        assert self.wait(lambda: bool(self.links) and self.links[-1].get("hello") is not None, 15), "no hello"
        return self

    def close(self) -> None:
        self.back.set()
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)

    def wait(self, check: Callable[[], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(check, timeout)

    def pops(self) -> list[tuple[str, dict[str, Any]]]:
        return [(node, m) for node, m in self.messages if m.get("type") == "screen_pop"]

    def _main(self) -> None:
        async def main() -> None:
            self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
            await self._follow()

        with contextlib.suppress(asyncio.CancelledError):
            asyncio.run(main())

    def _note(self, fn: Callable[[], None]) -> None:
        with self.changed:
            fn()
            self.changed.notify_all()

    async def _follow(self) -> None:
        delay, order, at = 0.5, list(self.nodes), 0
        while True:
            for i in range(len(order)):  # the balancer: the first node that answers
                node = order[(at + i) % len(order)]
                host = self.nodes[node]
                query = f"?since={self.last_seq}&epoch={quote(self.epoch or '')}" if self.last_seq is not None else ""
                try:
                    ws = await websockets.connect(f"ws://{host}/ws{query}", origin=f"http://{host}",  # type: ignore[arg-type]
                                                  additional_headers={"Cookie": f"hotline_token={self.cookie}"},
                                                  ping_interval=None, open_timeout=5)
                except (OSError, TimeoutError, websockets.WebSocketException):
                    continue
                at = (at + i) % len(order)
                link = {"node": node, "since": self.last_seq, "epoch": self.epoch, "hello": None,
                        "opened": time.monotonic(), "closed": None}
                self._note(lambda link=link: self.links.append(link))  # type: ignore[misc]
                delay = 0.5
                with contextlib.suppress(websockets.WebSocketException, OSError):
                    async with ws:
                        async for raw in ws:
                            self._take(ws, node, link, json.loads(raw))
                        # the server closed it (or the node died): as live.js's onclose
                link["closed"] = time.monotonic()
                self._note(lambda: None)
                break
            await asyncio.to_thread(self.back.wait)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _take(self, ws: Any, node: str, link: dict[str, Any], msg: dict[str, Any]) -> None:
        if msg.get("type") == "ping":
            asyncio.get_running_loop().create_task(ws.send('{"type":"pong"}'))
            return
        self._seen(node, link, msg)

    def _seen(self, node: str, link: dict[str, Any], msg: dict[str, Any]) -> None:
        """What live.js keeps of one message: the epoch, the last seq (and here, every message)."""
        kind = msg.get("type")
        if kind == "hello":
            def hello() -> None:
                fresh = self.epoch is not None and msg["epoch"] != self.epoch
                self.epoch = msg["epoch"]
                if self.last_seq is None or fresh:
                    self.last_seq = msg["last_seq"]
                link["hello"], link["hello_at"] = msg, time.monotonic()
            self._note(hello)
            return
        if kind == "resync":
            def resync() -> None:
                self.last_seq, self.epoch = msg["seq"], msg.get("epoch") or self.epoch
                self.resyncs += 1
            self._note(resync)
            return
        if isinstance(msg.get("seq"), int):
            def seen() -> None:
                self.last_seq = max(self.last_seq or 0, msg["seq"])
                self.messages.append((node, msg))
            self._note(seen)


class Balancer:
    """A layer-4 balancer in front of the web nodes, as a centre puts one: each new connection goes to
    the first node that accepts it. While ``back`` is cleared new connections wait (the page stays
    offline). Notes which node each websocket went to."""

    def __init__(self, nodes: dict[str, str], back: threading.Event, port: int) -> None:
        self.nodes, self.back, self.port = nodes, back, port
        self.websockets: list[str] = []  # the node of each /ws connection, in order
        self._loop: asyncio.AbstractEventLoop | None = None
        self._up = threading.Event()
        self._thread = threading.Thread(target=self._main, name="balancer", daemon=True)

    def start(self) -> Balancer:
        self._thread.start()
        assert self._up.wait(10), "the balancer did not start"
        return self

    def close(self) -> None:
        self.back.set()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _main(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        loop.run_until_complete(asyncio.start_server(self._relay, "127.0.0.1", self.port))
        self._up.set()
        loop.run_forever()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.to_thread(self.back.wait)
        to = ""
        for node, host in self.nodes.items():
            with contextlib.suppress(OSError):
                up_reader, up_writer = await asyncio.open_connection(*host.split(":"))
                to = node
                break
        if not to:
            writer.close()
            return
        first = await reader.read(65536)
        if first.startswith(b"GET /ws"):
            self.websockets.append(to)
        up_writer.write(first)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


class BrowserConsole(Console):
    """The operator's real console (/console, its live.js) in Debian's chromium, through a
    :class:`Balancer` in front of the two nodes: the page's own websocket, watched frame by frame."""

    def __init__(self, nodes: dict[str, str], username: str, password: str) -> None:
        super().__init__(nodes, "")
        self.username, self.password = username, password
        self.balancer = Balancer(nodes, self.back, free_port())
        self.url = f"http://127.0.0.1:{self.balancer.port}"
        self._jobs: list[tuple[Callable[[Any], Any], list[Any], threading.Event]] = []
        self._stop = threading.Event()
        self.failed: BaseException | None = None

    def start(self) -> Console:
        self.balancer.start()
        self._thread.start()
        assert self.wait(lambda: self.failed is not None or (bool(self.links) and self.links[-1]["hello"] is not None),
                         60), "no hello"
        assert self.failed is None, self.failed
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(20)
        self.balancer.close()

    def do(self, fn: Callable[[Any], Any], timeout: float = 30) -> Any:
        """Run ``fn(page)`` in the browser's thread (Playwright's objects live there)."""
        done, out = threading.Event(), []
        self._jobs.append((fn, out, done))
        assert done.wait(timeout), "the browser did not answer"
        if isinstance(out[0], BaseException):
            raise out[0]
        return out[0]

    def _main(self) -> None:
        from tests.support.browser import chromium

        try:
            with chromium() as browser:
                context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")  # type: ignore[attr-defined]
                page = context.new_page()
                page.on("websocket", self._socket)
                page.goto(f"{self.url}/login")
                page.fill("input[name=username]", self.username)
                page.fill("input[name=password]", self.password)
                page.press("input[name=password]", "Enter")
                page.wait_for_url(f"{self.url}/console", timeout=20_000)
                while not self._stop.is_set():
                    while self._jobs:
                        fn, out, done = self._jobs.pop(0)
                        try:
                            out.append(fn(page))
                        except Exception as exc:  # said in the test's thread
                            out.append(exc)
                        done.set()
                    page.wait_for_timeout(30)  # Playwright hands over the page's events meanwhile
        except Exception as exc:
            self._note(lambda exc=exc: setattr(self, "failed", exc))  # type: ignore[misc]

    def _socket(self, ws: Any) -> None:
        if "/ws" not in ws.url:
            return
        query = dict(part.split("=", 1) for part in ws.url.partition("?")[2].split("&") if "=" in part)
        link = {"node": "", "since": int(query["since"]) if "since" in query else None,
                "epoch": query.get("epoch"), "hello": None, "opened": time.monotonic(), "closed": None}
        self._note(lambda: self.links.append(link))

        def frame(payload: str | bytes) -> None:
            msg = json.loads(payload)
            if not link["node"]:  # the balancer sent this socket's connection to…
                link["node"] = self.balancer.websockets[-1] if self.balancer.websockets else "?"
            if msg.get("type") != "ping":  # live.js answers it
                self._seen(str(link["node"]), link, msg)

        def closed(_: Any) -> None:
            link["closed"] = time.monotonic()
            self._note(lambda: None)

        ws.on("framereceived", frame)
        ws.on("close", closed)


def ui_sign_in(page: Any, seat: str) -> None:
    """The console's own seat picker, as an operator signs in."""
    page.select_option("#seat-pick", seat)
    page.click("#signin")
    page.wait_for_function(f"document.getElementById('seat-no').textContent === '{seat}'", timeout=15_000)


class Centre:
    """The processes of the centre, started and stopped here (each by its pid)."""

    def __init__(self, base: Settings, folder: Path, database_url: str, redis_url: str, prefix: str) -> None:
        self.folder, self.database_url, self.redis_url, self.prefix = folder, database_url, redis_url, prefix
        self.bus_url = f"{redis_url}?prefix={prefix}"  # every node's: one stream, one board
        # each server names itself (HOTLINE_ASTERISK_SYSTEMNAME), as a centre of several must
        self.one = Stack(base, seats=SERVER1, topology="asterisk", wrapup_s=1.0, systemname=NAMES[0])
        self.two = Stack(base, seats=SERVER2, topology="asterisk", wrapup_s=1.0, systemname=NAMES[1])
        self.recordings = folder / "recordings"  # the centre's shared storage
        self.web: dict[str, str] = {}  # node name → host:port

    def stacks(self) -> list[Stack]:
        return [self.one, self.two]

    def common(self) -> dict[str, Any]:
        return {"database_url": self.database_url, "bus_url": self.bus_url, "recordings_dir": self.recordings}

    def start_asterisks(self) -> None:
        def up(stack: Stack) -> None:
            stack.prepare()
            stack.start()

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(up, self.stacks()))

    def web_node(self, name: str) -> Service:
        """``hotline web`` without the bridge, on every seat of the centre (served on server 1's stack)."""
        port = self.one.fields["web_port"] if not self.web else stack_port(8600, into=self.one.ports)
        self.web[name] = f"127.0.0.1:{port}"
        (self.folder / f"web-{name}").mkdir()
        return self.one.spawn(f"web-{name}", ["web"], services="", var_dir=self.folder / f"web-{name}",
                              web_port=port, seats=SERVER1 + SERVER2, asterisk_systemname="", **self.common())

    def bridge(self, stack: Stack, name: str) -> Service:
        """One `hotline cti` candidate of ``stack``'s server: a var folder of its own (its call outbox:
        another machine), Asterisk's records where that server writes them."""
        (self.folder / name).mkdir()
        return stack.spawn(name, ["cti"], var_dir=self.folder / name, witness_dir=stack.settings.asterisk_events_dir,
                           ami_secret=stack.settings.resolved_ami_secret(), **self.common())

    def agi(self, stack: Stack, name: str) -> Service:
        return stack.spawn(name, ["agi"], **self.common())

    def services(self) -> list[Service]:
        return [svc for stack in self.stacks() for svc in stack.services.values()]

    def stop(self, keep: Path) -> None:
        """Every service at once (SIGTERM, then SIGKILL), both Asterisks; the logs kept in ``keep``."""
        running = [s for s in self.services() if s.pid]
        with ThreadPoolExecutor(max(1, len(running))) as pool:
            list(pool.map(lambda s: s.stop(15), running))
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda st: st.stop(), self.stacks()))
        for i, stack in enumerate(self.stacks(), 1):
            stack.remove(keep / f"server{i}")


def log_of(svc: Service) -> str:
    return svc.log.read_text(encoding="utf-8", errors="replace") if svc.log.exists() else ""


def wait_log(svc: Service, line: str, timeout: float) -> float:
    """When (monotonic) ``line`` first appeared in the service's log, looking every 20 ms."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if line in log_of(svc):
            return time.monotonic()
        assert not svc.dead(), f"{svc.name} exited:\n{log_of(svc)[-3000:]}"
        time.sleep(0.02)
    raise AssertionError(f"{svc.name}: no {line!r} within {timeout} s:\n{log_of(svc)[-3000:]}")


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/login", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def sign_in(url: str, who: tuple[str, str]) -> tuple[httpx.Client, str]:
    """A session as the login page opens it (the cookie, and its token), good on every node: sessions
    are in PostgreSQL."""
    client = httpx.Client(base_url=url, timeout=15, headers={"X-Requested-With": "hotline"})
    r = client.post("/api/auth/login", json={"username": who[0], "password": who[1]})
    r.raise_for_status()
    return client, r.json()["token"]


class Stream:
    """The bus itself, read from its Redis: every entry's seq and message, and the live pictures."""

    def __init__(self, url: str, prefix: str) -> None:
        self.redis, self.prefix = redis.Redis.from_url(url), prefix

    def entries(self) -> list[tuple[int, dict[str, Any]]]:
        rows = self.redis.xrange(events_key(self.prefix), "-", "+")
        return [(int(rid.decode().split("-")[0]), json.loads(fields[b"m"])) for rid, fields in rows]

    def picture(self, server: str) -> dict[str, Any] | None:
        raw = self.redis.get(f"{self.prefix}:live:{server}")
        return json.loads(raw) if raw else None


@pytest.fixture
def centre(asterisk, settings: Settings, postgres_server, redis_server, tmp_path: Path) -> Iterator[Centre]:
    # ``asterisk``: the session holds the machine-wide real-Asterisk lock; the centre runs its own copies
    c = Centre(settings, tmp_path, postgres_server.create_database(), redis_server.url,
               f"centre{random.randrange(1_000_000)}")
    try:
        yield c
    finally:
        c.stop(tmp_path / "logs")
        print(f"the centre's logs: {tmp_path / 'logs'}")


def test_a_centre_of_two_servers_and_two_web_nodes_survives_a_bridge_and_a_web_node_killed(
        centre: Centre, settings: Settings) -> None:
    began = time.monotonic()
    c = centre
    stream = Stream(c.redis_url, c.prefix)
    server1 = f"127.0.0.1:{c.one.settings.ami_port}"  # each server's name in the centre: its lease's default
    server2 = f"127.0.0.1:{c.two.settings.ami_port}"
    with ThreadPoolExecutor(1) as pool:
        asterisks = pool.submit(c.start_asterisks)
        web_a = c.web_node("a")  # first, alone: it creates the tables on the new database
        url_a = f"http://{c.web['a']}"
        assert wait_until(lambda: answers(url_a), 90) is not None, log_of(web_a)[-3000:]
        asterisks.result()
    web_b = c.web_node("b")
    url_b = f"http://{c.web['b']}"
    cti_1a, cti_2 = c.bridge(c.one, "cti-1a"), c.bridge(c.two, "cti-2")
    c.agi(c.one, "agi-1")
    c.agi(c.two, "agi-2")

    one = Seats(c.one.settings, c.one.var / "sim", settings.var_dir / "audio", speech=False)
    two = Seats(c.two.settings, c.two.var / "sim", settings.var_dir / "audio", speech=False)
    two.runner._ports = one.runner._ports  # two phone farms on one box: one set of claimed SIPp ports
    two.used = 5_000  # the second server's callers have numbers of their own
    one.held, two.held = set(), set(SERVER2)  # server 2's queue: only the operator's seat, for the first call
    console: Console | None = None
    clients: list[httpx.Client] = []
    try:
        with ThreadPoolExecutor(2) as pool:  # the phones register while the processes start
            phones = [pool.submit(farm.seats, seats, ring_s=RING_S, talk_s=TALK_S)
                      for farm, seats in ((one, SERVER1), (two, SERVER2))]
            wait_log(cti_1a, ACTIVE, 90)  # server 1's first candidate won (term 1): now its standby
            cti_1b = c.bridge(c.one, "cti-1b")
            wait_log(cti_1a, RESYNCED, 60)
            wait_log(cti_2, RESYNCED, 90)
            wait_log(cti_1b, "held by another", 60)  # standing by
            assert wait_until(lambda: answers(url_b), 60) is not None, log_of(web_b)[-3000:]
            for registered in phones:
                registered.result()
        lead, lead_token = sign_in(url_b, LEAD)
        operator, operator_token = sign_in(url_a, OPERATOR)
        clients += [lead, operator]
        lead_auth = {"Authorization": f"Bearer {lead_token}"}
        assert wait_until(lambda: all(stream.picture(s) for s in (server1, server2)), 10) is not None
        print(f"\ncentre up in {time.monotonic() - began:.1f} s: 2 Asterisk servers, 3 CTI candidates, 2 FastAGI, "
              "web nodes A and B")

        # 1. signed in on node A to a seat of server 2; a call into server 2 pops on A -------------------
        nodes = {"a": c.web["a"], "b": c.web["b"]}
        if BROWSER:  # the console page in chromium, behind a balancer; it signs in with its seat picker
            console = BrowserConsole(nodes, *OPERATOR).start()
            first = console.links[0]["hello"]["last_seq"]
            console.do(lambda page: ui_sign_in(page, SEAT))
        else:  # the page's live link as a websocket client; the seat signed in through node A's API
            console = Console(nodes, operator_token).start()
            first = console.links[0]["hello"]["last_seq"]
            signed = operator.post("/api/seat/signin", json={"seat": SEAT})
            assert signed.status_code == 200, signed.text
        assert console.links[0]["node"] == "a"
        mine = operator.get("/api/seat").json()["seat"]
        assert mine["seat"] == SEAT and mine["operator"] == OPERATOR[0] and mine["server"] == server2, mine
        two.call(calls=1, rate=1, concurrency=1, ring_s=RING_S, talk_s=TALK_S, after_s=AFTER_S)
        assert console.wait(lambda: bool(console.pops()), 20), f"no pop on node A: {console.messages[-5:]}"
        node, pop = console.pops()[0]
        [number] = two.ledger()
        assert node == "a" and pop["seat"] == SEAT and pop["caller_num"] == number, pop
        assert pop["variables"].get("HL_LOCATION") == "山东省菏泽市", pop  # server 2's FastAGI looked the caller up
        if isinstance(console, BrowserConsole):  # and the page shows it
            strip = console.do(lambda page: (page.wait_for_selector("#pop:not([hidden])", timeout=10_000),
                                             page.inner_text("#pop-loc"))[1])
            assert "山东省菏泽市" in strip, strip
        print(f"1. {OPERATOR[0]} signed in on node A to seat {SEAT} of server 2 ({server2}); the SIPp call "
              f"from {number} into server 2 popped on A ({pop['variables']['HL_LOCATION']}) in "
              f"{'the console page in chromium' if BROWSER else 'a websocket client kept as live.js keeps it'}")

        # 2. load into both servers; server 1's active bridge killed -9 --------------------------------
        two.held = {SEAT}
        two.sign_in(SERVER2)  # server 2's seat bots join the operator
        for farm in (one, two):
            farm.call(calls=LOAD_CALLS, rate=RATE, concurrency=LOAD_CALLS, ring_s=RING_S, talk_s=TALK_S,
                      after_s=AFTER_S)
        time.sleep(3.5)  # calls ringing, talking and waiting on both servers
        killed = time.monotonic()
        os.kill(cti_1a.popen.pid, signal.SIGKILL)  # type: ignore[union-attr]
        won = wait_log(cti_1b, ACTIVE, 10)
        resynced = wait_log(cti_1b, RESYNCED, 10)

        def posted() -> bool:
            p = stream.picture(server1)
            return bool(p and (p.get("leader") or {}).get("term") == 2 and p.get("logged_in"))

        assert wait_until(posted, 10, every_s=0.02) is not None, stream.picture(server1)
        on_board = time.monotonic() - killed
        centre_seats = {**dict.fromkeys(SERVER1, server1), **dict.fromkeys(SERVER2, server2)}

        def on_node_b() -> bool:  # the merge node B shows (it reads the board every 0.5 s)
            return {s["seat"]: s["server"] for s in lead.get("/api/seats").json()} == centre_seats

        assert wait_until(on_node_b, 5, every_s=0.05) is not None, lead.get("/api/seats").json()
        on_b = time.monotonic() - killed
        print(f"2. server 1's active bridge killed -9 under load: the standby active {won - killed:.3f} s, resynced "
              f"from Asterisk {resynced - killed:.3f} s, its picture (term 2) on the board {on_board:.3f} s, "
              f"server 1's seats back on node B's wall {on_b:.3f} s after the kill")
        assert resynced - killed < TAKEOVER_LIMIT_S and on_board < TAKEOVER_LIMIT_S and on_b < TAKEOVER_LIMIT_S

        # 3. node A killed -9; the page comes back on node B and misses no pop ------------------------
        time.sleep(1.0)
        console.back.clear()  # the page stays offline until a pop was published meanwhile
        gone = time.monotonic()
        os.kill(web_a.popen.pid, signal.SIGKILL)  # type: ignore[union-attr]
        assert console.wait(lambda: console.links[-1]["closed"] is not None, 10), "the page did not see node A go"
        last_on_a = console.last_seq or 0  # the last seq the page got from node A

        def missed() -> bool:
            return any(seq > last_on_a and m.get("type") == "screen_pop" and m.get("seat") == SEAT
                       for seq, m in stream.entries())

        assert wait_until(missed, 30, every_s=0.2) is not None, "no call rang the operator's seat after node A died"
        console.back.set()
        assert console.wait(lambda: console.links[-1]["node"] == "b" and console.links[-1]["hello"] is not None, 20)
        moved = console.links[-1]
        print(f"3. node A killed -9: the page reconnected to node B {moved['hello_at'] - gone:.2f} s later with "
              f"?since={moved['since']}&epoch={moved['epoch']} (a pop was published while it was away)")
        assert moved["since"] == last_on_a and moved["epoch"] == console.links[0]["hello"]["epoch"]
        assert moved["hello"]["epoch"] == moved["epoch"] and console.resyncs == 0

        # every call ends; the page's pops beside the bus's own stream ---------------------------------
        assert one.wait_callers(90) and two.wait_callers(90), "SIPp callers still running"
        time.sleep(1.0)  # the last events reach node B's websocket
        entries = stream.entries()
        seqs = [seq for seq, _ in entries]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "the bus's seqs are not contiguous"
        expected = [seq for seq, m in entries
                    if seq > first and m.get("type") == "screen_pop" and m.get("seat") == SEAT]
        got = [m["seq"] for _, m in console.pops()]
        received = [m["seq"] for _, m in console.messages]
        via_b = [m["seq"] for node, m in console.pops() if node == "b"]
        print(f"   the page's pops: seqs {got} ({len(got) - len(via_b)} on A, {len(via_b)} on B); the stream's pops "
              f"for seat {SEAT}: {expected}; the stream's seqs {seqs[0]}..{seqs[-1]} contiguous; the page's "
              f"{len(received)} messages strictly rising, none twice")
        assert got == expected, (got, expected)
        assert received == sorted(set(received)), "a message reached the page twice or out of order"
        assert any(s > last_on_a for s in via_b)

        # 4. every call SIPp placed is in the call log once ---------------------------------------------
        placed = {n for farm in (one, two) for n, call in farm.ledger().items() if call.placed}
        since = datetime.fromtimestamp(time.time() - 3600, UTC)

        def logged() -> Counter[str]:
            return Counter(r["caller"] for r in api_calls(url_b, lead_auth, since))

        wait_until(lambda: set(logged()) >= placed, 40, every_s=0.5)
        time.sleep(2.0)  # a late second report (a bridge or the witness) would show now
        rows = api_calls(url_b, lead_auth, since)
        counts = Counter(r["caller"] for r in rows)
        print(f"4. /api/calls on node B: {len(rows)} rows for {len(placed)} calls placed ({len(one.ledger())} into "
              f"server 1, {len(two.ledger())} into server 2), {sum(r['reconstructed'] for r in rows)} rebuilt from "
              f"Asterisk's records; each number {sorted(set(counts.values()))} time(s)")
        missing, doubled = sorted(placed - set(counts)), sorted(n for n, k in counts.items() if k > 1)
        assert counts == Counter(placed), f"missing {missing}, doubled {doubled}, not placed {set(counts) - placed}"
        into = {n: name for farm, name in ((one, NAMES[0]), (two, NAMES[1])) for n in farm.ledger()}
        assert all(r["id"].startswith(f"{into[r['caller']]}-") for r in rows), [r["id"] for r in rows]
        print(f"   the whole test: {time.monotonic() - began:.0f} s")
    finally:
        if console is not None:
            console.close()
        for farm in (one, two):
            farm.stop()
        for client in clients:
            client.close()


def test_two_servers_never_give_two_calls_one_id(asterisk, settings: Settings) -> None:
    """The call log, the witness, the pops' call ids and the hub's routing all take Asterisk's uniqueid
    for a call's identity in the centre: two servers must never hand out the same one. Each server
    here makes one channel in the same second, as two servers of a centre do all day: fresh, both
    counters at 0, without a systemname each they gave the same id."""
    stacks = [Stack(settings, seats=SERVER1, topology="asterisk", systemname=NAMES[0]),
              Stack(settings, seats=SERVER2, topology="asterisk", systemname=NAMES[1])]
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda st: (st.prepare(), st.start()), stacks))

        async def first_ids() -> list[set[str]]:
            amis = [AmiRecorder("127.0.0.1", st.settings.ami_port, st.settings.ami_user,
                                st.settings.resolved_ami_secret()) for st in stacks]
            await asyncio.gather(*(a.connect() for a in amis))
            try:
                await asyncio.sleep(1.05 - time.time() % 1)  # early in a second: both channels fall in it
                await asyncio.gather(*(a.action({"Action": "Originate", "Channel": "Local/00@default",
                                                 "Application": "Wait", "Data": "0", "Async": "true"})
                                       for a in amis))
                await asyncio.gather(*(a.wait_for("Newchannel", 10) for a in amis))
                return [{str(e["Uniqueid"]) for e in a.find("Newchannel")} for a in amis]
            finally:
                await asyncio.gather(*(a.close() for a in amis))

        one, two = asyncio.run(first_ids())
        print(f"\nserver 1's first uniqueids {sorted(one)}, server 2's {sorted(two)}")
        assert one and two and one.isdisjoint(two), f"both servers gave {sorted(one & two)}"
        assert all(i.startswith(f"{NAMES[0]}-") for i in one) and all(i.startswith(f"{NAMES[1]}-") for i in two)
    finally:
        for st in stacks:
            st.stop()
            st.remove()

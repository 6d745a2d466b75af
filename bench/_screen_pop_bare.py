"""The screen-pop bench's baseline (``bench/screen_pop.py``): the least a pop path of this topology
is, written with the libraries alone and none of our code, run against the same simulated Asterisk,
the same store, the same bursts and the same 200 clients as the app.

* **The bridge node** (one process, uvloop, as ``hotline cti`` + ``hotline agi``): panoramisk's
  ``Manager`` logs in, adds every seat to the queue and, for each ``AgentCalled``, makes the pop
  from the event's own lines (the caller's channel variables, which carry the lookup's history) and
  appends it to a Redis stream with redis-py, a pipeline per turn of the loop. ``AgentComplete``
  pauses the seat for its wrap-up and a click taken from a Redis list (BLPOP) unpauses it. FastAGI
  is ``bench/agi_lookup.py``'s own baseline (checked there byte for byte against ours): the lookup's
  SQL through ``sqlite3``, here on a thread of its own rather than on the loop that reads AMI, its
  rules written out, one ``SET VARIABLE``; and the survey's first prompt, where the caller hangs up.
* **Each web node** (starlette on uvicorn, as ours is served): a login that sets a cookie, the seat
  sign-in and the wrap-up click (an LPUSH), ``/ws`` with its hello, and one task reading the
  stream (XREAD) that sends each pop to the socket of its seat, found in a dict.
* **One node** (``--nodes 1``, as ``hotline up`` runs on one box): the bridge and the web room in
  one process, the pops and the clicks handed over on the loop's own queues instead of Redis.

What it leaves out, so the ratio is the price of all of it: passwords and sessions in the store,
CSRF and role checks, the call's state and the 15-second rule, the live picture, the filing of
every call, the bus's exactly-once numbering and catch-up, timeouts on every read.

Private to screen_pop (the leading ``_`` keeps ``make bench`` from running it). Imports no
``hotline``, ``cti``, ``agi`` or ``agent_ui`` module; ``agi_lookup`` is the bench beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import urlsplit

from agi_lookup import Bare

STREAM = "bare:events"
CLICKS = "bare:clicks"
WRAPUP = "话后处理"


def main(raw: str, how: str) -> None:
    import uvloop

    cfg = json.loads(raw)
    if how == "roles":  # the bridge node of several
        uvloop.run(_bridge(cfg, RedisLink(cfg)))
    elif cfg.get("bus_url"):  # a web node of several
        uvloop.run(_serve(cfg, RedisLink(cfg)))
    else:  # one node for all, as hotline up runs on one box
        uvloop.run(_serve(cfg, LocalLink(), bridge=True))


async def _serve(cfg: dict, link: RedisLink | LocalLink, bridge: bool = False) -> None:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(_web(cfg, link), host=cfg["web_host"], port=cfg["web_port"],
                                           proxy_headers=False, ws_per_message_deflate=False, log_level="warning"))
    await asyncio.gather(server.serve(), *([_bridge(cfg, link)] if bridge else []))


class RedisLink:
    """Between the nodes: the pops on a Redis stream (a pipeline of what is queued, each turn), the
    wrap-up clicks on a Redis list."""

    def __init__(self, cfg: dict) -> None:
        import redis.asyncio as aioredis

        url = urlsplit(cfg["bus_url"])
        self.redis = aioredis.from_url(f"{url.scheme}://{url.netloc}{url.path}")
        self.out: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    def publish(self, seat: str, pop: str) -> None:
        self.out.put_nowait((seat, pop))

    async def publishing(self) -> None:
        while True:
            batch = [await self.out.get()]
            while not self.out.empty():
                batch.append(self.out.get_nowait())
            async with self.redis.pipeline(transaction=False) as p:
                for seat, pop in batch:
                    p.xadd(STREAM, {"s": seat, "m": pop}, maxlen=10000, approximate=True)
                await p.execute()

    async def pops(self) -> AsyncIterator[tuple[str, str]]:
        last = "$"
        while True:
            for _, entries in await self.redis.xread({STREAM: last}, block=1000, count=1000) or []:
                for entry_id, fields in entries:
                    last = entry_id
                    yield fields[b"s"].decode(), fields[b"m"].decode()

    async def click(self, seat: str) -> None:
        await self.redis.lpush(CLICKS, seat)

    async def clicks(self) -> AsyncIterator[str]:
        while True:
            if got := await self.redis.blpop([CLICKS], timeout=1):
                yield got[1].decode()


class LocalLink:
    """In one process: the same hand-offs on the loop's own queues."""

    def __init__(self) -> None:
        self.out: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.taps: asyncio.Queue[str] = asyncio.Queue()

    def publish(self, seat: str, pop: str) -> None:
        self.out.put_nowait((seat, pop))

    async def publishing(self) -> None:
        await asyncio.Event().wait()  # the web room takes each pop from the queue itself

    async def pops(self) -> AsyncIterator[tuple[str, str]]:
        while True:
            yield await self.out.get()

    async def click(self, seat: str) -> None:
        self.taps.put_nowait(seat)

    async def clicks(self) -> AsyncIterator[str]:
        while True:
            yield await self.taps.get()


def _db_path(cfg: dict) -> str:
    return cfg["database_url"].removeprefix("sqlite:///")


# --- the bridge node ------------------------------------------------------------------------------


class Lookups(Bare):
    """agi_lookup's bare lookup on the dialplan's port, its SQL on a thread of its own (where its
    connection is made), off the loop that reads AMI; the survey: its first prompt."""

    @classmethod
    async def serve(cls, cfg: dict) -> Lookups:
        sql = ThreadPoolExecutor(1)
        rules = cfg["agi_repeat_days"], cfg["agi_overflow_wait_s"]
        self = await asyncio.get_running_loop().run_in_executor(sql, cls, _db_path(cfg), datetime.now(UTC), *rules)
        self.sql = sql
        self.server = await asyncio.start_server(self.session, "127.0.0.1", cfg["agi_port"], backlog=1024)
        return self

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\n\n")).decode()
            env = dict(line.split(": ", 1) for line in head.splitlines() if ": " in line)
            if env.get("agi_network_script") == "lookup":
                number = re.sub(r"\D", "", env.get("agi_callerid", ""))
                lines = await asyncio.get_running_loop().run_in_executor(self.sql, self.answer, number)
            else:
                lines = [b'STREAM FILE hotline-survey ""\n']
            for line in lines:
                writer.write(line)
                await reader.readline()  # 200 result=…, or the caller's HANGUP in the survey
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _bridge(cfg: dict, link: RedisLink | LocalLink) -> None:
    from panoramisk import Manager

    lookups = await Lookups.serve(cfg)
    manager = Manager(host=cfg["ami_host"], port=cfg["ami_port"], username="hotline", secret=cfg["ami_secret"],
                      loop=asyncio.get_running_loop())

    def pause(seat: str, paused: bool) -> None:
        action = {"Action": "QueuePause", "Queue": "hotline", "Interface": f"PJSIP/{seat}"}
        manager.send_action(action | ({"Paused": "true", "Reason": WRAPUP} if paused else {"Paused": "false"}))

    def on_login(m: Manager) -> None:
        for seat in cfg["seats"]:
            m.send_action({"Action": "QueueAdd", "Queue": "hotline", "Interface": f"PJSIP/{seat}", "MemberName": seat})

    def called(_: Manager, e) -> None:
        lines = e.get("ChanVariable") or []
        variables = dict(v.split("=", 1) for v in ([lines] if isinstance(lines, str) else lines) if "=" in v)
        seat = e["MemberName"]
        link.publish(seat, json.dumps({"type": "screen_pop", "call_id": e["Uniqueid"], "at": e["Timestamp"],
                                          "seat": seat, "caller": e["CallerIDNum"], "variables": variables},
                                        ensure_ascii=False, separators=(",", ":")))

    manager.on_login = on_login
    manager.register_event("AgentCalled", called)
    manager.register_event("AgentComplete", lambda _, e: pause(e["MemberName"], True))
    manager.connect()

    async def unpausing() -> None:
        async for seat in link.clicks():
            pause(seat, False)

    await asyncio.gather(link.publishing(), unpausing(), lookups.server.serve_forever())


# --- a web node ---------------------------------------------------------------------------------------


def _web(cfg: dict, link: RedisLink | LocalLink):
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    seat_of: dict[str, str] = {}  # session token → seat
    sockets: dict[str, WebSocket] = {}  # seat → its console's socket

    async def page(_) -> PlainTextResponse:
        return PlainTextResponse("login")

    async def login(request) -> JSONResponse:
        await request.json()
        token = secrets.token_urlsafe(16)
        seat_of[token] = ""
        answer = JSONResponse({"ok": True})
        answer.set_cookie("hotline_token", token, httponly=True)
        return answer

    async def sign_in(request) -> JSONResponse:
        seat_of[request.cookies["hotline_token"]] = (await request.json())["seat"]
        return JSONResponse({"ok": True})

    async def wrapup_done(request) -> JSONResponse:
        await link.click(seat_of[request.cookies["hotline_token"]])
        return JSONResponse({"ok": True})

    async def ws(socket: WebSocket) -> None:
        seat = seat_of[socket.cookies["hotline_token"]]
        await socket.accept()
        await socket.send_text('{"type":"hello"}')
        sockets[seat] = socket
        try:
            while True:
                await socket.receive_text()
        except WebSocketDisconnect:
            if sockets.get(seat) is socket:  # not a newer socket of the same seat
                del sockets[seat]

    async def read() -> None:
        async for seat, pop in link.pops():
            if (socket := sockets.get(seat)) is not None:
                with contextlib.suppress(Exception):  # a console going away: the other pops go on
                    await socket.send_text(pop)

    @asynccontextmanager
    async def lifespan(_):
        reader = asyncio.create_task(read())
        yield
        reader.cancel()

    return Starlette(routes=[Route("/login", page), Route("/api/auth/login", login, methods=["POST"]),
                             Route("/api/seat/signin", sign_in, methods=["POST"]),
                             Route("/api/seat/wrapup/done", wrapup_done, methods=["POST"]), WebSocketRoute("/ws", ws)],
                     lifespan=lifespan)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""``bench/live_transcribe.py``'s node side: the web node with the listening role as a script of its
own process (with a probe of its recognisers' backlog), that process's CPU split by thread, and the
operators' consoles following ``/ws``. Private to live_transcribe (the leading ``_`` keeps
``make bench`` from running it); it imports the product and testkit only, never the bench.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

NODE = """
import json, logging, sys, threading, time, weakref
import uvicorn, uvloop
import live.legs
from launch.compose import server_config
from hotline.settings import Settings
from hotline.listening import LegsAssigned
logging.basicConfig(level=logging.WARNING, format='node: %(name)s: %(message)s')
logging.getLogger('launch.witness').setLevel(logging.ERROR)

# the bench's probe: every recogniser this process makes, and how many seconds of audio the one
# furthest behind has waiting (LegRecogniser.lag_s, what the node drops a leg on), every 0.1 s
recognisers = weakref.WeakSet()
made = live.legs.LegRecogniser.__init__
def tracked(self, *a, **kw):
    made(self, *a, **kw)
    recognisers.add(self)
live.legs.LegRecogniser.__init__ = tracked
behind = []
def probe():
    while True:
        time.sleep(0.1)
        lags = [r.lag_s for r in list(recognisers) if not r.dropped and not r.join(0)]
        if lags:
            behind.append(max(lags))
threading.Thread(target=probe, daemon=True).start()

settings = Settings(**json.loads(sys.argv[1]))
roster = json.loads(sys.argv[2])
config = server_config(settings, log_level='warning')
config.app.state.roster = lambda: roster  # no CTI here: who sits where is given (as the console tests do)
server = uvicorn.Server(config)

async def main():
    import asyncio
    loop = asyncio.get_running_loop()
    def commands():  # the bridge's part: a call's legs, said on this node's bus; and the probe's samples
        for line in sys.stdin:
            cmd = json.loads(line)
            if 'assign' in cmd:
                ev = LegsAssigned(at=time.time(), **cmd['assign'])
                loop.call_soon_threadsafe(config.app.state.bus.publish_nowait, ev)
            elif 'warm' in cmd:  # has the node warmed a recogniser for every leg it holds?
                listen = getattr(getattr(config.app.state, 'runtime', None), 'listen', None)
                print('BENCH ' + json.dumps(bool(listen is not None and listen.warmed)), flush=True)
            else:
                got = behind[:]
                behind.clear()
                print('BENCH ' + json.dumps(got), flush=True)
        server.should_exit = True
    threading.Thread(target=commands, daemon=True).start()
    await server.serve()

uvloop.run(main())
"""


class ThreadCpu:
    """CPU of one process split by its threads (``/proc/PID/task``), sampled every 0.25 s so that the
    recognisers' threads, which end with their leg, are not missed: nice ≥ 10 (the recognisers), the
    main thread (the event loop: AudioSocket, bus, websockets) and the other threads."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.tick = os.sysconf("SC_CLK_TCK")
        self.seen: dict[int, tuple[int, float]] = {}  # tid → (nice, cpu s) at its last sample
        self.base: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(") ", 1)[1].split()
            except (OSError, IndexError):
                continue
            self.seen[int(tid)] = (int(fields[16]), (int(fields[11]) + int(fields[12])) / self.tick)

    def total(self) -> float:
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(") ", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.tick

    def start(self) -> None:
        self._sample()
        self.base = {tid: cpu for tid, (_, cpu) in self.seen.items()}
        self.total0 = self.total()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self._sample()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self._sample()
        total = self.total() - self.total0
        delta = {tid: cpu - self.base.get(tid, 0.0) for tid, (_, cpu) in self.seen.items()}
        loop = delta.get(self.pid, 0.0)
        other = sum(d for tid, d in delta.items() if tid != self.pid and self.seen[tid][0] < 10)
        return {"total": total, "loop": loop, "other": other, "recognisers": max(0.0, total - loop - other)}


# ------------------------------------------------------------------ the operators' consoles


class Consoles:
    """One ``/ws`` per operator, signed in with the password as a person signs in; every
    ``live_transcript`` message timed on arrival (``time.monotonic``, the streams' clock)."""

    def __init__(self, url: str) -> None:
        self.url = url
        # (call, speaker) → every final: its arrival, its end_s, its text
        self.finals: dict[tuple[str, str], list[tuple[float, float, str]]] = {}
        self.partials = 0
        self.degraded: set[tuple[str, str]] = set()
        self.ended: set[str] = set()
        self.changed = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self, passwords: dict[str, str]) -> None:
        import httpx

        opened: asyncio.Queue[str] = asyncio.Queue()
        async with httpx.AsyncClient(base_url=f"http://{self.url}", headers={"Origin": f"http://{self.url}"},
                                     timeout=30) as http:
            for user, password in passwords.items():
                http.cookies.clear()
                r = await http.post("/api/auth/login", json={"username": user, "password": password})
                assert r.status_code == 200, r.text
                self.tasks.append(asyncio.create_task(self._follow(user, http.cookies["hotline_token"], opened)))
        for _ in passwords:
            await asyncio.wait_for(opened.get(), 30)

    async def _follow(self, user: str, token: str, opened: asyncio.Queue[str]) -> None:
        from testkit.console import console_socket

        async with console_socket(self.url, token) as ws:
            opened.put_nowait(user)
            async for raw in ws:
                arrived = time.monotonic()
                if '"live_transcript"' in raw:  # type: ignore[operator]
                    msg = json.loads(raw)
                    key = (msg["call_id"], msg.get("speaker", ""))
                    if msg["event"] == "TranscriptLine":
                        if msg["final"]:
                            self.finals.setdefault(key, []).append((arrived, msg["end_s"], msg["text"]))
                        else:
                            self.partials += 1
                    elif msg.get("state") == "degraded":
                        self.degraded.add(key)
                    elif msg.get("state") == "ended":
                        self.ended.add(msg["call_id"])
                        self.changed.set()
                elif '"ping"' in raw and json.loads(raw).get("type") == "ping":  # type: ignore[operator]
                    await ws.send('{"type":"pong"}')

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

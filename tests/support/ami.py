"""A raw AMI client for the test harness: reads bytes, keeps them, and waits for events.

It is deliberately not the product's link (cti/link.py): it records exactly the bytes
Asterisk sent, so real transcripts can be saved as fixtures for the pure cores' unit tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from pathlib import Path

Event = dict[str, str | list[str]]
Predicate = Callable[[Event], bool]


def parse_frame(frame: bytes) -> Event:
    event: Event = {}
    for line in frame.decode("utf-8", errors="replace").split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        if key in event:
            prev = event[key]
            event[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            event[key] = value
    return event


def chanvars(event: Event, key: str = "ChanVariable") -> dict[str, str]:
    raw = event.get(key) or []
    items = raw if isinstance(raw, list) else [raw]
    return dict(item.split("=", 1) for item in items if "=" in item)


class AmiRecorder:
    def __init__(self, host: str, port: int, username: str, secret: str) -> None:
        self.host, self.port, self.username, self.secret = host, port, username, secret
        self.raw = bytearray()
        self.events: list[Event] = []
        self._waiters: list[tuple[Predicate, asyncio.Future[Event]]] = []
        self._responses: dict[str, asyncio.Future[Event]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self, timeout: float = 10) -> None:
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout)
        await asyncio.wait_for(self._reader.readline(), timeout)  # "Asterisk Call Manager/…"
        self._task = asyncio.create_task(self._read_loop())
        reply = await self.action({"Action": "Login", "Username": self.username, "Secret": self.secret},
                                  timeout=timeout)
        if reply.get("Response") != "Success":
            raise RuntimeError(f"AMI login refused: {reply}")

    async def _read_loop(self) -> None:
        assert self._reader is not None
        buffer = b""
        while True:
            chunk = await self._reader.read(65536)
            if not chunk:
                return
            self.raw += chunk
            buffer += chunk
            while b"\r\n\r\n" in buffer:
                frame, buffer = buffer.split(b"\r\n\r\n", 1)
                self._dispatch(parse_frame(frame))

    def _dispatch(self, event: Event) -> None:
        event["_received"] = f"{time.time():.6f}"
        action_id = event.get("ActionID")
        if "Response" in event and isinstance(action_id, str) and action_id in self._responses:
            fut = self._responses.pop(action_id)
            if not fut.done():
                fut.set_result(event)
            return
        if "Event" not in event:
            return
        self.events.append(event)
        for waiter in list(self._waiters):
            predicate, fut = waiter
            if not fut.done() and predicate(event):
                fut.set_result(event)
                self._waiters.remove(waiter)

    async def action(self, fields: dict[str, str], timeout: float = 10) -> Event:
        assert self._writer is not None
        action_id = f"t{next(self._ids)}"
        fut: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._responses[action_id] = fut
        lines = [f"{k}: {v}" for k, v in fields.items()] + [f"ActionID: {action_id}"]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self._writer.drain()
        return await asyncio.wait_for(fut, timeout)

    def find(self, name: str, **match: str) -> list[Event]:
        return [e for e in self.events if e.get("Event") == name and all(e.get(k) == v for k, v in match.items())]

    async def wait_for(self, what: str | Predicate, timeout: float = 30, **match: str) -> Event:
        """The first event (already received or coming) named ``what`` with ``match``, or matching it."""
        if isinstance(what, str):
            name = what

            def predicate(e: Event) -> bool:
                return e.get("Event") == name and all(e.get(k) == v for k, v in match.items())
        else:
            predicate = what
        for event in self.events:
            if predicate(event):
                return event
        fut: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            seen = sorted({str(e.get("Event")) for e in self.events})
            raise AssertionError(f"no event {what!r} {match} within {timeout} s; saw {seen}") from None

    def save(self, path: Path) -> None:
        """The raw bytes received, a fixture for the parser and state-machine unit tests."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(self.raw))

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
        if self._writer:
            self._writer.close()
            with contextlib.suppress(TimeoutError, ConnectionError):
                await asyncio.wait_for(self._writer.wait_closed(), 2)


def ts(event: Event) -> float:
    """Asterisk's own clock for the event (manager.conf timestampevents)."""
    return float(str(event["Timestamp"]))

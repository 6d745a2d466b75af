"""A fake Asterisk Manager on 127.0.0.1:0 speaking AMI bytes, for the link tests."""

from __future__ import annotations

import asyncio
import contextlib


class FakeAmi:
    def __init__(self, secret: str = "pw", version: str = "9.0.0") -> None:
        self.secret = secret
        self.version = version
        self.silent = False  # stop answering anything (a SIGSTOPped Asterisk)
        self.booted = True  # False: logins are accepted but app_queue is not loaded yet (a restart)
        self.ignore: set[str] = set()  # actions never answered
        self.connections = 0
        self.actions: list[dict] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.members: list[dict[str, str]] = []
        self.entries: list[dict[str, str]] = []
        self.channels: list[dict[str, str]] = []
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> FakeAmi:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        await self.drop_all()
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    async def drop_all(self) -> None:
        for w in list(self.writers):
            w.close()
            with contextlib.suppress(Exception):
                await w.wait_closed()
        self.writers.clear()

    async def boot(self) -> None:
        """Booting ends: every session hears FullyBooted, and queue actions now work."""
        self.booted = True
        await self.push(self.frame(Event="FullyBooted", Privilege="system,all", Status="Fully Booted"))

    async def push(self, data: bytes) -> None:
        for w in self.writers:
            w.write(data)
            await w.drain()

    @staticmethod
    def frame(**headers: str) -> bytes:
        return ("".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        writer.write(f"Asterisk Call Manager/{self.version}\r\n".encode())
        buf = b""
        try:
            while data := await reader.read(4096):
                buf += data
                *frames, buf = buf.split(b"\r\n\r\n")
                for raw in frames:
                    action = dict(line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line)
                    self.actions.append(action)
                    if self.silent or action.get("Action") in self.ignore:
                        continue
                    writer.write(self._answer(action))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(ValueError):
                self.writers.remove(writer)
            writer.close()

    def _answer(self, a: dict) -> bytes:
        aid = a.get("ActionID", "")
        name = a.get("Action")
        f = self.frame
        if name == "Login":
            if a.get("Secret") == self.secret:
                accepted = f(Response="Success", ActionID=aid, Message="Authentication accepted")
                if not self.booted:
                    return accepted
                return accepted + f(
                    Event="FullyBooted",
                    Privilege="system,all",
                    Uptime="5",
                    LastReload="5",
                    Status="Fully Booted",
                )
            return f(Response="Error", ActionID=aid, Message="Authentication failed")
        if not self.booted and name != "Ping":  # what Asterisk 22 answers before app_queue loads
            return f(Response="Error", ActionID=aid, Message=f"Invalid/unknown command: {name}.")
        if name == "Ping":
            return f(Response="Success", ActionID=aid, Ping="Pong", Timestamp="1795344882.000000")
        if name == "QueueAdd":
            return f(Response="Success", ActionID=aid, Message="Added interface to queue")
        if name == "QueueStatus":
            out = f(Response="Success", ActionID=aid, EventList="start", Message="Queue status will follow")
            for m in self.members:
                out += f(Event="QueueMember", ActionID=aid, **m)
            for e in self.entries:
                out += f(Event="QueueEntry", ActionID=aid, **e)
            n = len(self.members) + len(self.entries)
            return out + f(Event="QueueStatusComplete", ActionID=aid, EventList="Complete", ListItems=str(n))
        if name == "CoreShowChannels":
            out = f(Response="Success", ActionID=aid, EventList="start", Message="Channels will follow")
            for c in self.channels:
                out += f(Event="CoreShowChannel", ActionID=aid, **c)
            return out + f(
                Event="CoreShowChannelsComplete",
                ActionID=aid,
                EventList="Complete",
                ListItems=str(len(self.channels)),
            )
        return f(Response="Success", ActionID=aid, Message=f"{name} ok")

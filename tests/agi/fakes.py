"""Fakes for the flow tests: a scripted channel, and an Asterisk that speaks AGI over a socket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from agi.channel import AgiHangup, Recorded
from agi.protocol import AgiEnv, parse_env


def env(script: str = "lookup", callerid: str = "13953012345", uniqueid: str = "1700000000.1",
        args: tuple[str, ...] = (), **raw: str) -> AgiEnv:
    lines = [f"agi_network_script: {script}", f"agi_request: agi://127.0.0.1:4573/{script}",
             f"agi_callerid: {callerid}", f"agi_uniqueid: {uniqueid}", "agi_channel: PJSIP/trunk-00000001",
             *(f"agi_arg_{i}: {a}" for i, a in enumerate(args, 1)), *(f"agi_{k}: {v}" for k, v in raw.items())]
    return parse_env(lines)


@dataclass
class FakeChannel:
    """Keys the caller will press (one entry per GET DATA: "" is silence), variables Asterisk has,
    and after how many commands the caller hangs up."""

    env: AgiEnv = field(default_factory=env)
    keys: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    hangup_after: int | None = None
    set: dict[str, str] = field(default_factory=dict)
    played: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)  # what each GET DATA played
    execs: list[tuple[str, str]] = field(default_factory=list)
    commands: int = 0
    message: Recorded = field(default_factory=lambda: Recorded("dtmf", 12 * 8000))  # what RECORD FILE gets
    recorded: list[tuple[str, int, int]] = field(default_factory=list)

    def _tick(self) -> None:
        self.commands += 1
        if self.hangup_after is not None and self.commands > self.hangup_after:
            raise AgiHangup("caller hung up")

    async def get_variable(self, name: str) -> str:
        self._tick()
        return self.variables.get(name, "")

    async def set_variables(self, values: dict[str, str]) -> None:
        self._tick()
        self.set.update(values)

    async def play(self, *sounds: str) -> None:
        self._tick()
        self.played.extend(sounds)

    async def get_data(self, sound: str, timeout_ms: int, max_digits: int) -> str:
        self._tick()
        self.prompts.append(sound)
        return self.keys.pop(0) if self.keys else ""

    async def exec(self, app: str, args: str) -> None:
        self._tick()
        self.execs.append((app, args))

    async def record(self, path: str, max_ms: int, silence_s: int) -> Recorded:
        self._tick()
        self.recorded.append((path, max_ms, silence_s))
        if self.message.ended_by == "hangup":  # the caller hung up to end it: nothing more goes through
            self.hangup_after = self.commands
        return self.message


class Recorder:
    """An async callback that remembers its calls; ``wait()`` until one came."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self._called = asyncio.Event()

    async def __call__(self, *args: object) -> None:
        self.calls.append(args)
        self._called.set()

    async def wait(self, timeout: float) -> tuple:
        await asyncio.wait_for(self._called.wait(), timeout)
        return self.calls[0]


def asterisk_parse_args(line: str) -> list[str]:
    """How res_agi splits a command line: spaces separate outside quotes, ``\\`` escapes."""
    out: list[str] = []
    cur, quoted, escaped, started = [], False, False, False
    for ch in line:
        if escaped:
            cur.append(ch)
            escaped = False
            started = True
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
            started = True
        elif ch in " \t" and not quoted:
            if started:
                out.append("".join(cur))
            cur, started = [], False
        else:
            cur.append(ch)
            started = True
    if started:
        out.append("".join(cur))
    return out


Responder = Callable[[list[str]], "list[bytes] | bytes"]


def app_args(text: str) -> list[str]:
    """How Asterisk splits a function's or application's arguments (ast_app_separate_args): on
    commas outside quotes and parentheses, dropping the quotes and backslash escapes."""
    out, cur, quoted, depth, escaped = [], [], False, 0, False
    for ch in text:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "(" and not quoted:
            depth += 1
            cur.append(ch)
        elif ch == ")" and not quoted:
            depth -= 1
            cur.append(ch)
        elif ch == "," and not quoted and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def default_reply(args: list[str], variables: dict[str, str], keys: list[str]) -> bytes:
    verb = " ".join(args[:2]).upper()
    if verb == "SET VARIABLE":
        name, value = args[2], args[3]
        if name.startswith("ARRAY(") and name.endswith(")"):
            for k, v in zip(app_args(name[6:-1]), app_args(value), strict=False):
                variables[k] = v
        else:
            variables[name] = value
        return b"200 result=1\n"
    if verb == "GET FULL" or verb == "GET VARIABLE":
        name = args[-1].removeprefix("${").removesuffix("}")
        if name in variables:
            return f"200 result=1 ({variables[name]})\n".encode()
        return b"200 result=0\n"
    if verb == "GET DATA":
        k = keys.pop(0) if keys else ""
        return f"200 result={k} (timeout)\n".encode() if not k else f"200 result={k}\n".encode()
    if args[0].upper() == "EXEC":
        return b"200 result=0\n"
    if verb == "RECORD FILE":  # eight seconds said, then "#"
        return b"200 result=35 (dtmf) endpos=64000\n"
    return b"510 Invalid or unknown command\n"


@dataclass
class AgiClient:
    """Asterisk's side of one FastAGI session, over a real socket."""

    host: str
    port: int
    script: str = "lookup"
    callerid: str = "13953012345"
    uniqueid: str = "1700000000.1"
    keys: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    hangup_at: int | None = None  # answer this command (1-based) with HANGUP + result=-1, then 511s
    commands: list[list[str]] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    pipelined: int = 0  # commands sent before the previous one was answered

    def header(self) -> bytes:
        lines = {"agi_network": "yes", "agi_network_script": self.script,
                 "agi_request": f"agi://{self.host}:{self.port}/{self.script}", "agi_channel": "PJSIP/trunk-1",
                 "agi_language": "zh", "agi_type": "PJSIP", "agi_uniqueid": self.uniqueid,
                 "agi_version": "22.0.0", "agi_callerid": self.callerid, "agi_calleridname": "unknown",
                 "agi_context": "from-trunk", "agi_extension": "12345", "agi_priority": "6", **self.extra_env}
        return "".join(f"{k}: {v}\n" for k, v in lines.items()).encode() + b"\n"

    async def run(self, timeout: float = 10) -> list[list[str]]:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(self.header())
            try:
                await writer.drain()
            except ConnectionResetError:
                return self.commands
            dead = False
            while True:
                try:
                    line = await asyncio.wait_for(reader.readline(), timeout)
                except ConnectionResetError:  # closed with our header unread (refused): like EOF
                    return self.commands
                if not line:
                    return self.commands
                args = asterisk_parse_args(line.decode().rstrip("\n"))
                self.commands.append(args)
                if reader._buffer:  # res_agi would stall on a pipelined command: the server must wait
                    self.pipelined += 1
                if dead:
                    writer.write(b"511 Command Not Permitted on a dead channel or intercepted channel\n")
                elif self.hangup_at == len(self.commands):
                    dead = True
                    writer.write(b"HANGUP\n200 result=-1\n")
                else:
                    writer.write(default_reply(args, self.variables, self.keys))
                await writer.drain()
        finally:
            writer.close()

"""Asterisk's side of FastAGI: its header, its argument splitting, its replies, over a real socket.

The splitting follows res_agi (command lines) and ast_app_separate_args (``ARRAY(…)`` names and
values), so that a server under test or under load is answered as Asterisk 22 would answer it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


def header(host: str, port: int, script: str, uniqueid: str, callerid: str, channel: str = "PJSIP/trunk-1",
           version: str = "22.0.0", extra: dict[str, str] | None = None) -> bytes:
    """The ``agi_*`` block Asterisk sends first for ``AGI(agi://host:port/script)``, blank line included.

    >>> header("127.0.0.1", 4573, "lookup", "1.1", "139", extra={"agi_arg_1": "3"}).splitlines()[2:4]
    [b'agi_request: agi://127.0.0.1:4573/lookup', b'agi_channel: PJSIP/trunk-1']
    """
    lines = {"agi_network": "yes", "agi_network_script": script, "agi_request": f"agi://{host}:{port}/{script}",
             "agi_channel": channel, "agi_language": "zh", "agi_type": "PJSIP", "agi_uniqueid": uniqueid,
             "agi_version": version, "agi_callerid": callerid, "agi_calleridname": "unknown",
             "agi_context": "from-trunk", "agi_extension": "12345", "agi_priority": "6", **(extra or {})}
    return "".join(f"{k}: {v}\n" for k, v in lines.items()).encode() + b"\n"


def asterisk_parse_args(line: str) -> list[str]:
    """How res_agi splits a command line: spaces separate outside quotes, ``\\`` escapes.

    >>> asterisk_parse_args('SET VARIABLE  "A B" "say \\\\"hi\\\\""')
    ['SET', 'VARIABLE', 'A B', 'say "hi"']
    """
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


def app_args(text: str) -> list[str]:
    """How Asterisk splits a function's or application's arguments (ast_app_separate_args): on
    commas outside quotes and parentheses, dropping the quotes and backslash escapes.

    >>> app_args('a,"b,c",f(x,y),d\\\\,e')
    ['a', 'b,c', 'f(x,y)', 'd,e']
    """
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


def assigned(args: list[str]) -> dict[str, str]:
    """The variables a split ``SET VARIABLE name value`` command sets (``ARRAY(a,b)`` sets several).

    >>> assigned(asterisk_parse_args('SET VARIABLE "ARRAY(HL_LOOKUP,HL_NAME)" "ok,张三"'))
    {'HL_LOOKUP': 'ok', 'HL_NAME': '张三'}
    """
    name, value = args[2], args[3]
    if name.startswith("ARRAY(") and name.endswith(")"):
        return dict(zip(app_args(name[6:-1]), app_args(value), strict=False))
    return {name: value}


def default_reply(args: list[str], variables: dict[str, str], keys: list[str]) -> bytes:
    """Asterisk's reply to one split command, on a channel holding ``variables`` whose caller will
    press ``keys`` (one entry per GET DATA, "" for silence)."""
    verb = " ".join(args[:2]).upper()
    if verb == "SET VARIABLE":
        variables.update(assigned(args))
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
        return header(self.host, self.port, self.script, self.uniqueid, self.callerid, extra=self.extra_env)

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

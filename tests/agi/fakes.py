"""Fakes for the flow tests: a scripted channel; an Asterisk that speaks AGI over a socket is
testkit.agi's (the benchmarks use it too), re-exported here for the tests that import it from here."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from agi.channel import AgiHangup, Recorded
from agi.protocol import AgiEnv, parse_env
from testkit.agi import AgiClient, asterisk_parse_args

__all__ = ["AgiClient", "FakeChannel", "Recorder", "asterisk_parse_args", "env"]


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

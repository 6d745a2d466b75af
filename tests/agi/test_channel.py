"""agi/channel.py: how many variables go into one ARRAY command."""

from __future__ import annotations

import random
from itertools import pairwise

from agi.channel import Recorded, _batches, array_assignment
from agi.protocol import MAX_COMMAND, command


def test_batches_fit_the_line_buffer_and_keep_every_value_in_order() -> None:
    rnd = random.Random(7)
    alphabet = "abc,xyz 0123 菏泽市山东省\t"
    for _ in range(100):
        values = {f"__HL_V{i}": "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 900)))
                  for i in range(rnd.randint(1, 25))}
        batches = _batches(values)
        merged = {k: v for b in batches for k, v in b.items()}
        assert list(merged.items()) == list(values.items())
        for b in batches:
            assert len(command("SET VARIABLE", *array_assignment(b))) <= MAX_COMMAND - 64 or len(b) == 1
        # greedy: a batch could not have taken the next batch's first value
        for b, nxt in pairwise(batches):
            first = next(iter(nxt.items()))
            grown = {**b, first[0]: first[1]}
            assert len(command("SET VARIABLE", *array_assignment(grown))) > MAX_COMMAND - 64


async def _record_against(reply: bytes) -> tuple[Recorded, bytes, bool]:
    """AgiChannel.record over a real socket to a peer that answers ``reply`` (Asterisk's words)."""
    import asyncio

    from agi.channel import AgiChannel
    from agi.protocol import Splitter
    from tests.agi.fakes import env

    got: list[bytes] = []

    async def asterisk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await reader.readline())
        writer.write(reply)
        await writer.drain()

    server = await asyncio.start_server(asterisk, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    ch = AgiChannel(env("closed"), reader, writer, Splitter(), read_timeout=2)
    try:
        return await ch.record("/var/spool/asterisk/monitor/message-x-in", 120_000, 5), got[0], ch.hung_up
    finally:
        writer.close()
        server.close()


async def test_record_file_asks_for_a_beep_and_silence_and_reads_how_it_ended() -> None:
    said, line, hung_up = await _record_against(b"200 result=35 (dtmf) endpos=96000\n")
    assert line == b'RECORD FILE "/var/spool/asterisk/monitor/message-x-in" "wav" "#" "120000" "0" "BEEP" "s=5"\n'
    assert (said.ended_by, said.seconds, hung_up) == ("dtmf", 12.0, False)
    said, _, hung_up = await _record_against(b"200 result=0 (timeout) endpos=8000\n")
    assert (said.ended_by, said.seconds, hung_up) == ("timeout", 1.0, False)
    # hanging up is how most callers end a message: what they said is reported, not raised
    said, _, hung_up = await _record_against(b"200 result=-1 (hangup) endpos=40000\n")
    assert (said.ended_by, said.samples, hung_up) == ("hangup", 40000, True)
    said, _, _ = await _record_against(b"200 result=-1 (writefile)\n")
    assert (said.ended_by, said.samples) == ("error", 0)

"""The FastAGI server over real sockets on 127.0.0.1:0: routing, timeouts, EOF, the cap, stop."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from agi.channel import Channel
from agi.server import FastAgiServer
from testkit import connect_burst
from tests.agi.fakes import AgiClient


async def quick(ch: Channel) -> None:
    number = await ch.get_variable("HL_SEATS")
    await ch.set_variables({"__HL_LOCATION": "山东省菏泽市", "HL_SEEN": number, "__HL_NAME": '张"三\n'})


@pytest.fixture
async def server():
    slow_started = asyncio.Event()
    running = []

    async def slow(ch: Channel) -> None:
        running.append(ch)
        if len(running) == 3:
            slow_started.set()
        await asyncio.sleep(30)

    async def boom(ch: Channel) -> None:
        raise RuntimeError("bug")

    async def survey(ch: Channel) -> None:
        key = await ch.get_data("hotline/survey", 6000, 1)
        await ch.set_variables({"HL_SAT": key})
        await ch.play("hotline/thanks")

    async def big(ch: Channel) -> None:
        await ch.set_variables({f"__HL_V{i}": f"{i}," + "菏泽" * 80 for i in range(8)})

    srv = FastAgiServer({"lookup": quick, "slow": slow, "boom": boom, "survey": survey, "big": big},
                        "127.0.0.1", 0,
                        max_sessions=3, header_timeout=0.5, read_timeout=0.5)
    srv.slow_started = slow_started
    await srv.start()
    yield srv
    await srv.stop(grace=0.2)


async def test_a_session_is_routed_and_variables_arrive_intact(server) -> None:
    client = AgiClient("127.0.0.1", server.port, variables={"HL_SEATS": "2"})
    await client.run()
    assert client.variables["__HL_LOCATION"] == "山东省菏泽市"
    assert client.variables["HL_SEEN"] == "2"
    assert client.variables["__HL_NAME"] == '张"三 '  # the newline could have ended the command
    assert client.pipelined == 0  # one command at a time, as res_agi needs
    assert server.served == 1


async def test_half_a_header_or_nothing_does_not_delay_a_real_call(server) -> None:
    _, half = await asyncio.open_connection("127.0.0.1", server.port)
    half.write(b"agi_network: yes\nagi_request: agi://127.0.0.1/lookup\nagi_calle")
    await half.drain()
    _, silent = await asyncio.open_connection("127.0.0.1", server.port)
    t0 = time.perf_counter()
    client = AgiClient("127.0.0.1", server.port, variables={"HL_SEATS": "1"})
    await client.run()
    assert client.variables["__HL_LOCATION"] == "山东省菏泽市"
    assert time.perf_counter() - t0 < 0.4  # well before the 0.5 s header timeout frees the others
    await asyncio.sleep(0.7)
    assert server.active == 0  # both dropped by the header timeout
    half.close()
    silent.close()


async def test_eof_mid_header_and_garbage_are_dropped_quietly(server, caplog) -> None:
    caplog.set_level(logging.INFO, "agi")
    for payload in (b"agi_network: yes\nagi_req", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b""):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(payload)
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 2) == b""  # closed without a word
        writer.close()
    await asyncio.sleep(0.05)
    assert server.active == 0 and server.served == 0 and server.refused == 3
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_unknown_script_is_closed(server) -> None:
    client = AgiClient("127.0.0.1", server.port, script="nope")
    assert await client.run() == []


async def test_hangup_mid_flow_ends_the_session_without_error_noise(server, caplog) -> None:
    caplog.set_level(logging.INFO, "agi")
    client = AgiClient("127.0.0.1", server.port, script="survey", hangup_at=1)
    commands = await client.run()
    assert [c[:2] for c in commands] == [["GET", "DATA"]]  # nothing written after the hang-up
    assert "HL_SAT" not in client.variables
    assert any("outcome=hangup" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_silent_asterisk_times_out_and_a_bug_is_logged_not_raised(server, caplog) -> None:
    caplog.set_level(logging.INFO, "agi")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(AgiClient("127.0.0.1", server.port).header())
    await writer.drain()
    assert (await asyncio.wait_for(reader.readline(), 2)).startswith(b"GET FULL VARIABLE")
    assert await asyncio.wait_for(reader.read(), 2) == b""  # gave up after the read timeout
    writer.close()
    await AgiClient("127.0.0.1", server.port, script="boom").run()
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("timeout") for m in messages)
    assert any(m.startswith("flow_failed") for m in messages)


async def test_sessions_over_the_cap_are_closed_at_once_and_stop_cuts_the_rest(server) -> None:
    slow = [asyncio.create_task(AgiClient("127.0.0.1", server.port, script="slow").run()) for _ in range(3)]
    await asyncio.wait_for(server.slow_started.wait(), 5)  # all three hold a session
    t0 = time.perf_counter()
    assert await AgiClient("127.0.0.1", server.port).run() == []  # refused: the call goes on in the dialplan
    assert time.perf_counter() - t0 < 0.3 and server.refused == 1
    await server.stop(grace=0.1)
    assert server.active == 0
    await asyncio.wait_for(asyncio.gather(*slow), 2)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)


async def test_many_variables_go_in_one_command_and_odd_values_alone(server) -> None:
    client = AgiClient("127.0.0.1", server.port, variables={"HL_SEATS": "3"})
    await client.run()
    sets = [c for c in client.commands if c[:2] == ["SET", "VARIABLE"]]
    assert [c[2] for c in sets] == ["ARRAY(__HL_LOCATION,HL_SEEN)", "__HL_NAME"]  # 2 round trips, not 3
    assert client.variables["HL_SEEN"] == "3"


async def test_long_values_are_split_over_commands_that_fit_and_all_arrive_whole(server) -> None:
    client = AgiClient("127.0.0.1", server.port, script="big")
    await client.run()
    assert all(len(" ".join(c).encode()) < 2048 for c in client.commands)
    assert 1 < len(client.commands) < 8
    assert client.variables == {f"__HL_V{i}": f"{i}," + "菏泽" * 80 for i in range(8)}



async def test_a_burst_of_connections_waits_in_the_listen_queue_not_for_a_syn_resent() -> None:
    """300 calls connect while the loop is busy elsewhere: each is taken into the listen queue at once.
    With asyncio's default queue of 100 the kernel dropped the rest's SYNs, and Asterisk's connects
    waited a second to send them again (the lookups' p99 in bench/screen_pop.py at 200 calls)."""
    srv = FastAgiServer({"lookup": quick}, "127.0.0.1", 0, max_sessions=400)
    await srv.start()
    try:
        took = await connect_burst(srv.port, 300)
        assert len(took) == 300 and max(took) < 0.9, sorted(took)[-5:]
    finally:
        await srv.stop(grace=0.2)

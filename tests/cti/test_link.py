"""The AMI link against a fake Asterisk Manager on 127.0.0.1:0 (real sockets, AMI bytes)."""

from __future__ import annotations

import asyncio
import time

import pytest

from cti import events as ev
from cti.domain import DomainEvent, LinkStatus
from cti.link import AmiLink, AmiLoginError, AmiNotConnected, AmiTimeout
from tests.cti.fake_ami import FakeAmi

pytestmark = pytest.mark.timeout(30)


class Probe:
    """Stands in for the state (``handle``), the bus (``publish``) and the service's hooks."""

    def __init__(self) -> None:
        self.events: list[ev.AmiEvent] = []
        self.published: list[DomainEvent] = []
        self.status: list[tuple[bool, str]] = []
        self.logins = 0
        self.resync: list[list[ev.AmiEvent]] = []
        self.link: AmiLink | None = None

    def handle(self, e: ev.AmiEvent) -> list[DomainEvent]:
        self.events.append(e)
        return []

    def publish(self, e: DomainEvent) -> None:
        self.published.append(e)

    def on_status(self, up: bool, detail: str) -> None:
        self.status.append((up, detail))

    async def on_login(self) -> None:
        self.logins += 1
        assert self.link is not None
        self.resync.append(
            await self.link.query({"Action": "QueueStatus"}) + await self.link.query({"Action": "CoreShowChannels"})
        )

    async def wait(self, pred, within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while not pred():
            assert time.monotonic() < deadline, "condition not reached"
            await asyncio.sleep(0.01)


def make_link(fake: FakeAmi, probe: Probe, secret: str = "pw", **kw) -> AmiLink:
    link = AmiLink(
        "127.0.0.1",
        fake.port,
        "hotline",
        secret,
        handle=probe.handle,
        publish=probe.publish,
        on_login=probe.on_login,
        on_status=probe.on_status,
        **kw,
    )
    probe.link = link
    return link


async def test_login_ok_and_resync_hook(fake: FakeAmi) -> None:
    fake.members = [
        {
            "Queue": "hotline",
            "Name": "8001",
            "Location": "PJSIP/8001",
            "Paused": "1",
            "PausedReason": "meal",
            "Status": "1",
            "Membership": "dynamic",
        }
    ]
    fake.entries = [
        {
            "Queue": "hotline",
            "Position": "1",
            "Uniqueid": "9.1",
            "CallerIDNum": "139",
            "CallerIDName": "王五",
            "Wait": "7",
            "Channel": "PJSIP/trunk-9",
        }
    ]
    fake.channels = [{"Channel": "PJSIP/trunk-9", "Uniqueid": "9.1", "Linkedid": "9.1", "Application": "Queue"}]
    p = Probe()
    link = make_link(fake, p)
    await link.start(wait=5)
    try:
        assert link.logged_in and link.version == "9.0.0" and p.logins == 1
        assert [a["Action"] for a in fake.actions[:3]] == ["Login", "QueueStatus", "CoreShowChannels"]
        kinds = [type(e).__name__ for e in p.resync[0]]
        assert kinds == ["QueueMember", "QueueEntry", "ListComplete", "CoreShowChannel", "ListComplete"]
        member, entry = p.resync[0][0], p.resync[0][1]
        assert isinstance(member, ev.QueueMember) and member.paused and member.paused_reason == "meal"
        assert isinstance(entry, ev.QueueEntry) and entry.caller_name == "王五" and entry.wait_s == 7
        await p.wait(lambda: any(isinstance(e, ev.FullyBooted) for e in p.events))
        assert p.status[0][0] is True
        # QueueAdd resolves (panoramisk would wait forever for a list without as_list=False)
        reply = await link.send({"Action": "QueueAdd", "Queue": "hotline", "Interface": "PJSIP/8001"})
        assert reply.success and reply["Message"] == "Added interface to queue"
    finally:
        await link.close()


async def test_login_refused_fails_clearly_and_does_not_retry(fake: FakeAmi) -> None:
    p = Probe()
    link = make_link(fake, p, secret="wrong")
    t = time.monotonic()
    with pytest.raises(AmiLoginError, match="refused"):
        await link.start(wait=5)
    assert time.monotonic() - t < 2
    await asyncio.sleep(0.5)
    assert fake.connections == 1 and not link.logged_in
    assert p.status and p.status[-1][0] is False
    with pytest.raises(AmiNotConnected):
        await link.send({"Action": "Ping"})
    await link.close()


async def test_chinese_name_split_mid_character_across_two_writes(fake: FakeAmi) -> None:
    p = Probe()
    link = make_link(fake, p)
    await link.start(wait=5)
    try:
        frame = FakeAmi.frame(
            Event="Newchannel",
            Privilege="call,all",
            Timestamp="1795344882.500000",
            Channel="PJSIP/trunk-1",
            CallerIDNum="13800001",
            CallerIDName="张三",
            Uniqueid="1.1",
            Linkedid="1.1",
            Context="from-trunk",
        )
        cut = frame.index("张".encode()) + 2  # inside 张 (3 bytes)
        await fake.push(frame[:cut])
        await asyncio.sleep(0.05)  # two TCP reads
        await fake.push(frame[cut:])
        await p.wait(lambda: any(isinstance(e, ev.Newchannel) for e in p.events))
        [nc] = [e for e in p.events if isinstance(e, ev.Newchannel)]
        assert nc.caller_name == "张三" and nc.ts == 1795344882.5
        assert link.stats()["malformed"] == 0
    finally:
        await link.close()


async def test_silent_server_is_detected_and_the_link_reconnects(fake: FakeAmi) -> None:
    p = Probe()
    link = make_link(fake, p, ping_interval=0.2, ping_timeout=0.3, backoff=(0.05, 0.2))
    await link.start(wait=5)
    try:
        fake.silent = True  # TCP stays open, nothing comes back: SIGSTOP
        t = time.monotonic()
        await p.wait(lambda: any(not up for up, _ in p.status), within=5)
        detected = time.monotonic() - t
        assert detected <= 0.2 + 0.3 + 0.3  # within ping_interval + ping_timeout (+ slack)
        fake.silent = False
        await p.wait(lambda: len(p.resync) == 2, within=5)  # resynchronised after the reconnect
        assert fake.connections == 2 and link.logged_in and link.disconnects == 1 and p.logins == 2
    finally:
        await link.close()


def test_default_watchdog_notices_a_dead_link_within_10_s() -> None:
    link = AmiLink("127.0.0.1", 1, "u", "s", handle=lambda e: [], publish=lambda e: None)
    assert link.ping_interval + link.ping_timeout <= 10


async def test_reconnect_with_backoff_after_the_server_drops(fake: FakeAmi) -> None:
    p = Probe()
    link = make_link(fake, p, backoff=(0.05, 0.4))
    await link.start(wait=5)
    try:
        port = fake.port
        await fake.stop()  # Asterisk gone: connection refused for a while
        await p.wait(lambda: not link.logged_in)
        await asyncio.sleep(0.6)
        assert p.logins == 1
        fake2 = FakeAmi()
        fake2._server = await asyncio.start_server(fake2._client, "127.0.0.1", port)
        fake2.port = port
        try:
            await p.wait(lambda: p.logins == 2, within=5)
            assert link.logged_in and fake2.connections == 1
            assert [s[0] for s in p.status] == [True, False, True]
        finally:
            await fake2.stop()
    finally:
        await link.close()


async def test_a_booting_asterisk_is_not_resynchronised_before_it_is_fully_booted(fake: FakeAmi) -> None:
    # Asterisk 22 accepts a Login ~0.1 s before app_queue loads; a resync then would find no queue
    fake.booted = False
    fake.members = [{"Queue": "hotline", "Name": "8001", "Location": "PJSIP/8001", "Status": "1"}]
    p = Probe()
    link = make_link(fake, p)
    starting = asyncio.create_task(link.start(wait=5))
    await p.wait(lambda: any(a["Action"] == "Login" for a in fake.actions))
    await asyncio.sleep(0.3)
    assert not starting.done() and not link.logged_in and p.logins == 0 and p.status == []
    await fake.boot()
    await starting
    assert link.logged_in and p.logins == 1 and p.status[0][0] is True
    assert [type(e).__name__ for e in p.resync[0]][:1] == ["QueueMember"]
    await link.close()


async def test_a_link_that_never_hears_fully_booted_gives_up_and_retries(fake: FakeAmi) -> None:
    fake.booted = False
    p = Probe()
    link = make_link(fake, p, boot_timeout=0.3, backoff=(0.05, 0.1))
    with pytest.raises(AmiNotConnected):
        await link.start(wait=1)
    assert fake.connections >= 2 and p.logins == 0  # reconnected, never pretended to be up
    await link.close()


async def test_a_failed_resync_drops_the_link_and_resynchronises_on_the_next_login(fake: FakeAmi) -> None:
    p = Probe()
    failures = [RuntimeError("QueueStatus: no answer")]

    async def on_login() -> None:
        if failures:
            raise failures.pop()
        await Probe.on_login(p)

    link = make_link(fake, p, backoff=(0.05, 0.1))
    link.on_login = on_login
    await link.start(wait=5)
    try:
        assert link.logged_in and p.logins == 1 and fake.connections == 2
        assert [s[0] for s in p.status] == [True, False, True]
    finally:
        await link.close()


async def test_action_timeout_and_shutdown_event(fake: FakeAmi) -> None:
    p = Probe()
    link = make_link(fake, p, action_timeout=0.3, backoff=(0.05, 0.2))
    await link.start(wait=5)
    try:
        fake.ignore.add("Redirect")
        with pytest.raises(AmiTimeout, match="Redirect"):
            await link.send({"Action": "Redirect", "Channel": "x", "Exten": "1", "Context": "c", "Priority": "1"})
        assert all(a.future.done() for a in link._protocol.responses.values())
        await fake.push(FakeAmi.frame(Event="Shutdown", Privilege="system,all", Shutdown="Cleanly", Restart="True"))
        await p.wait(lambda: any(isinstance(e, ev.Shutdown) for e in p.events))
        await p.wait(lambda: p.logins == 2)  # Asterisk said goodbye; we came back
    finally:
        await link.close()


async def test_unknown_and_malformed_frames_are_counted(fake: FakeAmi) -> None:
    p = Probe()
    link = make_link(fake, p)
    await link.start(wait=5)
    try:
        await fake.push(b"garbage line\r\n\r\n" + FakeAmi.frame(Event="BrandNewThing", X="1"))
        await p.wait(lambda: any(isinstance(e, ev.UnknownEvent) for e in p.events))
        s = link.stats()
        assert s["malformed"] == 1 and s["unknown_events"] == 1 and link.logged_in
    finally:
        await link.close()


async def test_the_link_publishes_what_the_state_makes_of_each_event_and_survives_a_failing_one(
    fake: FakeAmi,
) -> None:
    p = Probe()

    def handle(e: ev.AmiEvent) -> list[DomainEvent]:
        p.events.append(e)
        if isinstance(e, ev.Hangup) and e.uniqueid == "bad":
            raise RuntimeError("a state bug")
        if isinstance(e, ev.Newchannel):  # two domain events for one AMI event, in order
            return [LinkStatus(at=e.ts, up=True, detail=e.uniqueid), LinkStatus(at=e.ts, up=False, detail=e.uniqueid)]
        return []

    link = make_link(fake, p)
    link.handle = handle
    await link.start(wait=5)
    try:
        await fake.push(
            FakeAmi.frame(Event="Newchannel", Uniqueid="1.1")
            + FakeAmi.frame(Event="Hangup", Uniqueid="bad")
            + FakeAmi.frame(Event="Newchannel", Uniqueid="2.1")
        )
        await p.wait(lambda: len(p.published) == 4)
        assert [(e.up, e.detail) for e in p.published] == [(True, "1.1"), (False, "1.1"), (True, "2.1"), (False, "2.1")]
        assert link.stats()["event_errors"] == 1 and link.logged_in  # counted, and the link lives on
    finally:
        await link.close()

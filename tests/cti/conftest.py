"""Fixtures for the CTI tests: AMI transcripts as raw wire bytes.

The spike's logs (``tests/fixtures/ami/spike/*.jsonl``, :data:`FLOWS` and :data:`THREE_PARTY`)
are AMI events of real Asterisk 22 runs as panoramisk parsed them. :func:`to_wire` renders them
back into AMI bytes (``Key: Value\\r\\n``, a blank line between frames, repeated ``ChanVariable``
headers as repeated lines) so the byte-level parser is what the tests exercise. The spike ran
without ``Timestamp`` headers in its log, so the receive time (``_wall``) stands in for
Asterisk's ``Timestamp``. The wire helpers are testkit.ami's (the AMI benchmark shares them);
they are re-exported here for the tests that use them through this module or the ``wire`` fixture.

Scenarios the spike did not record (ring-no-answer then reassignment at 15 s, abandon, blind
transfer, ConfBridge) are built by :class:`Script` from the recorded events as templates: same
headers, channel snapshots and variables, with the fields those events add (per the Asterisk 22
AMI event documentation) and chosen times. Raw transcripts recorded by the project's own AMI
recorder (``tests/fixtures/ami/*.ami``) are used as well when they exist.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator

import pytest

from testkit.ami import FIXTURES, FLOWS, GREETING, THREE_PARTY, chunks, frame_bytes, load_jsonl, to_wire
from tests.cti.fake_ami import FakeAmi

__all__ = ["FIXTURES", "FLOWS", "GREETING", "THREE_PARTY", "Script", "chunks", "frame_bytes", "load_jsonl", "to_wire"]


class Script:
    """Builds a call's AMI events from the recorded ones (as templates) at chosen times."""

    def __init__(self, t0: float = 1795344882.0) -> None:
        flows = load_jsonl(FLOWS)
        self.tpl = {}
        for d in flows:
            self.tpl.setdefault(d["Event"], d)
        self.t0 = t0
        self.events: list[dict] = []

    def _mk(self, name: str, t: float, base: str | None = None, **fields: object) -> dict:
        d = copy.deepcopy(self.tpl[base or name])
        d["Event"] = name
        d["_wall"] = self.t0 + t
        for k, v in fields.items():
            if v is None:
                d.pop(k, None)
            else:
                d[k] = v
        self.events.append(d)
        return d

    # citizen channel snapshot; seat leg snapshot (Dest*)
    @staticmethod
    def citizen(uid: str, num: str = "13800001", name: str = "Citizen 1") -> dict:
        return {
            "Uniqueid": uid,
            "Linkedid": uid,
            "CallerIDNum": num,
            "CallerIDName": name,
            "Channel": f"PJSIP/caller-trunk-{uid}",
        }

    @staticmethod
    def seat_leg(seat: str, uid: str) -> dict:
        return {
            "DestChannel": f"PJSIP/{seat}-{uid}",
            "DestUniqueid": uid,
            "Interface": f"PJSIP/{seat}",
            "MemberName": seat,
        }

    def member(
        self,
        name: str,
        t: float,
        seat: str,
        queue: str = "hotline",
        paused: str = "0",
        reason: str = "",
        status: str = "1",
    ) -> dict:
        return self._mk(
            name,
            t,
            base="QueueMemberAdded",
            Queue=queue,
            MemberName=seat,
            Interface=f"PJSIP/{seat}",
            StateInterface=f"PJSIP/{seat}",
            Paused=paused,
            PausedReason=reason,
            Status=status,
        )

    def join(self, t: float, uid: str, queue: str = "hotline", **c: str) -> dict:
        self._mk("Newchannel", t - 0.03, **{**self.citizen(uid, **c)})
        return self._mk("QueueCallerJoin", t, Queue=queue, **self.citizen(uid, **c))

    def called(self, t: float, uid: str, seat: str, leg: str, queue: str = "hotline") -> dict:
        self._mk(
            "Newchannel",
            t - 0.002,
            Channel=f"PJSIP/{seat}-{leg}",
            Uniqueid=leg,
            Linkedid=uid,
            CallerIDNum=seat,
            CallerIDName=f"Seat {seat}",
            Context="from-agents",
        )
        return self._mk("AgentCalled", t, Queue=queue, **self.citizen(uid), **self.seat_leg(seat, leg))

    def ring_no_answer(self, t: float, uid: str, seat: str, leg: str, ring_ms: int) -> dict:
        self._mk(
            "AgentRingNoAnswer",
            t,
            base="AgentCalled",
            RingTime=str(ring_ms),
            **self.citizen(uid),
            **self.seat_leg(seat, leg),
        )
        return self.hangup(t + 0.001, leg, f"PJSIP/{seat}-{leg}", linked=uid)

    def connect(self, t: float, uid: str, seat: str, leg: str, hold_s: int, queue: str = "hotline") -> dict:
        self._mk("QueueCallerLeave", t - 0.001, Queue=queue, **self.citizen(uid))
        return self._mk(
            "AgentConnect",
            t,
            Queue=queue,
            HoldTime=str(hold_s),
            RingTime="1",
            **self.citizen(uid),
            **self.seat_leg(seat, leg),
        )

    def complete(self, t: float, uid: str, seat: str, leg: str, talk_s: int, reason: str = "caller") -> dict:
        return self._mk(
            "AgentComplete",
            t,
            TalkTime=str(talk_s),
            Reason=reason,
            **self.citizen(uid),
            **self.seat_leg(seat, leg),
        )

    def abandon(self, t: float, uid: str, hold_s: int, queue: str = "hotline") -> dict:
        self._mk(
            "QueueCallerAbandon",
            t,
            base="QueueCallerLeave",
            Queue=queue,
            OriginalPosition="1",
            HoldTime=str(hold_s),
            Count=None,
            **self.citizen(uid),
        )
        return self._mk("QueueCallerLeave", t + 0.0005, Queue=queue, **self.citizen(uid))

    def hold(self, t: float, uid: str, channel: str, linked: str, held: bool = True) -> dict:
        """``Hold`` / ``Unhold`` (Asterisk 22: the channel snapshot, plus ``MusicClass`` on Hold)."""
        d = self._mk("Hold" if held else "Unhold", t, base="Newchannel", Uniqueid=uid, Linkedid=linked,
                     Channel=channel, ChannelState="6", ChannelStateDesc="Up")
        if held:
            d["MusicClass"] = "default"
        return d

    def hangup(self, t: float, uid: str, channel: str | None = None, linked: str | None = None) -> dict:
        return self._mk(
            "Hangup", t, Uniqueid=uid, Linkedid=linked or uid, Channel=channel or f"PJSIP/caller-trunk-{uid}"
        )

    def varset(self, t: float, uid: str, var: str, value: str) -> dict:
        return self._mk(
            "VarSet",
            t,
            Uniqueid=uid,
            Linkedid=uid,
            Variable=var,
            Value=value,
            Channel=f"PJSIP/caller-trunk-{uid}",
        )

    def blind_transfer(self, t: float, uid: str, seat: str, leg: str, exten: str, context: str) -> dict:
        d = {
            "Event": "BlindTransfer",
            "Privilege": "call,all",
            "Result": "Success",
            "TransfererChannel": f"PJSIP/{seat}-{leg}",
            "TransfererUniqueid": leg,
            "TransfereeChannel": f"PJSIP/caller-trunk-{uid}",
            "TransfereeUniqueid": uid,
            "IsExternal": "Yes",
            "Context": context,
            "Extension": exten,
            "_wall": self.t0 + t,
        }
        self.events.append(d)
        return d

    def conf_join(self, t: float, conf: str, uid: str, channel: str, linked: str, marked: bool) -> dict:
        return self._mk(
            "ConfbridgeJoin",
            t,
            base="Newchannel",
            Conference=conf,
            BridgeUniqueid="cb-1",
            Uniqueid=uid,
            Linkedid=linked,
            Channel=channel,
            Admin="No",
            Marked="Yes" if marked else "No",
            Muted="No",
        )

    def conf_leave(self, t: float, conf: str, uid: str, channel: str, linked: str) -> dict:
        return self._mk(
            "ConfbridgeLeave",
            t,
            base="Newchannel",
            Conference=conf,
            BridgeUniqueid="cb-1",
            Uniqueid=uid,
            Linkedid=linked,
            Channel=channel,
            Admin="No",
        )

    def wire(self, greeting: bool = True) -> bytes:
        return to_wire(sorted(self.events, key=lambda d: d["_wall"]), greeting=greeting)


@pytest.fixture(scope="session")
def flows_events() -> list[dict]:
    return load_jsonl(FLOWS)


@pytest.fixture(scope="session")
def three_party_events() -> list[dict]:
    return load_jsonl(THREE_PARTY)


@pytest.fixture(scope="session")
def flows_wire(flows_events: list[dict]) -> bytes:
    return to_wire(flows_events)


@pytest.fixture
def script() -> Script:
    return Script()


class _Helpers:
    """The helpers above, as a fixture: test modules need not import conftest by name
    (which breaks under ``--import-mode=importlib`` or with a same-named conftest elsewhere)."""

    Script = Script
    to_wire = staticmethod(to_wire)
    frame_bytes = staticmethod(frame_bytes)
    chunks = staticmethod(chunks)
    load_jsonl = staticmethod(load_jsonl)
    FLOWS = FLOWS
    THREE_PARTY = THREE_PARTY
    FIXTURES = FIXTURES


@pytest.fixture(scope="session")
def wire() -> type[_Helpers]:
    return _Helpers


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    """A fake AMI server on a free port, for the test alone."""
    server = await FakeAmi().start()
    yield server
    await server.stop()

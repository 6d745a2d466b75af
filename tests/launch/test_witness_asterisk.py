"""Calls that start and end while the CTI bridge is down still reach the call log, rebuilt from
Asterisk's own records (CEL), with the right outcome and wait, on a real Asterisk."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hotline.identity import Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import Bearer, use
from tests.conftest import speech

ANSWERED, ABANDONED = "13953018801", "13953018802"


def _app(live: Settings) -> TestClient:
    return use(TestClient(web_app(live)))


def _logged_in(client: TestClient) -> None:
    cti = client.app.state.cti
    deadline = time.monotonic() + 15
    while not cti.link.logged_in:
        assert time.monotonic() < deadline, "the bridge did not log in to AMI"
        time.sleep(0.1)


def _poll(fn, timeout: float = 40):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError("condition not met in time")


@pytest.fixture
def live(pbx, settings: Settings, tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var", ami_secret=settings.resolved_ami_secret(), services=["cti"],
                    witness_dir=settings.asterisk_events_dir, witness_grace_s=2, witness_check_s=1)


@pytest.mark.asterisk
def test_calls_made_while_the_bridge_is_down_appear_with_their_outcome_and_wait(
        live: Settings, pbx, phones, settings: Settings, audio_dir: Path) -> None:
    seat = settings.seats[0]
    phones.seat(seat, settings.seat_password(seat), speech(audio_dir, ("say", "agent_cmn"), ("sil", 30)),
                ring_ms=2000, talk_ms=6000)
    with _app(live) as client:  # the operator signs in; then the bridge goes away
        _logged_in(client)
        client.portal.call(lambda: client.app.state.cti.actions.sign_in(seat, operator="op1024", job_number="1024"))
    assert f"PJSIP/{seat}" in " ".join(pbx.members(settings.queue_name))  # Asterisk keeps the seat

    # with no bridge at all: one call answered after a 2 s ring, one given up after about 4 s in the
    # queue while the only seat talks
    first = phones.callers([ANSWERED], settings.hotline_number, speech(audio_dir, ("sil", 20)), hangup_ms=30_000)
    time.sleep(1.0)
    second = phones.callers([ABANDONED], settings.hotline_number, speech(audio_dir, ("sil", 10)), hangup_ms=4000)
    assert second.wait(40) == 0, second.errors()[-400:]
    assert first.wait(60) == 0, first.errors()[-400:]

    with _app(live) as client:  # the bridge is back: what it missed is rebuilt from Asterisk's records
        _logged_in(client)
        lead = dict(Bearer("lead", Role.LEAD))

        def mine() -> dict[str, dict]:
            rows = client.get("/api/calls", headers=lead).json()
            found = {r["caller"]: r for r in rows if r["caller"] in (ANSWERED, ABANDONED)}
            return found if len(found) == 2 else {}

        calls = _poll(mine)
        answered, abandoned = calls[ANSWERED], calls[ABANDONED]
        assert answered["reconstructed"] and abandoned["reconstructed"]
        assert answered["seat"] == seat and answered["queue"] == settings.queue_name
        assert answered["answered"] and not answered["abandoned"] and answered["within_15s"] is True
        assert 1.5 <= answered["wait_s"] <= 4.0  # the seat's 2 s ring, judged as the bridge judges it
        assert 4 <= answered["talk_s"] <= 9 and seat in answered["seats_rung"]
        assert answered["recordings"] and answered["recording_id"].endswith(answered["id"])
        assert abandoned["abandoned"] and not abandoned["answered"] and abandoned["seat"] == ""
        assert 2.5 <= abandoned["wait_s"] <= 4.5 and abandoned["within_15s"] is False
        # both witnesses agree now, and the health page says so
        witness = _poll(lambda: next((c for c in client.get("/api/health", headers=lead).json()["components"]
                                      if c["name"] == "witness" and c["state"] == "ok"), None), 20)
        assert "一致" in witness["detail"] and "补录" in witness["detail"]

"""Two `hotline cti` on one real Asterisk and one PostgreSQL: one consumes AMI, the other stands by;
the active one is killed (-9) while SIPp calls ring, talk and wait; the standby takes over within
5 s, resyncs from Asterisk, and afterwards every call SIPp placed is in the call log exactly once
(the bridge's own report, or rebuilt from Asterisk's records for the calls no bridge saw end)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from cti.lease import pg_conninfo
from hotline.settings import Settings
from tests.conftest import speech
from tests.support.postgres import postgres_server  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(240)]
ROOT = Path(__file__).resolve().parents[2]
ACTIVE, RESYNCED = "CTI bridge active (term", "CTI resync:"


class Bridge:
    """One `hotline cti` process (its own var folder: another machine), its log on disk."""

    def __init__(self, name: str, env: dict[str, str], folder: Path) -> None:
        self.name = name
        self.log = folder / f"{name}.log"
        with open(self.log, "wb") as out:
            self.popen = subprocess.Popen([sys.executable, "-m", "launch.cli", "cti"], cwd=ROOT, env=env,
                                          stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, line: str, timeout: float) -> float:
        """When (monotonic) ``line`` first appeared in the log, looking every 20 ms."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if line in self.text():
                return time.monotonic()
            assert self.popen.poll() is None, f"{self.name} exited:\n{self.text()[-3000:]}"
            time.sleep(0.02)
        raise AssertionError(f"{self.name}: no {line!r} within {timeout} s:\n{self.text()[-3000:]}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def logged(conninfo: str, numbers: list[str]) -> dict[str, int]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute("SELECT caller_number, count(*) FROM call_record WHERE caller_number = ANY(%s) "
                            "AND ended_at IS NOT NULL GROUP BY caller_number", (numbers,)).fetchall()
    return {number: count for number, count in rows}


def test_the_standby_takes_over_within_5_s_of_a_kill_and_every_call_is_logged_once(
        pbx, phones, settings: Settings, audio_dir: Path, tmp_path: Path, postgres_server) -> None:  # noqa: F811
    url = postgres_server.create_database()
    conninfo = pg_conninfo(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env |= {"PYTHONPATH": str(ROOT), "HOTLINE_DATABASE_URL": url, "HOTLINE_ASTERISK_MODE": "chroot",
            "HOTLINE_AMI_HOST": settings.ami_host, "HOTLINE_AMI_PORT": str(settings.ami_port),
            "HOTLINE_AMI_SECRET": settings.resolved_ami_secret(),
            # the session's Asterisk records; a short grace so the calls no bridge saw end are rebuilt soon
            "HOTLINE_WITNESS_DIR": str(settings.asterisk_events_dir), "HOTLINE_WITNESS_GRACE_S": "3",
            "HOTLINE_CTI_WRAPUP_S": "1"}  # the two seats take the next caller at once
    seats = settings.seats[:2]
    for seat in seats:
        phones.seat(seat, settings.seat_password(seat), speech(audio_dir, ("say", "agent_cmn"), ("sil", 30)),
                    ring_ms=1000, talk_ms=4000)
        pbx.sign_in(seat)
    # numbers of this run only: the witness reads a day of the session's records
    prefix = f"139{random.randrange(10_000):04d}"
    numbers = [f"{prefix}{i:04d}" for i in range(8)]

    a = Bridge("a", env | {"HOTLINE_VAR_DIR": str(tmp_path / "a")}, tmp_path)
    b: Bridge | None = None
    try:
        a.wait_for(RESYNCED, 60)  # it won at once (term 1) and its login resynced from Asterisk
        b = Bridge("b", env | {"HOTLINE_VAR_DIR": str(tmp_path / "b")}, tmp_path)
        b.wait_for("held by another node", 60)
        time.sleep(2.0)
        assert ACTIVE not in b.text() and RESYNCED not in b.text()  # standing by: no AMI at all

        callers = phones.callers(numbers, settings.hotline_number, speech(audio_dir, ("sil", 20)), rate=1.0,
                                 concurrency=len(numbers), hangup_ms=20_000)
        time.sleep(5.5)  # two calls talking, others waiting in the queue
        killed = time.monotonic()
        os.kill(a.popen.pid, signal.SIGKILL)
        a.popen.wait(10)
        won = b.wait_for(ACTIVE, 10)
        resynced = b.wait_for(RESYNCED, 10)
        print(f"\nstandby active {won - killed:.3f} s and resynced from Asterisk {resynced - killed:.3f} s "
              "after the active bridge's SIGKILL")
        assert resynced - killed < 5.0
        with psycopg.connect(conninfo) as conn:
            assert conn.execute("SELECT term FROM cti_lease").fetchone() == (2,)

        assert callers.wait(120) == 0, callers.errors()[-600:]
        deadline = time.monotonic() + 40
        while len(logged(conninfo, numbers)) < len(numbers) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(4.0)  # a late second report (bridge or witness) would show now
        counts = logged(conninfo, numbers)
        with psycopg.connect(conninfo) as conn:
            rebuilt = conn.execute("SELECT count(*) FROM call_record WHERE caller_number = ANY(%s) AND reconstructed",
                                   (numbers,)).fetchone()[0]
        print(f"call log: {len(counts)} of {len(numbers)} calls, each {sorted(set(counts.values()))} time(s); "
              f"{rebuilt} rebuilt from Asterisk's records (ended while no bridge watched them), the rest reported "
              "by a bridge")
        assert counts == dict.fromkeys(numbers, 1), b.text()[-3000:]
    finally:
        a.stop()
        if b is not None:
            b.stop()

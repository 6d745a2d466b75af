"""The real-Asterisk harness: one Asterisk 22 per test session, clean state per test.

Tests that place calls take the ``pbx`` fixture (clean Asterisk: no channels, no queue members),
``ami`` (a raw AMI recorder) and ``phones`` (SIPp phones, all stopped at the end of the test).
``HOTLINE_RECORD_AMI=1`` saves each test's raw AMI bytes under tests/fixtures/ami/ for the
unit tests of the pure cores.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotline.asterisk import process
from hotline.asterisk.errors import AsteriskError
from hotline.settings import Settings, get_settings
from hotline.simulate import audio
from hotline.simulate.sipp import SippRunner
from testkit.auth import demo_hashes_once
from testkit.stack import machine_lock  # machine-wide, like the ports
from tests.support.ami import AmiRecorder

FIXTURES = Path(__file__).parent / "fixtures"


# the test client's requests say "Host: testserver": a name this server answers to in tests only
os.environ.setdefault("HOTLINE_ALLOWED_HOSTS", "testserver")


def _reporting(config: pytest.Config) -> bool:
    """The process that reports the run: pytest alone, or pytest-xdist's controller (not a worker)."""
    return not hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if _reporting(session.config):
        from testkit import fuzz

        fuzz.reset()  # the workers add their figures to the run's file


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own, which reads the group into each test's id
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``make test`` runs two pytest-xdist workers (``--dist loadgroup``): the real-Asterisk tests all
    go to one of them, one after another, as in a plain run (they share the machine's Asterisk, its
    ports and its lock: tests.conftest's ``asterisk``, testkit.stack's ``machine_lock``), while the
    other worker takes the rest. They are the longest part of the run (about 16 of 29 minutes)."""
    for item in items:
        if item.get_closest_marker("asterisk") or "asterisk" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("asterisk"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fuzzers' figures (inputs tried, crashes per target), when any ran (testkit.fuzz)."""
    if not _reporting(terminalreporter.config):
        return
    fuzz = sys.modules.get("testkit.fuzz")
    if fuzz is None:
        from testkit import fuzz
    for line in fuzz.summary():
        terminalreporter.write_line(line)


@pytest.fixture(scope="session", autouse=True)
def _demo_hashes_once() -> Iterator[None]:
    """Each app a test starts makes the demo accounts: their argon2 hashes are made once per session
    (testkit.auth.demo_hashes_once), not eight for every app."""
    with demo_hashes_once():
        yield


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@dataclass
class Pbx:
    settings: Settings

    def cli(self, command: str) -> str:
        return process.cli(self.settings, command)

    def members(self, queue: str) -> list[str]:
        return re.findall(r"\((PJSIP/[^)\s]+)\)", self.cli(f"queue show {queue}"))

    def sign_in(self, seat: str, queue: str | None = None, penalty: int = 0) -> None:
        queue = queue or self.settings.queue_name
        out = self.cli(f"queue add member PJSIP/{seat} to {queue} penalty {penalty} as {seat}")
        assert "Added interface" in out, out

    def active_channels(self) -> int:
        match = re.search(r"(\d+) active channel", self.cli("core show channels count"))
        return int(match.group(1)) if match else 0

    def reset(self, timeout: float = 10) -> None:
        """No channels, no members: each test starts from an idle Asterisk."""
        self.cli("channel request hangup all")
        for queue in (self.settings.queue_name, self.settings.specialist_queue):
            for member in self.members(queue):
                self.cli(f"queue remove member {member} from {queue}")
        deadline = time.monotonic() + timeout
        while self.active_channels() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert self.active_channels() == 0, self.cli("core show channels")
        self.cli("queue reset stats")


# One real-Asterisk test session at a time on this machine: they share the SIP/AMI ports and each
# test hangs up every channel. A second session waits here until the first is done.
@pytest.fixture(scope="session")
def asterisk(settings: Settings) -> Iterator[Pbx]:
    if settings.asterisk_mode == "chroot" and os.geteuid() != 0:
        pytest.skip("real-Asterisk tests need root for the chroot (make test runs as root)")
    with machine_lock():
        yield from _asterisk(settings)


def _asterisk(settings: Settings) -> Iterator[Pbx]:
    already = process.status(settings).running
    try:
        process.start(settings)
    except AsteriskError as exc:
        pytest.fail(f"Asterisk did not start: {exc}")
    yield Pbx(settings)
    if not already:
        process.stop(settings)
        _set_aside_test_calls(settings)


def _set_aside_test_calls(settings: Settings) -> None:
    """Asterisk's own records of the test calls (CEL) leave the folder the call-log witness reads:
    a later `make run` on this checkout must not rebuild SIPp's calls into its call log."""
    events = settings.asterisk_events_dir
    if not events.is_dir():
        return
    aside = settings.var_dir / "test-sim" / "cel" / time.strftime("%Y%m%d-%H%M%S")
    for path in [*events.glob("*.json"), *events.glob("*.json.old")]:
        aside.mkdir(parents=True, exist_ok=True)
        os.replace(path, aside / path.name)


@pytest.fixture
def pbx(asterisk: Pbx) -> Iterator[Pbx]:
    asterisk.reset()
    yield asterisk
    asterisk.reset()


@pytest.fixture
async def ami(pbx: Pbx, settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[AmiRecorder]:
    recorder = AmiRecorder(settings.ami_host, settings.ami_port, settings.ami_user,
                           settings.resolved_ami_secret())
    await recorder.connect()
    yield recorder
    if os.environ.get("HOTLINE_RECORD_AMI"):
        recorder.save(FIXTURES / "ami" / f"{request.node.name}.ami")
    await recorder.close()


@pytest.fixture
def phones(settings: Settings, request: pytest.FixtureRequest) -> Iterator[SippRunner]:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:80]
    runner = SippRunner(settings.var_dir / "test-sim" / name, f"{settings.sip_host}:{settings.sip_port}")
    yield runner
    runner.stop_all()


@pytest.fixture(scope="session")
def audio_dir(settings: Settings) -> Path:
    return settings.var_dir / "audio"


def speech(audio_dir: Path, *parts: tuple[str, float | str]) -> Path:
    return audio.timeline(audio_dir, list(parts))


async def local_call(ami: AmiRecorder, settings: Settings, caller: str, *, hold_s: float = 5,
                     delay_s: float = 0, sound: str = "hotline/sim-caller", name: str = "") -> str:
    """A citizen without SIP: a Local channel into the hotline that plays ``sound``. Returns its ActionID."""
    reply = await ami.action({
        "Action": "Originate", "Channel": f"Local/{settings.hotline_number}@from-trunk/n",
        "Context": "hotline-sim", "Exten": "play", "Priority": "1", "CallerID": f"{name} <{caller}>".strip(),
        "Variable": f"SIM_HOLD={hold_s},SIM_DELAY={delay_s},SIM_FILE={sound}", "Async": "true",
        "Timeout": "30000",
    })
    assert reply.get("Response") == "Success", reply
    return str(reply.get("ActionID"))


@pytest.fixture
def spare(settings: Settings, asterisk) -> Iterator[Settings]:
    """A copy of the installed chroot under its own var/, with ports that do not clash."""
    var = settings.var_dir / "test-spare"
    shutil.rmtree(var, ignore_errors=True)
    (var / "asterisk").mkdir(parents=True)
    subprocess.run(["cp", "-a", "--one-file-system", str(settings.asterisk_root), str(var / "asterisk" / "root")],
                   check=True)
    spare = Settings(var_dir=var, sip_port=5070, ami_port=5039, agi_port=4579, rtp_start=21000, rtp_end=21099,
                     ami_secret="", web_port=8765, asterisk_http_port=8098, asterisk_https_port=8099)
    yield spare
    process.stop(spare)
    shutil.rmtree(var, ignore_errors=True)

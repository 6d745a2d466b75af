"""Fixtures for the hotline package's tests."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from hotline.asterisk import process
from hotline.settings import Settings


@pytest.fixture
def spare(settings: Settings, asterisk) -> Iterator[Settings]:
    """A copy of the installed chroot under its own var/, with ports that do not clash."""
    var = settings.var_dir / "test-spare"
    shutil.rmtree(var, ignore_errors=True)
    (var / "asterisk").mkdir(parents=True)
    subprocess.run(["cp", "-a", "--one-file-system", str(settings.asterisk_root), str(var / "asterisk" / "root")],
                   check=True)
    spare = Settings(var_dir=var, sip_port=5070, ami_port=5039, agi_port=4579, rtp_start=21000, rtp_end=21099,
                     ami_secret="", web_port=8765)
    yield spare
    process.stop(spare)
    shutil.rmtree(var, ignore_errors=True)



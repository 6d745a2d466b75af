from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hotline.asterisk.errors import AsteriskError
from hotline.asterisk.install import DEVICE_NODES, apt_mirror, isolate_network, make_device_nodes


def test_mirror_from_deb822_sources_skips_security(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.example.org/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example.org/debian\nSuites: bookworm\n")
    assert apt_mirror(tmp_path) == "http://mirror.example.org/debian"


def test_mirror_from_one_line_sources_with_options(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64 signed-by=/k.gpg] https://mirror.example.net/debian bookworm main\n")
    assert apt_mirror(tmp_path) == "https://mirror.example.net/debian"


def test_no_mirror_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AsteriskError, match="No Debian mirror"):
        apt_mirror(tmp_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_device_nodes_are_created_not_bound(tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "null").write_text("a plain file left by something else")
    make_device_nodes(tmp_path)
    for name, (major, minor) in DEVICE_NODES.items():
        st = (tmp_path / "dev" / name).stat()
        assert stat.S_ISCHR(st.st_mode)
        assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (major, minor)
    assert (tmp_path / "dev" / "null").read_bytes() == b""  # it is the real null device now


def test_chroot_resolves_nothing_off_the_box(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "resolv.conf").symlink_to("/etc/resolv.conf")  # never write through it
    isolate_network(tmp_path)
    assert (tmp_path / "etc" / "resolv.conf").read_text() == "nameserver 127.0.0.1\n"
    assert not (tmp_path / "etc" / "resolv.conf").is_symlink()
    assert (tmp_path / "etc" / "hosts").read_text().startswith("127.0.0.1 localhost")


def test_hand_over_passes_files_taken_away_while_it_walks(tmp_path: Path, monkeypatch) -> None:
    """Asterisk restarts while the CTI node runs on: the recordings catalog moves finished recordings
    out of the spool while start hands the spool to Asterisk's user (found by the fault suite)."""
    import os

    from hotline.asterisk import runuser
    from hotline.settings import Settings

    root = tmp_path / "asterisk" / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(f"asterisk:x:{os.getuid()}:{os.getgid()}::/var/lib/asterisk:/bin/false\n")
    (root / "etc/group").write_text(f"asterisk:x:{os.getgid()}:\n")
    monitor = root / "var/spool/asterisk/monitor"
    monitor.mkdir(parents=True)
    (monitor / "kept.wav").write_bytes(b"RIFF")
    walk = runuser._walk

    def walk_while_the_catalog_takes(top: Path, skip=()):
        for path in walk(top, skip):
            yield path
            if path.name == "monitor":
                yield path / "taken.wav"  # listed, then moved to storage before it was looked at

    monkeypatch.setattr(runuser, "_walk", walk_while_the_catalog_takes)
    ids = runuser.hand_over(Settings(var_dir=tmp_path))
    assert ids == runuser.Ids(os.getuid(), os.getgid())
    assert (monitor / "kept.wav").exists()

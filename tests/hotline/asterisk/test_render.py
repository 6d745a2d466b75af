from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

from hotline.asterisk.render import CHANNEL_VARS, TEMPLATE_DIR, render_config
from hotline.settings import Settings


@pytest.fixture
def local(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path, ami_secret="", hotline_number="12319", seats=["8001", "8002"])


@pytest.fixture
def rendered(local: Settings) -> dict[str, str]:
    return render_config(local)


def sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        if m := re.match(r"\[([^\]]+)\]", line):
            current = m.group(1)
            out.setdefault(current, [])
        elif line and current:
            out[current].append(re.sub(r"\s*=\s*", " = ", line))
    return out


def test_queue_carries_the_15_second_rule(rendered: dict[str, str]) -> None:
    tpl = sections(rendered["queues.conf"])["queue-tpl"]
    assert "timeout = 15" in tpl and "servicelevel = 15" in tpl and "monitor-format = wav" in tpl
    assert "hotline" in sections(rendered["queues.conf"]) and "hotline_expert" in sections(rendered["queues.conf"])


def test_ami_user_has_a_generated_secret_timestamps_and_screen_pop_variables(rendered, tmp_path) -> None:
    manager = rendered["manager.conf"]
    secret = (tmp_path / "secrets" / "ami").read_text().strip()
    assert len(secret) >= 24 and f"secret = {secret}" in manager
    assert "timestampevents = yes" in manager and "bindaddr = 127.0.0.1" in manager
    assert f"channelvars = {','.join(CHANNEL_VARS)}" in manager
    for template in TEMPLATE_DIR.glob("*.conf"):  # no secret is ever committed
        assert secret not in template.read_text()


def test_seats_register_with_a_password_and_rtp_stays_on_loopback(rendered: dict[str, str], local: Settings) -> None:
    pjsip = sections(rendered["pjsip.conf"])
    assert pjsip["8001-auth"][-1] == f"password = {local.seat_password('8001')}"
    assert "password = s8001" not in rendered["pjsip.conf"]
    assert "match = 127.0.0.1" in pjsip["trunk-in"]
    assert "icesupport = no" in rendered["rtp.conf"]
    assert "bind = 127.0.0.1:5060" in pjsip["transport-udp"]


def test_the_hotline_number_routes_through_lookup_queue_and_survey(rendered: dict[str, str]) -> None:
    ext = rendered["extensions.conf"]
    assert "exten => 12319,1," in ext
    front = ext.split("[from-trunk]")[1].split("[hotline-queue]")[0]
    assert "AGI(agi://127.0.0.1:4573/lookup," in front and "Read(" not in front  # no menu at the front door
    assert "Queue(hotline,ct" in ext and "MONITOR_OPTIONS=r(${HL_RECBASE}-in.wav)t(${HL_RECBASE}-out.wav)" in ext
    assert "UserEvent(SurveyResult" in ext


def test_every_rendered_file_parses_as_ini(rendered: dict[str, str]) -> None:
    for name, text in rendered.items():
        if name == "extensions.conf":
            continue  # `same => n` lines repeat keys by design
        parser = configparser.ConfigParser(strict=False, interpolation=None, allow_no_value=True,
                                           inline_comment_prefixes=(";",), comment_prefixes=(";", "#"),
                                           delimiters=("=", "=>"))
        parser.read_string(re.sub(r"^\[([^\]]+)\]\(.*\)$", r"[\1]", text, flags=re.M), source=name)


def test_a_server_of_several_names_itself_so_its_uniqueids_are_its_own(tmp_path: Path) -> None:
    alone = sections(render_config(Settings(var_dir=tmp_path, ami_secret="x"))["asterisk.conf"])["options"]
    assert not [line for line in alone if line.startswith("systemname")]  # one server: Asterisk's own ids
    named = Settings(var_dir=tmp_path, ami_secret="x", asterisk_systemname="ast2")
    assert "systemname = ast2" in sections(render_config(named)["asterisk.conf"])["options"]
    with pytest.raises(ValueError, match="asterisk_systemname"):
        Settings(var_dir=tmp_path, asterisk_systemname="ast-2")  # a dash would split the uniqueid

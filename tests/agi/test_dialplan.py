"""The IVR contexts as rendered: no menu at the front door, every flow behind its AGI script."""

from __future__ import annotations

import re

from hotline.asterisk.render import CHANNEL_VARS, render_config
from hotline.settings import Settings


def contexts(text: str) -> dict[str, str]:
    parts = re.split(r"^\[([^\]]+)\]\s*$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def rendered(tmp_path, **kw) -> dict[str, str]:
    return contexts(render_config(Settings(var_dir=tmp_path, ami_secret="x", **kw))["extensions.conf"])


def test_the_front_door_is_lookup_then_queue_and_the_status_number_is_separate(tmp_path) -> None:
    ext = rendered(tmp_path)
    front = ext["from-trunk"]
    assert "Read(" not in front.split("exten => 123450")[0] and "Background(" not in front  # no menu
    assert "AGI(agi://127.0.0.1:4573/lookup,${HL_SEATS})" in front and "Goto(hotline-queue,s,1)" in front
    assert "exten => 123450,1," in front and "AGI(agi://127.0.0.1:4573/status)" in front
    for name, script in (("hotline-survey", "survey"), ("hotline-closed", "closed,${HL_REASON}"),
                         ("hotline-overflow", "overflow")):
        assert f"AGI(agi://127.0.0.1:4573/{script})" in ext[name], name
    assert "UserEvent(SurveyResult," in ext["hotline-survey"]  # for the CTI, with or without agi/
    assert "Read(HL_SAT" in ext["hotline-survey"] and "Read(HL_CB" in ext["hotline-closed"]  # fallbacks


def test_the_job_number_announcement_is_a_setting(tmp_path) -> None:
    on = rendered(tmp_path)["hotline-queue"]
    off = rendered(tmp_path, agi_announce_job_number=False, agi_host="10.0.0.5", agi_port=4574)["hotline-queue"]
    assert ",agi://127.0.0.1:4573/jobno,,,${HL_QPOS})" in on
    assert "/jobno" not in off and ",,,,${HL_QPOS})" in off


def test_the_screen_pop_variables_reach_ami() -> None:
    for name in ("HL_LOCATION", "HL_TICKETS", "HL_OPEN", "HL_OVERDUE", "HL_RECENT", "HL_REPEAT", "HL_FLAGS",
                 "HL_PRIORITY", "HL_JOBNO"):
        assert name in CHANNEL_VARS

"""`hotline up`: everything in the foreground, Ctrl-C stops it all (on a spare chroot and ports)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from hotline.asterisk import process

pytestmark = [pytest.mark.asterisk, pytest.mark.skipif(os.geteuid() != 0, reason="the chroot needs root")]


def test_up_serves_the_console_and_ctrl_c_stops_everything(spare) -> None:
    env = {**os.environ, "HOTLINE_VAR_DIR": str(spare.var_dir), "HOTLINE_SIP_PORT": str(spare.sip_port),
           "HOTLINE_AMI_PORT": str(spare.ami_port), "HOTLINE_AGI_PORT": str(spare.agi_port),
           "HOTLINE_RTP_START": str(spare.rtp_start), "HOTLINE_RTP_END": str(spare.rtp_end),
           "HOTLINE_WEB_PORT": str(spare.web_port), "HOTLINE_ASTERISK_HTTP_PORT": str(spare.asterisk_http_port)}
    up = subprocess.Popen([sys.executable, "-m", "launch.cli", "up"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{spare.web_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert up.poll() is None, up.stdout.read() if up.stdout else ""
            try:
                if httpx.get(f"{base}/login", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "console did not come up within 60 s"
            time.sleep(0.3)
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/api/health").status_code == 401  # nothing without signing in
            assert client.post("/api/auth/login", json={"username": "lead", "password": "demolead"}).status_code == 200
            health = {c["name"]: c for c in client.get("/api/health").json()["components"]}
        assert health["asterisk"]["state"] == "ok" and health["ami"]["state"] == "ok", health
        assert health["database"]["state"] == "ok"
        assert process.status(spare).running
    finally:
        up.send_signal(signal.SIGINT)
        out, _ = up.communicate(timeout=30)
    assert up.returncode == 0, out
    assert "转写进程已停止" in out and "Asterisk 已停止" in out
    assert out.index("转写进程已停止") < out.index("Asterisk 已停止")  # in order
    after = process.status(spare)
    assert not after.running and after.mounted == []

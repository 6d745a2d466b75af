"""What production mode refuses about the browser phones (launch/preflight.py)."""

from __future__ import annotations

from pathlib import Path

from hotline.settings import Settings
from launch.preflight import browser_phone_problems
from tests.support.tls import self_signed


def test_production_refuses_browser_phones_on_a_plain_websocket_off_this_machine(tmp_path: Path) -> None:
    def refused(**fields: object) -> list[str]:
        return browser_phone_problems(Settings(var_dir=tmp_path, mode="production", **fields))

    assert refused() == []  # everything on this machine
    lan = {"sip_host": "10.0.0.5", "web_host": "10.0.0.5"}
    assert "ws://" in refused(**lan)[0] and "HOTLINE_BROWSER_SIP_URL" in refused(**lan)[0]
    assert refused(**lan, browser_seats=[]) == []  # desk phones only
    assert refused(**lan, browser_sip_url="wss://hotline.example/sip") == []  # an HTTPS proxy carries it
    cert, key = self_signed(tmp_path, "hotline.example", "DNS:hotline.example")
    tls = Settings(var_dir=tmp_path, mode="production", tls_certfile=cert, tls_keyfile=key, **lan)
    assert tls.browser_phone_url == "wss://10.0.0.5:8089/ws" and browser_phone_problems(tls) == []
    assert Settings(var_dir=tmp_path, sip_host="::1").browser_phone_url == "ws://[::1]:8088/ws"

"""The browser phones' part of the rendered Asterisk config: SIP over WebSocket on Asterisk's HTTP
server, WebRTC media on the browser seats only, ICE only when there is one, wss with the console's
certificate under TLS."""

from __future__ import annotations

import asyncio
import secrets
import ssl
import stat
from pathlib import Path

import pytest
import websockets

from hotline.asterisk import process, render
from hotline.asterisk.render import render_config
from hotline.settings import Settings
from tests.hotline.asterisk.test_render import sections
from tests.support.tls import self_signed


def test_browser_seats_get_webrtc_media_over_a_websocket_and_desk_seats_keep_theirs(tmp_path: Path) -> None:
    s = Settings(var_dir=tmp_path, ami_secret="x", seats=["8001", "8002", "8009"], browser_seats=["8009", "9999"],
                 asterisk_http_port=8188)
    assert s.browser_phone_seats == ["8009"] and s.desk_phone_seats == ["8001", "8002"]  # 9999 is no seat
    out = render_config(s)
    pjsip = sections(out["pjsip.conf"])
    assert "protocol = ws" in pjsip["transport-ws"] and "transport-wss" not in pjsip
    assert "webrtc = yes" in pjsip["browser-seat-tpl"] and "allow = opus,ulaw" in pjsip["browser-seat-tpl"]
    assert "[8009](browser-seat-tpl)" in out["pjsip.conf"]
    assert "[8001](seat-tpl)" in out["pjsip.conf"] and "[2001](seat-tpl)" in out["pjsip.conf"]  # desk and dept
    http = sections(out["http.conf"])["general"]
    assert "enabled = yes" in http and "bindaddr = 127.0.0.1" in http and "bindport = 8188" in http
    assert not [line for line in http if line.startswith("tls")]
    assert "icesupport = yes" in out["rtp.conf"]
    assert "load = res_pjsip_transport_websocket.so" in out["modules.conf"]


def test_without_browser_seats_asterisk_serves_no_http_and_gathers_no_ice(tmp_path: Path) -> None:
    out = render_config(Settings(var_dir=tmp_path, ami_secret="x", browser_seats=[]))
    assert sections(out["http.conf"])["general"] == ["enabled = no"]
    assert "transport-ws" not in out["pjsip.conf"]
    assert "[8009](seat-tpl)" in out["pjsip.conf"]
    assert "icesupport = no" in out["rtp.conf"]


def test_under_tls_the_browser_phones_use_wss_with_the_consoles_certificate_kept_private(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "hotline.example", "DNS:hotline.example")
    s = Settings(var_dir=tmp_path / "var", ami_secret="x", tls_certfile=cert, tls_keyfile=key,
                 asterisk_mode="system", asterisk_https_port=8189)
    out = render_config(s)
    http = sections(out["http.conf"])["general"]
    etc = render.directories(s)["etc"]
    assert "tlsenable = yes" in http and "tlsbindaddr = 127.0.0.1:8189" in http
    assert f"tlscertfile = {etc}/http-tls.crt" in http and f"tlsprivatekey = {etc}/http-tls.key" in http
    assert "protocol = wss" in sections(out["pjsip.conf"])["transport-wss"]
    assert out["http-tls.crt"] == cert.read_text() and out["http-tls.key"] == key.read_text()
    target = render.install_config(s)
    assert (target / "http-tls.key").read_text() == key.read_text()
    assert not stat.S_IMODE((target / "http-tls.key").stat().st_mode) & 0o007  # never readable by all


@pytest.mark.asterisk
def test_asterisk_serves_the_browser_phones_sip_over_wss_with_the_consoles_certificate(spare: Settings,
                                                                                    tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "127.0.0.1", "IP:127.0.0.1")
    s = spare.model_copy(update={"tls_certfile": cert, "tls_keyfile": key})
    assert s.browser_phone_url == f"wss://127.0.0.1:{s.asterisk_https_port}/ws"
    process.start(s)
    try:
        status = process.cli(s, "http show status")
        assert f"HTTPS Server Enabled and Bound to 127.0.0.1:{s.asterisk_https_port}" in status, status
        seat = s.browser_phone_seats[0]
        branch = secrets.token_hex(6)
        register = (f"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/WSS hl.invalid;branch=z9hG4bK{branch}"
                    f"\r\nMax-Forwards: 70\r\nTo: <sip:{seat}@127.0.0.1>\r\nFrom: <sip:{seat}@127.0.0.1>;tag=t1\r\n"
                    f"Call-ID: {secrets.token_hex(8)}\r\nCSeq: 1 REGISTER\r\nContact: <sip:hl@hl.invalid;transport=ws>"
                    "\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n")

        async def first_reply(ctx: ssl.SSLContext) -> str:
            async with websockets.connect(s.browser_phone_url, subprotocols=["sip"], ssl=ctx, open_timeout=5) as ws:
                await ws.send(register)
                return str(await asyncio.wait_for(ws.recv(), 5))

        # the seat's REGISTER over wss gets Asterisk's digest challenge: SIP over TLS end to end
        assert asyncio.run(first_reply(ssl.create_default_context(cafile=str(cert)))).startswith("SIP/2.0 401")
        with pytest.raises(ssl.SSLCertVerificationError):  # and it is the console's certificate that is served
            asyncio.run(first_reply(ssl.create_default_context()))
    finally:
        process.stop(s)

"""The console over TLS when a certificate is configured: HTTPS and WSS on the same port, the
session cookie Secure, HSTS on every answer (a self-signed certificate made here by openssl)."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
import websockets

from hotline.settings import Settings
from launch.compose import server_config
from tests.support.browser import free_port
from tests.support.tls import self_signed

pytestmark = pytest.mark.timeout(90)


def certificate(folder: Path) -> tuple[Path, Path]:
    return self_signed(folder, "localhost", "DNS:localhost,IP:127.0.0.1", days=2)


def test_https_and_wss_with_a_secure_cookie(tmp_path: Path) -> None:
    cert, key = certificate(tmp_path)
    port = free_port()
    settings = Settings(var_dir=tmp_path / "var", services=[], web_port=port, tls_certfile=cert, tls_keyfile=key)
    server = uvicorn.Server(server_config(settings, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the app did not start"
            time.sleep(0.05)
        url = f"https://127.0.0.1:{port}"
        with httpx.Client(verify=ssl.create_default_context(cafile=str(cert))) as https:
            r = https.post(f"{url}/api/auth/login", json={"username": "lead", "password": "demolead"})
            assert r.status_code == 200
            cookie = r.headers["set-cookie"].lower()
            assert "secure" in cookie and "httponly" in cookie
            assert r.headers["strict-transport-security"].startswith("max-age=")
            token = r.json()["token"]
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/login", timeout=3)  # no plain HTTP on that port

        async def hello() -> dict:
            tls = ssl.create_default_context(cafile=str(cert))
            async with websockets.connect(f"wss://127.0.0.1:{port}/ws", ssl=tls,
                                          additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                return json.loads(await asyncio.wait_for(ws.recv(), 5))

        assert asyncio.run(hello())["type"] == "hello"
    finally:
        server.should_exit = True
        thread.join(15)

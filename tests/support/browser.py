"""Serving the real app on a free port and driving Debian's chromium (never `playwright install`)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from testkit.chromium import ARGS, CHROMIUM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium fonts-wqy-microhei)")


@contextmanager
def chromium(extra: tuple[str, ...] = ()) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *extra], headless=True)
        try:
            yield browser
        finally:
            browser.close()


def phone_is(page, state: str, timeout: float = 15_000) -> None:
    """Wait for the console's browser phone (phone.js) to reach ``state``; else say what it showed."""
    try:
        page.wait_for_function(f"window.__phone.state === '{state}'", timeout=timeout)
    except Exception as exc:
        raise AssertionError(f"phone {page.inner_text('#phone-state')!r}, not {state}: {exc}") from None


@contextmanager
def serving(app, port: int, ready: Callable[[], bool] = lambda: True, timeout: float = 30,
            what: str = "the app did not start") -> Iterator[asyncio.AbstractEventLoop]:
    """Run ``app`` under uvicorn in a thread with its own loop until ``ready()``; yields that loop
    (where the CTI bridge lives) and stops the server afterwards."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not (server.started and ready()):
            assert time.monotonic() < deadline and thread.is_alive(), what
            time.sleep(0.05)
        yield loop
    finally:
        server.should_exit = True
        thread.join(15)


def screenshot(page, name: str, env: str = "HOTLINE_LEAD_SCREENSHOTS") -> None:
    """Keep a full-page screenshot as ``<dir>/<name>.png`` when ``env`` names a folder (for review)."""
    if shots := os.environ.get(env):
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{shots}/{name}.png", full_page=True)


def sign_in(page, url: str, username: str, password: str, lands_on: str | None = None) -> None:
    """Sign in through the login page as a person would (Enter in the password field); wait for
    ``lands_on`` (a path) when given."""
    page.goto(f"{url}/login" + (f"?next={lands_on}" if lands_on else ""))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.press("input[name=password]", "Enter")
    if lands_on:
        page.wait_for_url(f"{url}{lands_on}", timeout=10_000)

"""A signed-in operator's console websocket, as the page opens it (benchmarks' consoles)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


@asynccontextmanager
async def console_socket(url: str, token: str) -> AsyncIterator[Any]:
    """``/ws`` of the web node at ``url`` (host:port) with the session cookie and the page's Origin,
    its hello already read; no size limit and no pings (a bench's many clients time arrivals)."""
    import websockets

    async with websockets.connect(f"ws://{url}/ws", origin=f"http://{url}",  # type: ignore[arg-type]
                                  additional_headers={"Cookie": f"hotline_token={token}"},
                                  max_size=None, ping_interval=None) as ws:
        assert json.loads(await ws.recv())["type"] == "hello"
        yield ws

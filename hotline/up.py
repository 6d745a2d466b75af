"""``hotline up``: every service in the foreground; Ctrl-C stops them all, in order.

Order of start: Asterisk, then the web app, whose lifespan starts the in-process services
(CTI bridge, FastAGI… as they land). Order of stop: the reverse.
"""

from __future__ import annotations

import contextlib

import uvicorn

from hotline.asterisk import process
from hotline.settings import Settings


def up(settings: Settings) -> None:
    from agent_ui.app import create_app

    started_here = False
    if settings.asterisk_mode != "remote":
        was_running = process.status(settings).running
        status = process.start(settings)
        started_here = not was_running
        print(f"Asterisk 运行中 (pid {status.pid})", flush=True)
    try:
        config = uvicorn.Config(create_app(settings), host=settings.web_host, port=settings.web_port,
                                log_level="info", proxy_headers=False)
        print(f"控制台: http://{settings.web_host}:{settings.web_port}  (Ctrl-C 停止全部服务)", flush=True)
        # uvicorn re-raises the Ctrl-C it handled; its lifespan has stopped the in-process services,
        # and Asterisk is still ours to stop
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(config).run()
    finally:
        if started_here:
            process.stop(settings)
            print("Asterisk 已停止", flush=True)

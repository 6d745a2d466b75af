"""``hotline up``: every service in the foreground; Ctrl-C stops them all, in order.

Order of start: Asterisk, the transcription workers (their own processes, one Vosk model each),
then the web app, whose lifespan runs the in-process services (CTI bridge, FastAGI, the
recordings catalog, housekeeping). Order of stop: the reverse.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys

import uvicorn

from hotline.asterisk import process
from hotline.settings import Settings


def _start_transcription(settings: Settings) -> subprocess.Popen[bytes] | None:
    if "transcribe" not in settings.services:
        return None
    workers = max(1, settings.transcribe_workers)
    print(f"转写进程 {workers} 个启动中（Vosk 模型加载约 5 秒）", flush=True)
    # its own session: the terminal's Ctrl-C reaches the web app, which then stops it in order
    return subprocess.Popen([sys.executable, "-m", "launch.cli", "transcribe", "-w", str(workers)],
                            start_new_session=True)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # workers finish the recording in hand, then exit
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    print("转写进程已停止", flush=True)


def up(settings: Settings) -> None:
    from launch.compose import server_config

    started_here = False
    transcription = None
    if settings.asterisk_mode != "remote":
        was_running = process.status(settings).running
        status = process.start(settings)
        started_here = not was_running
        print(f"Asterisk 运行中 (pid {status.pid})", flush=True)
    try:
        transcription = _start_transcription(settings)
        if "listen" in settings.services:
            where = settings.listen_address or f"{settings.listen_host}:{settings.listen_port}"
            print(f"实时转写：通话音频经 AudioSocket 接入 {where}（识别模型随控制台加载）", flush=True)
        config = server_config(settings)
        print(f"控制台: http://{settings.web_host}:{settings.web_port}  (Ctrl-C 停止全部服务)", flush=True)
        # uvicorn re-raises the Ctrl-C it handled; its lifespan has stopped the in-process services,
        # and the workers and Asterisk are still ours to stop
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(config).run()
    finally:
        _stop(transcription)
        if started_here:
            process.stop(settings)
            print("Asterisk 已停止", flush=True)

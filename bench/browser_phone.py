"""The browser phone against a desk phone: how soon each side of a call is heard once the seat
answers, and what a browser call costs Asterisk (issue #17).

One stack of our own (``testkit.stack``, topology ``up``: Asterisk 22 in its chroot copy, the web
app with the CTI bridge and FastAGI), two seats: a desk seat answered by a SIPp phone (the
baseline: not our code) and a browser seat answered by the console in Debian's chromium (JsSIP,
WebRTC: DTLS-SRTP, ICE, Opus), 自动接听 on. SIPp citizens call 12345 one at a time, each playing a
1 kHz tone; each phone plays 440 Hz (SIPp its stream, chromium its fake microphone). The job-number
announcement is off in this stack so the seat is bridged as it answers.

For every call:

* **operator heard** — the seat's answer → its 440 Hz first in the recording's operator leg
  (MixMonitor starts as Asterisk takes the 200 OK): what the citizen waits for. Both phones.
* **citizen heard** (browser only) — the browser's answer (its 200 OK accepted) → the citizen's
  tone first loud on the far-end track in the page (polled every 10 ms).
* **answer** (browser only) — the INVITE reaching the page → its 200 OK accepted: the pop's arrival
  (auto-answer waits for it) and the answer itself.

And Asterisk's CPU seconds per second of call for each phone (Opus ↔ G.711 and SRTP for the browser).

Run from the repo root: ``.venv/bin/python bench/browser_phone.py [--calls 40]`` (p95 of 40 is the
2nd worst). Last line: ``calls=… desk_heard_p50_ms=… browser_heard_p50_ms=… ratio=…
citizen_heard_p50_ms=… answer_p50_ms=… cpu_desk=… cpu_browser=…``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hotline.asterisk import process  # noqa: E402
from hotline.settings import get_settings  # noqa: E402
from hotline.simulate.audio import timeline  # noqa: E402
from hotline.simulate.sipp import SippRunner  # noqa: E402
from testkit.phone import fake_media, first_tone_ms, tone_wav  # noqa: E402
from testkit.stack import Stack, cpu_seconds, free_port, machine_lock  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
DESK, BROWSER = "8001", "8002"
CITIZEN_HZ, PHONE_HZ = 1000, 440
TALK_S = 3.0


def pct(xs: list[float], p: float) -> float:
    """The nearest-rank percentile (nan of nothing)."""
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))]


def calls(stack: Stack, runner: SippRunner, n: int, audio: Path) -> tuple[list[Path], float]:
    """``n`` citizens one after another; the new recordings' operator legs and Asterisk's CPU seconds."""
    spool = stack.settings.recordings_spool
    before = set(spool.glob("*-out.wav"))
    pid = stack.asterisk_pid()
    cpu0 = cpu_seconds(pid) if pid else 0.0
    numbers = [f"1390530{i:04d}" for i in range(n)]
    citizen = runner.callers(numbers, stack.settings.hotline_number,
                             timeline(audio, [("tone", f"{CITIZEN_HZ}x30")]), calls=n, rate=2, concurrency=1,
                             hangup_ms=int(TALK_S * 1000))
    citizen.wait(n * (TALK_S + 20))
    cpu = (cpu_seconds(pid) if pid else 0.0) - cpu0
    deadline = time.monotonic() + 15
    while len(new := sorted(set(spool.glob("*-out.wav")) - before)) < n and time.monotonic() < deadline:
        time.sleep(0.2)
    return new, cpu


def signed_in(stack: Stack, seat: str) -> None:
    deadline = time.monotonic() + 15
    while f"PJSIP/{seat}" not in process.cli(stack.settings, f"queue show {stack.settings.queue_name}"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"seat {seat} never joined the queue")
        time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=40)
    args = ap.parse_args()
    base = get_settings()
    http = free_port(8288)
    extra = {"browser_seats": [BROWSER], "agi_announce_job_number": False, "cti_shifts": [],
             "asterisk_http_port": http, "asterisk_https_port": free_port(http + 1)}
    with machine_lock(), tempfile.TemporaryDirectory() as tmp:
        # Asterisk alone, then the web app with the bridge and FastAGI (no transcription workers: they
        # would transcribe these recordings on the same two cores while Asterisk's CPU is measured)
        stack = Stack(base, seats=[DESK, BROWSER], topology="asterisk", wrapup_s=0, extra=extra)
        audio = base.var_dir / "audio"
        runner = SippRunner(stack.var / "sim", f"127.0.0.1:{stack.settings.sip_port}")
        try:
            stack.prepare()
            stack.start()
            stack.spawn("web", ["web"], services="cti,agi")
            deadline = time.monotonic() + 60
            while not (stack.web_ready() and stack.bridge_ready() and stack.agi_ready()):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the web app did not come up: {stack.var / 'logs'}")
                time.sleep(0.3)
            # the baseline: a SIPp desk phone answering at once and playing its tone from its 200 OK
            bot = runner.seat(DESK, stack.settings.seat_password(DESK), timeline(audio, [("tone", f"{PHONE_HZ}x60")]),
                              ring_ms=0, talk_ms=60_000)
            process.cli(stack.settings, f"queue add member PJSIP/{DESK} to {stack.settings.queue_name} as {DESK}")
            signed_in(stack, DESK)
            print(f"desk phone: {args.calls} calls…", flush=True)
            desk_recs, desk_cpu = calls(stack, runner, args.calls, audio)
            process.cli(stack.settings, f"queue remove member PJSIP/{DESK} from {stack.settings.queue_name}")
            bot.stop()
            desk = [ms for r in desk_recs if (ms := first_tone_ms(r, PHONE_HZ)) is not None]

            from playwright.sync_api import sync_playwright

            mic = tone_wav(Path(tmp) / "mic.wav", PHONE_HZ, 600)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *fake_media(mic)], headless=True)
                page = browser.new_context(locale="zh-CN").new_page()
                page.goto(f"{stack.url}/login")
                page.fill("input[name=username]", "op1024")
                page.fill("input[name=password]", "demo1024")
                page.press("input[name=password]", "Enter")
                page.wait_for_url(f"{stack.url}/console", timeout=15_000)
                page.select_option("#seat-pick", BROWSER)
                page.click("#signin")
                page.wait_for_function("window.__phone && window.__phone.state === 'registered'", timeout=20_000)
                page.check("#ph-auto")
                signed_in(stack, BROWSER)
                print(f"browser phone: {args.calls} calls…", flush=True)
                web_recs, web_cpu = calls(stack, runner, args.calls, audio)
                page.wait_for_function(f"window.__phone.stats.calls.length >= {args.calls}", timeout=30_000)
                seen = page.evaluate("window.__phone.stats.calls")
                browser.close()
            web = [ms for r in web_recs if (ms := first_tone_ms(r, PHONE_HZ)) is not None]
            heard = [c["firstAudioAt"] - c["answeredAt"] for c in seen if c["firstAudioAt"] and c["answeredAt"]]
            answer = [c["answeredAt"] - c["inviteAt"] for c in seen if c["answeredAt"]]
        finally:
            runner.stop_all()
            stack.stop()
            stack.remove()

    for name, xs in (("desk phone: answer → operator heard", desk), ("browser phone: answer → operator heard", web),
                     ("browser phone: answer → citizen heard in the page", heard),
                     ("browser phone: INVITE → 200 OK (auto-answer after the pop)", answer)):
        if xs:
            print(f"{name}: n={len(xs)} p50={pct(xs, 50):.0f} p95={pct(xs, 95):.0f} max={max(xs):.0f} ms")
    per_s = {k: cpu / (len(recs) * TALK_S) if recs else 0.0
             for k, cpu, recs in (("desk", desk_cpu, desk_recs), ("browser", web_cpu, web_recs))}
    print(f"Asterisk CPU per second of call: desk {per_s['desk']:.4f} s, browser {per_s['browser']:.4f} s")
    missing = 2 * args.calls - len(desk) - len(web)
    if missing:
        print(f"calls without the phone's tone in the recording: {missing}")
    ratio = statistics.median(web) / statistics.median(desk) if desk and web else float("nan")
    print(f"calls={args.calls} desk_heard_p50_ms={pct(desk, 50):.0f} desk_heard_p95_ms={pct(desk, 95):.0f} "
          f"browser_heard_p50_ms={pct(web, 50):.0f} browser_heard_p95_ms={pct(web, 95):.0f} ratio={ratio:.2f} "
          f"citizen_heard_p50_ms={pct(heard, 50):.0f} citizen_heard_p95_ms={pct(heard, 95):.0f} "
          f"answer_p50_ms={pct(answer, 50):.0f} answer_p95_ms={pct(answer, 95):.0f} "
          f"cpu_desk={per_s['desk']:.4f} cpu_browser={per_s['browser']:.4f}")


if __name__ == "__main__":
    main()

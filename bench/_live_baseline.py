"""``bench/live_transcribe.py``'s baseline: Vosk alone, not our code — run as its own script, it imports
only Vosk and the standard library (and says which of our packages it saw, which must be none).

Jobs on stdin (one JSON line each: the legs' wavs and start delays), answers on stdout: one thread
per leg with ``KaldiRecognizer`` fed 20 ms frames at real-time pace, each final timed as Vosk gives
it. Private to live_transcribe (the leading ``_`` keeps ``make bench`` from running it).

Run: ``python bench/_live_baseline.py MODEL_DIR``.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import wave

OURS = ("hotline", "recordings", "testkit", "ticketing", "accounts", "cti", "agi", "agent_ui", "notify", "launch",
        "live")
FRAME_S = 0.02

_MARKS = re.compile(r"\[[^\]\s]*\]")  # [unk], [noise]: not words (the node leaves them out too)


def baseline_main(model_dir: str) -> None:
    """Jobs on stdin (one JSON line each), answers on stdout: Vosk's public API and the standard
    library only, one thread per leg fed 20 ms frames at real-time pace."""
    import vosk

    vosk.SetLogLevel(-1)
    model = vosk.Model(model_dir)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        legs = []
        for spec in job["legs"]:
            with wave.open(spec["wav"]) as w:
                rate = w.getframerate()
                pcm = w.readframes(w.getnframes())
            legs.append({"pcm": pcm, "rate": rate, "finals": [], "late": 0.0})
        t0 = time.monotonic() + 0.5
        for d, spec in zip(legs, job["legs"], strict=True):
            d["start"] = t0 + spec["delay"]

        def leg(d: dict) -> None:
            rec = vosk.KaldiRecognizer(model, d["rate"])
            rec.SetWords(True)
            step = int(d["rate"] * FRAME_S) * 2
            start = d["start"]
            for n, i in enumerate(range(0, len(d["pcm"]), step)):
                due = start + n * FRAME_S
                now = time.monotonic()
                if now < due:
                    time.sleep(due - now)
                else:
                    d["late"] = max(d["late"], now - due)
                if rec.AcceptWaveform(d["pcm"][i:i + step]):
                    said = time.monotonic()
                    got = json.loads(rec.Result()).get("result", [])
                    words = [w for w in got if not _MARKS.fullmatch(w["word"])]
                    if words:  # when it was said, where in the audio, its last word's end, the text
                        d["finals"].append([said, (n + 1) * FRAME_S, words[-1]["end"],
                                            " ".join(w["word"] for w in words)])
                elif (n + 1) % 10 == 0:
                    rec.PartialResult()
            got = json.loads(rec.FinalResult()).get("result", [])  # the leg hung up: what it still heard
            words = [w for w in got if not _MARKS.fullmatch(w["word"])]
            if words:
                d["finals"].append([time.monotonic(), len(d["pcm"]) / 2 / d["rate"], words[-1]["end"],
                                    " ".join(w["word"] for w in words)])

        c0 = time.process_time()
        threads = [threading.Thread(target=leg, args=(d,)) for d in legs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ours = sorted(m for m in sys.modules if m.split(".")[0] in OURS)
        print(json.dumps({"cpu_s": time.process_time() - c0, "ours": ours,
                          "legs": [{"start": d["start"], "finals": d["finals"], "late": d["late"]} for d in legs]}),
              flush=True)


if __name__ == "__main__":
    baseline_main(sys.argv[1])

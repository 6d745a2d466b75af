"""The durable outbox's folder under a burst: calls filed at once all reach the journal."""

from __future__ import annotations

import threading
from pathlib import Path

from hotline.outbox import Outbox


def test_a_burst_of_first_puts_all_reach_the_journal(tmp_path: Path) -> None:
    for round_ in range(20):  # the folder's first creation is the race: a fresh one each round
        box = Outbox(tmp_path / f"r{round_}" / "outbox")
        start = threading.Barrier(8)
        errors: list[BaseException] = []

        def put(i: int, box: Outbox = box, start: threading.Barrier = start,
                errors: list[BaseException] = errors) -> None:
            start.wait()
            try:
                box.put(f"call-{i}", {"i": i})
            except OSError as e:  # what a filer would have hit
                errors.append(e)

        threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and len(box) == 8

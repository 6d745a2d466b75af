"""One step at a time per ticket, on SQLite and PostgreSQL: of two 回访 recorded at once (a double
click, two operators) one is recorded and the other refused by the workflow; two deadline sweeps
at once (two web nodes) open each automatic supervision once. Real threads, real connections."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tests.ticketing.conftest import Clock, People, intake
from ticketing.store import Store
from ticketing.workflow import TransitionError


def at_once(n: int, work: Callable[[int], Any]) -> list[Any]:
    """``work(i)`` in ``n`` threads started together; each one's result or exception."""
    out: list[Any] = [None] * n
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        try:
            out[i] = work(i)
        except Exception as exc:  # what the caller would have got
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_two_callbacks_at_once_are_recorded_once(svc: Store, people: People, depts: dict[str, int]) -> None:
    t = svc.tickets.create(intake(), people.operator)
    svc.actions.transfer(t.id, depts["水务"], "请核实处理", people.operator)
    svc.actions.accept(t.id, people.water)
    svc.actions.reply(t.id, "已恢复供水", people.water)
    got = at_once(4, lambda i: svc.actions.act(t.id, "callback", {
        "satisfaction": "不满意", "satisfaction_process": "满意", "result": f"仍然停水（第{i}位）"}, people.operator))
    done = [g for g in got if not isinstance(g, Exception)]
    refused = [g for g in got if isinstance(g, Exception)]
    assert len(done) == 1 and len(refused) == 3, got
    assert all(isinstance(e, TransitionError) and "不能回访" in str(e) for e in refused)
    after = svc.tickets.get(t.id, people.lead)
    assert (after.status, after.redo_count) == ("in_progress", 1)  # sent back once, not once per click
    assert [e.action for e in svc.tickets.history(t.id, people.lead)].count("callback") == 1


def test_two_sweeps_at_once_open_each_supervision_once(svc: Store, people: People, depts: dict[str, int],
                                                      clock: Clock) -> None:
    tickets = []
    for i in range(6):
        t = svc.tickets.create(intake(title=f"停水{i}号楼"), people.operator)
        tickets.append(svc.actions.transfer(t.id, depts["水务"], "请核实处理", people.operator))
    clock.advance(days=30)  # all of them overdue
    at_once(3, lambda _: svc.actions.sweep())
    for t in tickets:
        notes = [n.reason for n in svc.tickets.supervisions(t.id, people.lead)]
        assert notes.count("overdue") == 1, notes

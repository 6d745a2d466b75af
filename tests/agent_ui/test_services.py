"""The wiring's housekeeping: deadline reminders go out on the bus once per ticket and colour."""

from __future__ import annotations

from agent_ui.services import Services
from cti.bus import InProcessBus
from cti.domain import TicketReminder
from hotline.settings import Settings
from tests.ticketing.conftest import backend, clock, depts, engine, intake, people, postgres_server, svc  # noqa: F401


def test_deadline_reminders_once_per_colour(svc, people, clock, engine, tmp_path) -> None:  # noqa: F811
    services = Services(Settings(var_dir=tmp_path, services=[]), engine, svc, InProcessBus())
    t = svc.create(intake(), people.operator)  # Monday: to be transferred by Wednesday
    assert services.sweep_once() == []
    clock.advance(days=1)  # Tuesday: one working day left
    [yellow] = services.sweep_once()
    assert isinstance(yellow, TicketReminder) and (yellow.ticket_id, yellow.state) == (t.id, "yellow")
    assert services.sweep_once() == []  # told once
    clock.advance(days=2)  # Thursday: overdue
    [red] = services.sweep_once()
    assert red.state == "red" and red.type == "alert" and red.kind == "ticket_deadline"

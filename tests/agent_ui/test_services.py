"""The wiring's housekeeping: deadline reminders go out on the bus once per ticket and colour."""

from __future__ import annotations

from agent_ui.services import Services
from cti.domain import TicketReminder
from hotline.bus import InProcessBus
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


def test_the_apps_own_agi_server_puts_a_voice_message_on_the_callback_list(tmp_path) -> None:
    import asyncio
    import socket

    from fastapi.testclient import TestClient

    from agent_ui.app import create_app
    from tests.agi.fakes import AgiClient

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(var_dir=tmp_path / "var", services=["agi"], agi_port=port, service_hours="00:00-00:01")
    with TestClient(create_app(settings)) as client:
        # Asterisk's side of an after-hours call: 1 (留言), eight seconds said, then "#"
        session = AgiClient("127.0.0.1", port, script="closed", keys=["1"], uniqueid="1795400000.3",
                            extra_env={"agi_arg_1": "after_hours"})
        commands = asyncio.run(session.run())
        assert any(c[:2] == ["RECORD", "FILE"] for c in commands)
        [row] = [r for r in client.app.state.services.calls.callbacks() if r["id"] == "1795400000.3"]
    assert row["message"] and row["recording_id"].startswith("message-") and row["callback_reason"] == "after_hours"

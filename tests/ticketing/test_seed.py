"""The demo city: generated, realistic, idempotent, walked through the real workflow."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from ticketing.calendar import TZ
from ticketing.context import StoreContext
from ticketing.models import Article, Department, Ticket, TicketEvent
from ticketing.seed import demo_status, seed_demo
from ticketing.store import Store

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=TZ)


def test_seed_demo_is_realistic_and_idempotent(engine):
    first = seed_demo(engine, tickets=60, now=NOW)
    assert first["departments"] >= 30 and first["articles"] >= 100 and first["tickets"] == 60
    assert seed_demo(engine, tickets=60, now=NOW) == {"departments": 0, "articles": 0, "tickets": 0}
    status = demo_status(engine)
    assert status["tickets"] == 60 and 0 < status["open"] < 60
    with engine.connect() as c:
        names = set(c.execute(sa.select(Department.name)).scalars())
        assert {
            "菏泽市城市管理局",
            "菏泽市水务集团有限公司",
            "菏泽市住房和城乡建设局",
            "菏泽市交通运输局",
            "菏泽市市场监督管理局",
            "曹县人民政府",
        } <= names
        assert (
            c.execute(
                sa.select(sa.func.count()).select_from(Article).where(Article.title.like("%公积金%"))
            ).scalar_one()
            >= 4
        )
        repeat = c.execute(
            sa.select(Ticket.caller_number, sa.func.count()).group_by(Ticket.caller_number).having(sa.func.count() > 1)
        ).all()
        assert repeat, "some numbers call more than once"
        created = c.execute(sa.select(sa.func.min(Ticket.created_at), sa.func.max(Ticket.created_at))).one()
        assert (created[1] - created[0]).days > 30 and created[1] <= NOW
        # every ticket has a history that starts with its creation
        firsts = (
            c.execute(
                sa.select(TicketEvent.action).where(
                    TicketEvent.id.in_(sa.select(sa.func.min(TicketEvent.id)).group_by(TicketEvent.ticket_id))
                )
            )
            .scalars()
            .all()
        )
        assert len(firsts) == 60 and set(firsts) == {"create"}


def test_seed_is_deterministic(engine, tmp_path):
    from hotline.db import make_engine
    from ticketing.db import migrate

    seed_demo(engine, tickets=20, now=NOW)
    other = make_engine(f"sqlite:///{tmp_path / 'again.db'}")
    migrate(other)
    seed_demo(other, tickets=20, now=NOW)
    q = sa.select(Ticket.title, Ticket.caller_number, Ticket.status).order_by(Ticket.id)
    with engine.connect() as a, other.connect() as b:
        assert a.execute(q).all() == b.execute(q).all()


def test_seeded_data_is_searchable(engine):
    seed_demo(engine, tickets=80, now=NOW)
    svc = Store.on(StoreContext(engine, clock=lambda: NOW))
    from ticketing.schemas import SystemActor

    page = svc.tickets.search({"q": "噪音扰民"}, SystemActor("lead", "lead"))
    assert page.total > 0 and all("噪音扰民" in t.title + t.matter_course for t in page.items)
    assert svc.kb.search("公积金")

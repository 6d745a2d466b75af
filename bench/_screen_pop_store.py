"""The screen-pop bench's store (``bench/screen_pop.py``): the callers' history and the operators'
accounts, written before the app starts, and the count of the calls the app filed in its call log.

Apart from the run because it is the only part that opens the database itself rather than going
through the app: it writes before the app is up and only reads after the last burst; the pops are
checked against the history ``prepare`` returns. Private to screen_pop (the leading ``_`` keeps
``make bench`` from running it as a benchmark); it imports the product only. ``bench/screen_pop.py``
puts the checkout on the path.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from hotline.settings import Settings

# --- the store and the accounts (before the app starts) ---------------------------------------------


def history_rows(callers: list[str], total: int, dept_names: dict[str, str], rnd: random.Random
                 ) -> list[dict[str, object]]:
    """Finished tickets of the last two years, as the old system's export gives them to
    ``hotline tickets import``: 2–7 for each caller of the bench, and the rest of ``total`` for
    numbers that do not call now (about three each), so the lookup reads a store of some size."""
    from ticketing.seed import COMPOUNDS, DISTRICTS, MARKETS, ROADS, SCENARIOS, SURNAMES

    owners = [c for c in callers for _ in range(rnd.randint(2, 7))]
    others = [f"1{rnd.choice('3578')}{rnd.randint(0, 9)}{rnd.randint(10000000, 99999999)}"
              for _ in range(max(1, (total - len(owners)) // 3))]
    owners += [rnd.choice(others) for _ in range(max(0, total - len(owners)))]
    now = time.time()
    when = sorted(now - 3 * 86400 - rnd.random() * 730 * 86400 for _ in owners)
    rnd.shuffle(owners)
    weights = [s.weight for s in SCENARIOS]
    rows = []
    for i, (created, number) in enumerate(zip(when, owners, strict=True)):
        sc = rnd.choices(SCENARIOS, weights)[0]
        slots = {"district": rnd.choice(DISTRICTS), "road": rnd.choice(ROADS), "road2": rnd.choice(ROADS),
                 "compound": rnd.choice(COMPOUNDS), "market": rnd.choice(MARKETS), "n": rnd.randint(1, 30),
                 "when": "昨天"}
        at = datetime.fromtimestamp(created, UTC)
        rows.append({
            "number": f"H{at:%Y%m%d}{i + 1:07d}", "status": "archived" if rnd.random() < 0.7 else "closed",
            "created_at": at.isoformat(), "closed_at": (at + timedelta(days=rnd.randint(1, 15))).isoformat(),
            "channel": "电话", "caller_number": number, "caller_name": rnd.choice(SURNAMES) + "女士",
            "category": sc.category, "subcategory": sc.subcategory, "confidential": rnd.random() < 0.04,
            "emergency": sc.emergency, "handling_mode": sc.mode, "title": sc.title.format(**slots),
            "district": slots["district"], "matter_time": "昨天",
            "matter_place": f"{slots['district']}{slots['road']}{slots['compound']}",
            "matter_course": sc.course.format(**slots), "matter_demand": sc.demand,
            "operator": f"{rnd.randint(1, 60):03d}", "lead_department": dept_names[sc.dept],
            "reply_text": "已办理，已答复市民", "satisfaction": rnd.choice(["满意", "基本满意", "不满意"]),
        })
    return rows


def prepare(settings: Settings, tickets: int, pool: int, operators: dict[str, str], seed: int
            ) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """The bench's database: the callers' history (finished tickets through the import path, and
    an open one for a third of them through the operator's intake, so the pop shows deadline
    colours), the tickets each caller's pop must carry, and the operators' accounts, made as
    ``hotline account create --password-stdin`` makes them."""
    from accounts.admin import AccountAdmin, Actor
    from hotline.identity import Principal, Role
    from launch.compose import build
    from ticketing.models import Department
    from ticketing.seed import DISTRICTS, SCENARIOS, seed_demo

    rnd = random.Random(seed)
    callers = sorted({f"13{rnd.randint(0, 9)}{rnd.randint(10000000, 99999999)}" for _ in range(pool)})
    node = build(settings, set())
    try:
        store = node.store
        seed_demo(node.engine, tickets=0)  # the demo city's departments and knowledge base
        with node.engine.connect() as c:
            dept_names = {k: v for k, v in c.execute(sa.select(Department.short_name, Department.name))}
        t = time.perf_counter()
        rows = history_rows(callers, tickets, dept_names, rnd)
        report = store.imports.tickets(rows, Principal("bench-admin", Role.ADMIN), batch=5000)
        assert report.imported == len(rows) and not report.errors, report.errors[:3]
        operator = Principal("bench-intake", Role.OPERATOR, job_number="088")
        for number in callers[::3]:
            sc, district = rnd.choice(SCENARIOS), rnd.choice(DISTRICTS)
            slots = {"district": district, "road": "中华路", "road2": "人民路", "compound": "丽景花园",
                     "market": "东关市场", "n": 3, "when": "今天"}
            store.tickets.create({
                "category": sc.category, "subcategory": sc.subcategory, "title": sc.title.format(**slots),
                "caller_number": number, "caller_name": "李先生", "district": district,
                "matter_course": sc.course.format(**slots), "matter_demand": sc.demand, "handling_mode": sc.mode,
            }, operator)
        if node.engine.dialect.name == "postgresql":  # a centre's database has its planner statistics; one
            with node.engine.connect() as c:  # filled a minute ago would have them only after autovacuum came by
                c.execute(sa.text("ANALYZE"))
                c.commit()
        print(f"store: {report.imported} finished tickets imported, {len(callers[::3])} open ones taken in "
              f"({time.perf_counter() - t:.0f} s)", flush=True)
        history = {n: tuple(t.number for t in store.callers.summary(n, 5).recent) for n in callers}
        assert all(len(h) >= 2 for h in history.values())
        admin = AccountAdmin(node.accounts)
        for i, (user, password) in enumerate(operators.items()):
            admin.create(Actor("cli:bench", "localhost"), user, "operator", display_name=f"话务员{i + 1:02d}",
                         job_number=f"{7000 + i}", password=password)
    finally:
        node.engine.dispose()
    return callers, history


# --- the call log (after the calls) ---------------------------------------------------------------


def call_log_count(settings: Settings, ids: list[str]) -> int:
    """How many of the calls the app filed in its call log (its own process wrote them)."""
    from hotline.db import make_engine
    from ticketing.models import CallRecord

    time.sleep(1.0)  # the filer works in the background
    engine = make_engine(settings.db_url)
    try:
        with engine.connect() as c:
            return c.execute(sa.select(sa.func.count()).select_from(CallRecord)
                             .where(CallRecord.uniqueid.in_(ids))).scalar_one()
    finally:
        engine.dispose()


def live_legs_of(settings: Settings) -> list[tuple[str, float]]:
    """The live transcript's legs the run kept: each one's state and seconds of audio heard."""
    from hotline.db import make_engine

    engine = make_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT state, audio_s FROM recording_live_leg"))
            return [(r.state, r.audio_s) for r in rows]
    finally:
        engine.dispose()

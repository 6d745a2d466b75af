"""Ticket store benchmark: bulk-create N tickets, then time the reads the hotline lives on.

    .venv/bin/python bench/store.py                 # 1 000 000 tickets, SQLite then PostgreSQL
    .venv/bin/python bench/store.py --tickets 20000 --backends sqlite

Per backend it prints the create rate (bulk executemany with every index and the full-text
index in place) and p50/p95 of: the AGI caller lookup (``Store.callers.summary``), a 2-character
and a 4-character full-text search and a filtered list, each through ``Store.tickets.search``
(capped count + first page of 20, as the console asks). PostgreSQL is a throwaway cluster
started like the tests' (or ``--pg-url``). The last line holds the SQLite figures.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the product packages and testkit, when run as bench/store.py

import sqlalchemy as sa  # noqa: E402

from hotline.db import make_engine  # noqa: E402
from ticketing.context import StoreContext  # noqa: E402
from ticketing.db import migrate  # noqa: E402
from ticketing.models import Department, Ticket  # noqa: E402
from ticketing.schemas import SystemActor  # noqa: E402
from ticketing.search import build_text  # noqa: E402
from ticketing.seed import COMPOUNDS, DISTRICTS, MARKETS, ROADS, SCENARIOS, SURNAMES, seed_demo  # noqa: E402
from ticketing.store import Store  # noqa: E402

WORDS2 = ["停水", "路灯", "电梯", "井盖", "油烟", "暖气", "拒载", "违建"]
WORDS4 = ["噪音扰民", "恢复供水", "管道破裂", "占道经营", "拖欠农民", "无人清运", "预付卡无", "信号灯时"]
STATUSES = (["archived"] * 50 + ["closed"] * 20 + ["in_progress"] * 10 + ["transferred"] * 5
            + ["registered"] * 5 + ["accepted"] * 5 + ["replied"] * 5)
BATCH = 5000
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def rows(n: int, dept_ids: dict[str, int], seed: int = 7) -> Iterator[list[dict]]:
    """Tickets in creation order over two years, from the demo scenarios, in batches."""
    rnd = random.Random(seed)
    numbers = [f"1{rnd.choice('3578')}{rnd.randint(0, 9)}{rnd.randint(10000000, 99999999)}"
               for _ in range(max(10, n // 3))]
    span = timedelta(days=730).total_seconds()
    weights = [s.weight for s in SCENARIOS]
    batch: list[dict] = []
    for i in range(n):
        sc = rnd.choices(SCENARIOS, weights)[0]
        district = rnd.choice(DISTRICTS)
        road, road2 = rnd.sample(ROADS, 2)
        slots = {"district": district, "road": road, "road2": road2, "compound": rnd.choice(COMPOUNDS),
                 "market": rnd.choice(MARKETS), "n": rnd.randint(1, 30), "when": "昨天"}
        title, course = sc.title.format(**slots), sc.course.format(**slots)
        created = NOW - timedelta(seconds=span * (1 - i / n))
        status = rnd.choice(STATUSES)
        number = rnd.choice(numbers)
        place = f"{district}{road}{slots['compound']}"
        batch.append({
            "number": f"{created:%Y%m%d}{i + 1:07d}", "status": status, "channel": "电话",
            "caller_number": number, "caller_name": rnd.choice(SURNAMES) + "女士", "caller_address": "",
            "contact": number, "category": sc.category, "subcategory": sc.subcategory,
            "confidential": False, "emergency": sc.emergency, "handling_mode": sc.mode, "title": title,
            "district": district, "matter_time": "昨天", "matter_place": place, "matter_course": course,
            "matter_state": "", "matter_demand": sc.demand, "operator": f"{rnd.randint(1, 60):03d}",
            "lead_department_id": dept_ids[sc.dept], "transfer_opinion": "", "reply_text": "",
            "return_reason": "", "callback_result": "", "satisfaction": "", "extension_days": 0,
            "extension_requested_days": 0, "redo_count": 0, "repeat_count": 0, "supervision_count": 0,
            "source": "bench", "search_text": build_text(title, district, place, course, sc.demand),
            "created_at": created, "updated_at": created,
            "current_due": None if status in ("archived", "closed") else created + timedelta(days=7),
        })
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def create(engine: sa.Engine, n: int) -> tuple[float, list[str]]:
    """Bulk-insert ``n`` tickets; returns (tickets per second, the caller numbers used)."""
    seed_demo(engine, tickets=0)  # departments and the knowledge base
    with engine.connect() as c:
        dept_ids = {short: i for i, short in c.execute(sa.select(Department.id, Department.short_name))}
    columns = [c.name for c in Ticket.__table__.columns if c.name != "id"]
    sqlite = engine.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    sql = f"INSERT INTO ticket ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"

    def value(v: object) -> object:
        # the driver gets what UTCDateTime would have bound: naive UTC text on SQLite
        if sqlite and isinstance(v, datetime):
            return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return v

    numbers: set[str] = set()
    t0 = time.perf_counter()
    done = 0
    for batch in rows(n, dept_ids):
        params = [tuple(value(r.get(col)) for col in columns) for r in batch]
        with engine.begin() as c:
            c.exec_driver_sql(sql, params)
        numbers.update(r["caller_number"] for r in batch[:50])
        done += len(batch)
        if done % 100000 == 0:
            print(f"  … {done} tickets, {done / (time.perf_counter() - t0):.0f}/s", flush=True)
    elapsed = time.perf_counter() - t0
    with engine.begin() as c:
        c.execute(sa.text("ANALYZE"))
    return n / elapsed, sorted(numbers)


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds (after a few warm-up calls)."""
    for _ in range(5):
        fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def measure(name: str, engine: sa.Engine, n: int, runs: int) -> dict[str, float]:
    print(f"[{name}] creating {n} tickets …", flush=True)
    rate, numbers = create(engine, n)
    print(f"[{name}] create: {rate:.0f} tickets/s", flush=True)
    svc = Store.on(StoreContext(engine, clock=lambda: NOW))
    lead = SystemActor("bench", "lead")
    rnd = random.Random(11)
    figures = {"create_per_s": rate}
    checks = {
        "lookup": lambda: svc.callers.summary(rnd.choice(numbers)),
        "fts2": lambda: svc.tickets.search({"q": rnd.choice(WORDS2)}, lead),
        "fts4": lambda: svc.tickets.search({"q": rnd.choice(WORDS4)}, lead),
        "list": lambda: svc.tickets.search({"status": [rnd.choice(["in_progress", "transferred", "registered"])],
                                    "category": rnd.choice(["投诉举报", "求助", "一般诉求"]),
                                    "created_from": (NOW - timedelta(days=rnd.randint(30, 365))).isoformat()},
                                   lead),
    }
    sample = svc.tickets.search({"q": "噪音扰民"}, lead)
    assert sample.total > 0 and all("噪音扰民" in t.title + t.matter_course for t in sample.items)
    for key, fn in checks.items():
        p50, p95 = timed(fn, runs)
        figures[f"{key}_p50_ms"], figures[f"{key}_p95_ms"] = p50, p95
        print(f"[{name}] {key:6s} p50={p50:7.2f} ms  p95={p95:7.2f} ms", flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=200, help="timed calls per query kind")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--pg-url", default="", help="an existing empty PostgreSQL database (UTF-8) instead of a throwaway")
    args = ap.parse_args(argv)
    workdir = ROOT / "var" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, float]] = {}
    for backend in args.backends.split(","):
        if backend == "sqlite":
            path = workdir / "store.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            engine = make_engine(f"sqlite:///{path}")
            migrate(engine)
            results["sqlite"] = measure("sqlite", engine, args.tickets, args.runs)
            engine.dispose()
        elif backend == "postgres":
            server = None
            url = args.pg_url
            if not url:
                from testkit.postgres import start_server

                try:
                    server = start_server(workdir / "pg")
                except LookupError as e:
                    print(f"[postgres] skipped: {e}")
                    continue
                url = server.create_database("bench")
            try:
                engine = make_engine(url)
                migrate(engine)
                results["postgres"] = measure("postgres", engine, args.tickets, args.runs)
                engine.dispose()
            finally:
                if server is not None:
                    server.stop()
                    shutil.rmtree(workdir / "pg", ignore_errors=True)
    for name, f in results.items():
        print(f"{name}: create_per_s={f['create_per_s']:.0f} " + " ".join(
            f"{k}={v:.2f}" for k, v in f.items() if k != "create_per_s"))
    s = results.get("sqlite")
    if s:
        fts = max(s["fts2_p95_ms"], s["fts4_p95_ms"])
        print(f"tickets={args.tickets} create_per_s={s['create_per_s']:.0f} lookup_p95_ms={s['lookup_p95_ms']:.2f} "
              f"fts_p95_ms={fts:.2f} fts2_p95_ms={s['fts2_p95_ms']:.2f} list_p95_ms={s['list_p95_ms']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Ticket store benchmark: a million tickets written through the store, then the reads the hotline lives on.

    .venv/bin/python bench/store.py                  # 1 000 000 tickets, SQLite then PostgreSQL
    .venv/bin/python bench/store.py --tickets 20000 --backends sqlite --runs 200

**The store is filled the way a centre fills it.** Its history arrives through
``Store.imports.tickets`` (the code behind ``hotline tickets import``: every row validated as an
intake is, the ticket with its search text, its lead and co-handling departments, three history
rows, the caller's row; the trigram and bigram indexes follow by their triggers); the tickets still
open are made through ``Store.tickets.create`` and transferred through ``Store.actions`` (the
operator's path, with deadlines and duplicate proposals). 4 % are confidential, so the reads log
(``ConfidentialRead``) as they do in production. Times span two years; each number calls about
three times.

**The queries are the console's**, through ``Store.tickets.search`` (the first page of 20 and the
count capped at 200, as the lead's search page asks) and ``Store.callers.summary`` (the AGI's
pre-queue lookup), as a lead:

- ``lookup``: a caller's summary, the number drawn from every number in the store, 10 % never seen;
- ``common``: a word of three or more characters that thousands of tickets contain (噪音扰民);
- ``rare``: a place name a handful of tickets contain (1–5 each);
- ``nomatch``: a word of four characters no ticket contains (the index must say so without a scan);
- ``two_char``: two-character words, a third each common (停水), rare and matching nothing;
- ``list``: filtered list pages: status, category, a creation window, the lead department, pages 1–5.

Every kind is timed ``--runs`` times (default 400, so p95 is the 20th-worst sample) after a few
warm-up calls, in ``--rounds`` rounds of every kind (default 3; each round draws new arguments), and
reported per round and as the median round's p50/p95 per backend. PostgreSQL is a throwaway cluster started like
the tests' (or ``--pg-url``). The last line holds the SQLite figures.
"""

from __future__ import annotations

import argparse
import json
import os
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
from hotline.identity import Principal, Role  # noqa: E402
from ticketing.context import StoreContext  # noqa: E402
from ticketing.db import migrate  # noqa: E402
from ticketing.models import Department  # noqa: E402
from ticketing.seed import COMPOUNDS, DISTRICTS, MARKETS, ROADS, SCENARIOS, SURNAMES, seed_demo  # noqa: E402
from ticketing.store import Store  # noqa: E402

WORDS2 = ["停水", "路灯", "电梯", "井盖", "油烟", "暖气", "拒载", "违建"]
WORDS4 = ["噪音扰民", "恢复供水", "管道破裂", "占道经营", "拖欠农民", "无人清运", "预付卡无", "信号灯时"]
# characters no template, place or name uses: words made of them match nothing
ABSENT = "鑫犇骉淼焱垚燚鱻麤猋赑劦惢叒孨"
RARE_HEADS = "鹤鸣松柏竹梅兰菊桂荷枫榕槐杉桐楠樟柳杏桃"
RARE_TAILS = ["商厦", "大厦", "广场", "公寓", "山庄", "酒店"]
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
CONFIDENTIAL_SHARE = 0.04


def rare_place(rnd: random.Random) -> str:
    """A landmark of about a thousand: over a million tickets at 0.3 %, each in a handful."""
    return rnd.choice(RARE_HEADS) + rnd.choice(RARE_HEADS) + rnd.choice(RARE_TAILS)


def history(n: int, dept_names: dict[str, str], seed: int = 7) -> Iterator[dict]:
    """Finished tickets over two years, as an old system's export would give them (JSON-able rows)."""
    rnd = random.Random(seed)
    numbers = [f"1{rnd.choice('3578')}{rnd.randint(0, 9)}{rnd.randint(10000000, 99999999)}"
               for _ in range(max(10, n // 3))]
    span = timedelta(days=730).total_seconds()
    weights = [s.weight for s in SCENARIOS]
    others = list(dept_names.values())
    for i in range(n):
        sc = rnd.choices(SCENARIOS, weights)[0]
        district = rnd.choice(DISTRICTS)
        road, road2 = rnd.sample(ROADS, 2)
        slots = {"district": district, "road": road, "road2": road2, "compound": rnd.choice(COMPOUNDS),
                 "market": rnd.choice(MARKETS), "n": rnd.randint(1, 30), "when": "昨天"}
        created = NOW - timedelta(days=3) - timedelta(seconds=span * (1 - i / n))
        place = f"{district}{road}{slots['compound']}"
        if rnd.random() < 0.003:
            place += rare_place(rnd)
        lead = dept_names[sc.dept]
        yield {
            "number": f"H{created:%Y%m%d}{i + 1:07d}", "status": "archived" if rnd.random() < 0.7 else "closed",
            "created_at": created.isoformat(), "closed_at": (created + timedelta(days=rnd.randint(1, 15))).isoformat(),
            "channel": "电话", "caller_number": rnd.choice(numbers), "caller_name": rnd.choice(SURNAMES) + "女士",
            "category": sc.category, "subcategory": sc.subcategory, "confidential": rnd.random() < CONFIDENTIAL_SHARE,
            "emergency": sc.emergency, "handling_mode": sc.mode, "title": sc.title.format(**slots),
            "district": district, "matter_time": "昨天", "matter_place": place,
            "matter_course": sc.course.format(**slots), "matter_demand": sc.demand,
            "operator": f"{rnd.randint(1, 60):03d}", "lead_department": lead,
            "co_departments": [rnd.choice(others)] if rnd.random() < 0.1 else [],
            "reply_text": "已办理，已答复市民", "satisfaction": rnd.choice(["满意", "基本满意", "非常满意", "不满意"]),
        }


def fill(svc: Store, n: int, open_tickets: int) -> dict[str, float]:
    """History through the import path, open tickets through intake; the figures of both."""
    seed_demo(svc.engine, tickets=0)  # departments and the knowledge base
    with svc.engine.connect() as c:
        dept_names = {k: v for k, v in c.execute(sa.select(Department.short_name, Department.name))}
        dept_ids = {k: v for k, v in c.execute(sa.select(Department.short_name, Department.id))}
    admin = Principal("bench-admin", Role.ADMIN)
    t0 = time.perf_counter()
    last = [t0]

    def progress(r) -> None:
        if r.read % 100000 < 5000 and time.perf_counter() - last[0] > 5:
            last[0] = time.perf_counter()
            print(f"  … {r.imported} imported, {r.imported / (last[0] - t0):.0f}/s", flush=True)

    report = svc.imports.tickets(history(n, dept_names), admin, batch=5000, progress=progress)
    assert report.imported == n and not report.errors, report.errors[:5]
    imported_s = time.perf_counter() - t0
    operator = Principal("bench-op", Role.OPERATOR, job_number="088")
    rnd = random.Random(3)
    t1 = time.perf_counter()
    for i in range(open_tickets):
        sc = rnd.choice(SCENARIOS)
        slots = {"district": rnd.choice(DISTRICTS), "road": rnd.choice(ROADS), "road2": rnd.choice(ROADS),
                 "compound": rnd.choice(COMPOUNDS), "market": rnd.choice(MARKETS), "n": i % 30 + 1, "when": "今天"}
        t = svc.tickets.create({
            "category": sc.category, "subcategory": sc.subcategory, "title": sc.title.format(**slots),
            "caller_number": f"139{rnd.randint(10000000, 99999999)}", "caller_name": "李先生",
            "district": slots["district"], "matter_course": sc.course.format(**slots), "matter_demand": sc.demand,
            "confidential": rnd.random() < CONFIDENTIAL_SHARE, "handling_mode": sc.mode,
        }, operator)
        if i % 2 and sc.mode == "工单转办":
            svc.actions.transfer(t.id, dept_ids[sc.dept], "请按职责办理", operator)
    intake_s = time.perf_counter() - t1
    with svc.engine.begin() as c:
        c.execute(sa.text("ANALYZE"))
    return {"import_per_s": n / imported_s, "intake_per_s": open_tickets / max(intake_s, 1e-9)}


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float, int]:
    """p50 and p95 in milliseconds and the sample count (after a few warm-up calls)."""
    for _ in range(5):
        fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))], len(samples)


def queries(svc: Store, seed: int = 11) -> dict[str, Callable[[], object]]:
    """The query kinds, each drawing its argument afresh per call."""
    lead = Principal("bench-lead", Role.LEAD)
    rnd = random.Random(seed)
    with svc.engine.connect() as c:
        numbers = [n for (n,) in c.execute(sa.text("SELECT number FROM caller"))]
        places = [p for (p,) in c.execute(sa.text(
            "SELECT matter_place FROM ticket WHERE source = 'import' AND id % 7 = 0 LIMIT 200000"))]
        dept_ids = [i for (i,) in c.execute(sa.text("SELECT id FROM department"))]
    rare = sorted({p[-4:] for p in places if p[-2:] in RARE_TAILS and p[-4] in RARE_HEADS})
    assert rare, "the fill made no rare places"
    unseen = [f"136{rnd.randint(10000000, 99999999)}" for _ in range(1000)]

    def absent(k: int) -> str:
        return "".join(rnd.sample(ABSENT, k))

    def search(**q) -> Callable[[], object]:
        return lambda: svc.tickets.search(q, lead)

    def two_char() -> object:
        kind = rnd.randrange(3)
        word = rnd.choice(WORDS2) if kind == 0 else rnd.choice(rare)[:2] if kind == 1 else absent(2)
        return svc.tickets.search({"q": word}, lead)

    return {
        "lookup": lambda: svc.callers.summary(rnd.choice(unseen) if rnd.random() < 0.1 else rnd.choice(numbers)),
        "common": lambda: svc.tickets.search({"q": rnd.choice(WORDS4)}, lead),
        "rare": lambda: svc.tickets.search({"q": rnd.choice(rare)}, lead),
        "nomatch": lambda: svc.tickets.search({"q": absent(4)}, lead),
        "two_char": two_char,
        "two_char_nomatch": lambda: svc.tickets.search({"q": absent(2)}, lead),
        "list": lambda: svc.tickets.search({
            "status": [rnd.choice(["archived", "closed", "transferred"])],
            "category": rnd.choice(["投诉举报", "求助", "一般诉求"]),
            "department_id": rnd.choice(dept_ids) if rnd.random() < 0.5 else None,
            "created_from": (NOW - timedelta(days=rnd.randint(30, 365))).isoformat(),
            "page": rnd.randint(1, 5)}, lead),
    }


def check(svc: Store) -> None:
    """The answers are right before they are fast: a common word is found, absent words are not."""
    lead = Principal("bench-lead", Role.LEAD)
    common = svc.tickets.search({"q": "噪音扰民"}, lead)
    assert common.total > 0 and all("噪音扰民" in t.title + t.matter_course for t in common.items)
    assert svc.tickets.search({"q": ABSENT[:4]}, lead).total == 0
    assert svc.tickets.search({"q": ABSENT[:2]}, lead).total == 0
    water = svc.tickets.search({"q": "停水"}, lead)
    assert water.total > 0 and all("停水" in t.title + t.matter_course + t.matter_demand for t in water.items)


def measure(name: str, engine: sa.Engine, n: int, open_tickets: int, runs: int, rounds: int) -> dict[str, float]:
    svc = Store.on(StoreContext(engine, clock=lambda: NOW))
    print(f"[{name}] filling {n} tickets through the import path and {open_tickets} through intake …", flush=True)
    figures = fill(svc, n, open_tickets)
    print(f"[{name}] import {figures['import_per_s']:.0f} tickets/s, intake {figures['intake_per_s']:.0f}/s",
          flush=True)
    check(svc)
    with engine.connect() as c:
        secret = c.execute(sa.text("SELECT count(*) FROM ticket WHERE confidential")).scalar()
        before = c.execute(sa.text("SELECT count(*) FROM confidential_read")).scalar()
    print(f"[{name}] {secret} confidential tickets", flush=True)
    per_round: dict[str, list[tuple[float, float]]] = {}
    for r in range(rounds):  # whole rounds of every kind, so a moment of machine noise hits one round
        print(f"[{name}] round {r + 1} of {rounds} (load {load()})", flush=True)
        for key, fn in queries(svc, seed=11 + r).items():
            p50, p95, k = timed(fn, runs)
            per_round.setdefault(key, []).append((p50, p95))
            print(f"[{name}]   {key:16s} p50={p50:7.2f} ms  p95={p95:7.2f} ms  ({k} samples)", flush=True)
    for key, got in per_round.items():  # the median round of each kind
        figures[f"{key}_p50_ms"] = statistics.median(p50 for p50, _ in got)
        figures[f"{key}_p95_ms"] = statistics.median(p95 for _, p95 in got)
    with engine.connect() as c:
        figures["confidential_reads_logged"] = c.execute(sa.text("SELECT count(*) FROM confidential_read")).scalar() \
            - before
    return figures


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--open", type=int, default=2000, help="open tickets made through intake")
    ap.add_argument("--runs", type=int, default=400, help="timed calls per query kind and round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of every query kind on the same store")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--pg-url", default="", help="an existing empty PostgreSQL database (UTF-8) instead of a throwaway")
    ap.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench", help="where the databases are made")
    args = ap.parse_args(argv)
    workdir = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, float]] = {}
    print(f"load average before: {load()}", flush=True)
    for backend in args.backends.split(","):
        if backend == "sqlite":
            path = workdir / "store.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            engine = make_engine(f"sqlite:///{path}")
            migrate(engine)
            results["sqlite"] = measure("sqlite", engine, args.tickets, args.open, args.runs, args.rounds)
            engine.dispose()
            print(f"[sqlite] database {path.stat().st_size / 2**20:.0f} MiB", flush=True)
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
                results["postgres"] = measure("postgres", engine, args.tickets, args.open, args.runs, args.rounds)
                engine.dispose()
            finally:
                if server is not None:
                    server.stop()
                    shutil.rmtree(workdir / "pg", ignore_errors=True)
    print(f"load average after: {load()}", flush=True)
    (workdir / "store.json").write_text(json.dumps(results, indent=1))
    for name, f in results.items():
        print(f"{name}: " + " ".join(f"{k}={v:.2f}" for k, v in f.items()))
    s = results.get("sqlite")
    if s:
        print(f"tickets={args.tickets} lookup_p95_ms={s['lookup_p95_ms']:.2f} common_p95_ms={s['common_p95_ms']:.2f} "
              f"rare_p95_ms={s['rare_p95_ms']:.2f} nomatch_p95_ms={s['nomatch_p95_ms']:.2f} "
              f"two_char_p95_ms={s['two_char_p95_ms']:.2f} list_p95_ms={s['list_p95_ms']:.2f} "
              f"import_per_s={s['import_per_s']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast the supervisors' queries answer on a ledger of a realistic size.

    .venv/bin/python bench/ledger_queries.py                      # 100,000 cases, both databases
    .venv/bin/python bench/ledger_queries.py --cases 20000 --backend sqlite

Seeds a fresh ledger per database (bench/ledger_seed.py: cases over the past year, 10 events
each) — a temporary SQLite file and a schema of its own in the PostgreSQL at
BIHUAN_TEST_POSTGRES_URL, dropped afterwards — then times, through the same functions the API
calls, the queries a supervisor's day is made of: the case list's first page with filters, a
deep page, a text search, statistics by team for a month and by district for a year, a month
by week, the 吹哨报到 figures, and exports of 10,000 rows as CSV and xlsx. Each query runs
--repeat times after one warm-up; it prints p50, p95 and max in milliseconds, the export's time
and peak Python memory, and a last line per database to compare over time. Exits 1 when a target
is missed (lists and statistics p95 < 100 ms, export < 3 s).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from types import SimpleNamespace
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, text  # noqa: E402

from api.export import csv_stream, xlsx_stream  # noqa: E402
from api.routes.supervision import EXPORT_HEADERS, export_row  # noqa: E402
from bench.ledger_seed import seed  # noqa: E402
from config.catalog import DEFAULT_CONFIG_DIR, load_catalog  # noqa: E402
from domain.calendar import LHASA  # noqa: E402
from domain.models import Actor  # noqa: E402
from domain.roles import Role  # noqa: E402
from ledger.db import in_schema, make_engine  # noqa: E402
from ledger.migrate import upgrade  # noqa: E402
from ledger.queries import CaseFilter, Order, Sort, _encode, iter_cases, list_cases  # noqa: E402
from ledger.stats import case_stats, whistle_stats  # noqa: E402

POSTGRES_URL = os.environ.get("BIHUAN_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
QUERY_TARGET_MS, EXPORT_TARGET_S = 100.0, 3.0
SUPERVISOR = Actor(id="sup-1", name="督办科", role=Role.SUPERVISOR)


@contextmanager
def migrated(url: str) -> Iterator[Engine]:
    upgrade(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def sqlite_engine() -> Iterator[Engine]:
    with tempfile.TemporaryDirectory(prefix="bihuan-bench-") as directory, \
            migrated(f"sqlite:///{Path(directory) / 'ledger.db'}") as engine:
        yield engine


@contextmanager
def postgres_engine() -> Iterator[Engine]:
    schema = f"bihuan_bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        with migrated(in_schema(POSTGRES_URL, schema)) as engine:
            yield engine
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm-up: caches, prepared plans, pool
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, -(-len(ordered) * 95 // 100) - 1)]


def export(engine: Engine, catalog, filter: CaseFilter, fmt: str) -> tuple[float, int, int]:
    """Seconds and bytes of one export through the API's rows and writers, then the peak
    Python memory of a second one (traced apart: tracing slows every allocation)."""
    def write() -> int:
        with closing(iter_cases(engine, filter, SUPERVISOR)) as cases:
            rows = (export_row(case, catalog) for case in cases)
            chunks = (csv_stream(EXPORT_HEADERS, rows) if fmt == "csv"
                      else xlsx_stream(EXPORT_HEADERS, rows, "整改台账"))
            return sum(len(chunk) for chunk in chunks)

    start = time.perf_counter()
    size = write()
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    write()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, size, peak


def export_filter(engine: Engine, now: datetime, rows: int) -> CaseFilter:
    """The most recent days holding about `rows` cases: an export of a real selection."""
    with engine.connect() as conn:
        oldest = conn.execute(text("SELECT created_at FROM cases ORDER BY created_at DESC "
                                   f"LIMIT 1 OFFSET {rows - 1}")).scalar()
    if oldest is None:  # a ledger smaller than the export: all of it
        return CaseFilter()
    return CaseFilter(created_from=_aware(oldest), created_to=now + timedelta(days=1))


def run(backend: str, engine: Engine, args, catalog, now: datetime) -> bool:
    start = time.perf_counter()
    seeded = seed(engine, catalog, args.cases, args.events, now=now)
    print(f"\n== {backend}: seeded {seeded.cases:,} cases, {seeded.events:,} events, "
          f"{seeded.steps:,} steps, {seeded.spans:,} stage spans, {seeded.summons:,} summons "
          f"in {time.perf_counter() - start:.1f} s")
    team, district = "环境卫生", "城关区"
    local_now = now.astimezone(LHASA)
    month_start = (local_now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
                   - timedelta(days=1)).replace(day=1)
    month_end = local_now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    year_start = month_end.replace(year=month_end.year - 1)
    open_filter = CaseFilter(stage=["assigned", "rectifying", "verifying"], team=[team])
    # A cursor 20,000 rows down (or 80 % of a smaller ledger), as a reader paging far holds.
    depth = min(20_000, seeded.cases * 4 // 5)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT case_id, created_at FROM cases ORDER BY created_at DESC, "
                                f"case_id DESC LIMIT 1 OFFSET {depth}")).one()
    deep_cursor = _encode(Sort.CREATED, Order.DESC, SimpleNamespace(
        case_id=row[0], created_at=_aware(row[1])))
    district_leader = Actor(id="dl-1", name="区领导", role=Role.INSPECTOR, district=district)
    officer = Actor(id="o-1", name="专班", role=Role.OFFICER, team=team)

    queries: list[tuple[str, Callable[[], object]]] = [
        ("list: first page, open cases of a team", lambda: list_cases(
            engine, open_filter, SUPERVISOR, limit=50)),
        ("list: first page, overdue in a district", lambda: list_cases(
            engine, CaseFilter(overdue=True, district=district), SUPERVISOR, limit=50)),
        ("list: first page, a team officer's own", lambda: list_cases(
            engine, CaseFilter(), officer, sort=Sort.UPDATED, limit=50)),
        (f"list: a page {depth:,} rows deep", lambda: list_cases(
            engine, CaseFilter(), SUPERVISOR, limit=50, cursor=deep_cursor)),
        ("list: text search q=路灯, a month", lambda: list_cases(
            engine, CaseFilter(q="路灯", created_from=month_start, created_to=month_end),
            SUPERVISOR, limit=50)),
        ("list: sorted by deadline", lambda: list_cases(
            engine, CaseFilter(), SUPERVISOR, sort=Sort.DEADLINE, order=Order.ASC, limit=50)),
        ("stats: by team, one month", lambda: case_stats(
            engine, month_start, month_end, "team", None, SUPERVISOR)),
        ("stats: by district, one year", lambda: case_stats(
            engine, year_start, month_end, "district", None, SUPERVISOR)),
        ("stats: by street, a year by month, district leader", lambda: case_stats(
            engine, year_start, month_end, "street", "month", district_leader)),
        ("stats: one month by week", lambda: case_stats(
            engine, month_start, month_end, None, "week", SUPERVISOR)),
        ("stats: 吹哨报到, one year", lambda: whistle_stats(
            engine, year_start, month_end, SUPERVISOR)),
    ]
    ok = True
    print(f"{'query':52} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    summary = []
    for name, fn in queries:
        samples = timed(fn, args.repeat)
        slow = p95(samples) >= QUERY_TARGET_MS
        ok &= not slow
        print(f"{name:52} {statistics.median(samples):8.1f} {p95(samples):8.1f} "
              f"{max(samples):8.1f}{'  MISSED' if slow else ''}")
        summary.append(p95(samples))
    selection = export_filter(engine, now, args.export_rows)
    for fmt in ("csv", "xlsx"):
        seconds, size, peak = export(engine, catalog, selection, fmt)
        slow = seconds >= EXPORT_TARGET_S
        ok &= not slow
        print(f"export {args.export_rows:,} rows as {fmt:4}: {seconds:6.2f} s, "
              f"{size / 1e6:5.1f} MB, peak Python memory {peak / 1e6:5.1f} MB"
              f"{'  MISSED' if slow else ''}")
    print(f"ledger_queries backend={backend} cases={seeded.cases} "
          f"worst_p95_ms={max(summary):.1f} targets={'met' if ok else 'missed'}")
    return ok


def _aware(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10, help="events per case")
    parser.add_argument("--repeat", type=int, default=30, help="timed runs per query")
    parser.add_argument("--export-rows", type=int, default=10_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    catalog = load_catalog(DEFAULT_CONFIG_DIR)
    now = datetime.now(timezone.utc)
    ok = True
    if args.backend in ("sqlite", "both"):
        with sqlite_engine() as engine:
            ok &= run("sqlite", engine, args, catalog, now)
    if args.backend in ("postgresql", "both"):
        with postgres_engine() as engine:
            ok &= run("postgresql", engine, args, catalog, now)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

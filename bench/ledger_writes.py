"""The ledger write of one officer action, alone: what `Ledger.record` costs the worker.

Ordinary cases (open, accept, submit rectification, verify, evaluate, recheck brought forward,
recheck consolidated) are made by the domain's own state machine, as the workflow makes them,
and written into a migrated SQLite ledger (and PostgreSQL when it answers), in the order a busy
city interleaves them: one entry to a transaction, then in batches as the worker's group commit
writes entries that arrive together. Prints microseconds of wall and CPU time per write:
the projection runs in the worker, so every microsecond here is a microsecond less for
workflow tasks.

    .venv/bin/python bench/ledger_writes.py [--cases 300]
"""

import argparse
import os
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.ledger_queries import postgres_engine, sqlite_engine  # noqa: E402
from config.catalog import DEFAULT_CONFIG_DIR, load_catalog  # noqa: E402
from domain import lifecycle, notices  # noqa: E402
from domain.models import (Actor, CaseIntake, Command, LedgerEntry, Location,  # noqa: E402
                           Reporter, Source)
from domain.roles import Role  # noqa: E402
from ledger.repository import Ledger  # noqa: E402

# One at a time, as a lone officer's actions are written; and in the batches a busy worker
# commits together (ledger.group_commit).
BATCHES = (1, 4, 16)

HOTLINE = Actor(id="hotline-12345", name="12345热线平台", role=Role.HOTLINE)
OFFICER = Actor(id="o017", name="扎西", role=Role.OFFICER, team="环境卫生")
INSPECTOR = Actor(id="i003", name="卓玛", role=Role.INSPECTOR)
SUPERVISOR = Actor(id="s001", name="领导小组办公室", role=Role.SUPERVISOR)
LOOP = (("accept", OFFICER, {}),
        ("submit_rectification", OFFICER, {"report": "已清运并消杀", "evidence": ["https://img.example.org/case/1.jpg"]}),
        ("verify", INSPECTOR, {"passed": True, "note": "现场已清理"}),
        ("evaluate", HOTLINE, {"rating": "满意"}),
        ("bring_recheck_forward", SUPERVISOR, {"note": "抽查"}),
        ("recheck", INSPECTOR, {"result": "consolidated", "note": "未反弹"}))


def ordinary_case(catalog, opened_at: datetime) -> list[LedgerEntry]:
    case_id = f"hotline-{uuid.uuid4().hex[:12]}"
    policy = catalog.case_policy(catalog.category("exposed_garbage"), "normal")
    intake = CaseIntake(
        case_id=case_id, request_id=case_id, opened_at=opened_at, source=Source.HOTLINE,
        external_id=case_id.removeprefix("hotline-"), description="吉日巷口垃圾堆积三天无人清运",
        location=Location(district="城关区", street="八廓街道", address="吉日巷12号旁"),
        reporter=Reporter(name="王女士", phone="13800000000"), actor=HOTLINE, policy=policy,
        calendar=catalog.calendar)
    state, opened = lifecycle.open_case(intake)
    entries = [notices.ledger_entry(opened, state.snapshot())]
    for minutes, (kind, actor, fields) in enumerate(LOOP, start=1):
        command = Command(request_id=uuid.uuid4().hex, actor=actor,
                          payload={"kind": kind, **fields})
        event = lifecycle.apply(state, command, opened_at + timedelta(minutes=7 * minutes),
                                catalog.calendar)
        entries.append(notices.ledger_entry(event, state.snapshot()))
    return entries


def measure(name: str, engine, cases: list[list[LedgerEntry]], batch: int) -> float:
    """CPU µs per entry, written `batch` entries to a transaction."""
    ledger = Ledger(engine)
    # Interleaved as many cases in flight interleave them: step k of every case, then k + 1.
    entries = [case[step] for step in range(len(cases[0])) for case in cases]
    ledger.record(entries[0])  # connections and compiled statements, as a running worker has
    wall, cpu = time.perf_counter(), time.process_time()
    rest = entries[1:]
    for i in range(0, len(rest), batch):
        ledger.record_many(rest[i:i + batch])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    writes = len(entries) - 1
    print(f"   {name:<11} batch {batch:>3} {writes:>6} writes"
          f"   {wall / writes * 1e6:8.0f} µs wall   {cpu / writes * 1e6:8.0f} µs CPU per write")
    return cpu / writes * 1e6


def _suffix(batch: int) -> str:
    return "" if batch == 1 else f"_batch{batch}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    catalog = load_catalog(DEFAULT_CONFIG_DIR)
    start = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
    cases = [ordinary_case(catalog, start + timedelta(seconds=n)) for n in range(args.cases)]
    print(f"== ledger writes: {args.cases} ordinary cases, {len(cases[0])} entries each")
    cpu_us = {}
    for batch in BATCHES:
        with sqlite_engine() as engine:
            cpu_us[f"sqlite{_suffix(batch)}"] = measure("sqlite", engine, cases, batch)
    if not args.no_postgres:
        try:
            for batch in BATCHES:
                with postgres_engine() as engine:
                    cpu_us[f"postgresql{_suffix(batch)}"] = measure("postgresql", engine, cases,
                                                                    batch)
        except Exception as err:  # noqa: BLE001 — a machine without PostgreSQL measures SQLite
            print(f"   postgresql  not measured: {str(err).splitlines()[0][:100]}")
    print("\nledger_writes " + " ".join(f"{name}_cpu_us={us:.0f}" for name, us in cpu_us.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

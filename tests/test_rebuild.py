"""`bihuan rebuild`: the ledger re-projected from the workflows in a real dev server, into a
brand-new ledger (SQLite and PostgreSQL) and into a damaged one, through the function and the
command line."""

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from temporalio.client import Client, WorkflowHandle

from domain.models import Actor
from domain.roles import Role
from domain.stages import Stage
from domain.whistles import WhistleCommand, whistle_workflow_id
from ledger.db import make_engine
from ledger.rebuild import QUERY, CaseDifferences, RowDifference, rebuild
from ledger.repository import Ledger
from ledger.tables import Base, CaseEventRow, CaseRow, WhistleEventRow
from tests.conftest import postgres_ledger, sqlite_ledger
from tests.factories import DISPATCHER, INSPECTOR, OFFICER, SUPERVISOR
from tests.workflow_steps import act, case_worker, rectify, stage, starter, to_recheck_pending
from workflows.whistle import WhistleWorkflow

TASK_QUEUE = "rebuild-tests"
# Only this module's workflows: other modules' cases share the session's dev server.
OURS = f"{QUERY} AND TaskQueue = '{TASK_QUEUE}'"
ROOT = Path(__file__).resolve().parent.parent
HOUSING = "拉萨市住房和城乡建设局"
POWER = "国网拉萨供电公司"
OFFICERS = {HOUSING: Actor(id="dep-zj-01", name="张工", role=Role.DEPARTMENT, department=HOUSING),
            POWER: Actor(id="dep-gd-01", name="李工", role=Role.DEPARTMENT, department=POWER)}
# Written by the relay, not by the workflows: a rebuilt ledger starts them afresh.
NOT_PROJECTED = {"outbox_deliveries", "outbox_cursors"}


async def on_whistle(client: Client, case: WorkflowHandle, kind: str, department: str, **fields):
    command = WhistleCommand(request_id=uuid.uuid4().hex, actor=OFFICERS[department],
                             payload={"kind": kind, **fields})
    whistle = client.get_workflow_handle(whistle_workflow_id(case.id, 1))
    await whistle.execute_update(WhistleWorkflow.act, command, id=command.request_id)


async def blow(case: WorkflowHandle, departments: list[str]) -> None:
    await act(case, "whistle", OFFICER, whistle_kind="routine", whistle_kind_name="日常哨",
              report_in_limit="24h", departments=departments, reason="垃圾清运涉及管线，需联合处置")


async def poll(check, what: str, tries: int = 100) -> None:
    for _ in range(tries):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Ledger:
    return sqlite_ledger(tmp_path_factory.mktemp("original"))


@pytest.fixture(scope="module")
async def cases(dev_env, original, executor, catalog) -> dict[str, str]:
    """Five cases down different paths, written to `original` by a worker that keeps running."""
    client = dev_env.client
    async with case_worker(dev_env, original, executor, TASK_QUEUE) as started:
        # Opened as the API opens them: the openings are in no workflow's local activity.
        start = starter(dev_env, catalog, TASK_QUEUE, started, recorded_in=original)

        closed = await start()
        await to_recheck_pending(closed)
        await act(closed, "bring_recheck_forward", SUPERVISOR, note="节前抽查")
        await act(closed, "recheck", INSPECTOR, result="consolidated", note="未反弹")
        assert (await closed.result()).stage == Stage.CLOSED

        invalid = await start(category=None)
        await act(invalid, "reject", DISPATCHER, reason="非城市管理事项")
        assert (await invalid.result()).stage == Stage.INVALID

        verifying = await start()
        await act(verifying, "accept", OFFICER)
        await rectify(verifying)

        whistled = await start()  # a whistle run to the end, then rectified
        await act(whistled, "accept", OFFICER)
        await blow(whistled, [HOUSING, POWER])
        for department in (HOUSING, POWER):
            await on_whistle(client, whistled, "report_in", department, note="已到现场")
        for department in (HOUSING, POWER):
            await on_whistle(client, whistled, "report_done", department, note="已处置")

        async def back_to_rectifying() -> bool:
            return await stage(whistled) == Stage.RECTIFYING
        await poll(back_to_rectifying, "the case to leave its whistle")
        await rectify(whistled)

        escalated = await start()  # its whistle still open
        await act(escalated, "accept", OFFICER)
        await blow(escalated, [HOUSING])
        await on_whistle(client, escalated, "report_in", HOUSING)

        ids = dict(closed=closed.id, invalid=invalid.id, verifying=verifying.id,
                   whistled=whistled.id, escalated=escalated.id)
        expected = {*ids.values(), whistle_workflow_id(whistled.id, 1),
                    whistle_workflow_id(escalated.id, 1)}

        async def all_listed() -> bool:
            return {w.id async for w in client.list_workflows(OURS)} >= expected
        await poll(all_listed, "the dev server's visibility to list every workflow")
        yield ids


def contents(ledger: Ledger) -> dict[str, list[dict]]:
    """Every projected table, without autoincrement ids and the outbox's own clock."""
    tables = {}
    with ledger.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in NOT_PROJECTED:
                continue
            rows = [{k: v for k, v in row._mapping.items()
                     if k != "id" and (table.name, k) != ("outbox", "created_at")}
                    for row in conn.execute(select(table))]
            tables[table.name] = sorted(rows, key=lambda r: json.dumps(r, default=_utc))
    return tables


def _utc(value) -> str:
    # Backends hand back the same instant in different zones: sort both alike.
    return value.astimezone(timezone.utc).isoformat() if isinstance(value, datetime) else str(value)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh(request, tmp_path) -> Iterator[Ledger]:
    """An empty ledger, migrated."""
    if request.param == "sqlite":
        yield sqlite_ledger(tmp_path)
    else:
        with postgres_ledger() as ledger:
            yield ledger


async def test_rebuilds_a_brand_new_ledger_equal_to_the_original(dev_env, cases, original,
                                                                 fresh):
    report = await rebuild(dev_env.client, fresh, query=OURS)

    assert (report.failed, report.failures) == (0, {})
    assert (report.cases, report.whistles, report.differing) == (5, 2, 7)
    assert report.written == report.entries > 0
    assert set(report.differences) == set(cases.values())
    assert all(d.case_row and d.case_row.ledger_seq is None for d in report.differences.values())
    assert report.exit_code == 0
    want, got = contents(original), contents(fresh)
    assert all(want[t] for t in ("cases", "case_events", "whistles", "whistle_summons",
                                 "whistle_events", "outbox", "case_steps", "stage_spans"))
    assert got == want

    again = await rebuild(dev_env.client, fresh, query=OURS)
    assert (again.differences, again.written, again.exit_code) == ({}, 0, 0)
    assert "nothing to do" in again.summary()


async def test_reports_exactly_the_damage_then_repairs_it(dev_env, cases, original):
    before = contents(original)
    damaged, whistled, behind = cases["closed"], cases["whistled"], cases["verifying"]
    with original.engine.begin() as conn:
        conn.execute(delete(CaseEventRow).where(CaseEventRow.case_id == damaged,
                                                CaseEventRow.seq.in_([2, 3])))
        conn.execute(delete(WhistleEventRow).where(WhistleEventRow.case_id == whistled,
                                                   WhistleEventRow.whistle_no == 1,
                                                   WhistleEventRow.seq == 2))
        last_seq = conn.scalar(select(CaseRow.last_seq).where(CaseRow.case_id == behind))
        conn.execute(update(CaseRow).where(CaseRow.case_id == behind)
                     .values(last_seq=1, stage="assigned"))
    damage = contents(original)

    dry = await rebuild(dev_env.client, original, dry_run=True, query=OURS)
    assert dry.differences == {
        damaged: CaseDifferences(damaged, missing_events=[2, 3]),
        whistled: CaseDifferences(whistled, missing_whistle_events=[(1, 2)]),
        behind: CaseDifferences(behind, case_row=RowDifference(1, "assigned", last_seq,
                                                               "verifying")),
    }
    assert (dry.differing, dry.unrepairable, dry.written, dry.exit_code) == (3, 0, 0, 1)
    assert contents(original) == damage
    summary = dry.summary()
    assert f"{damaged}:\n    events missing: seq 2, 3" in summary
    assert f"{whistled}:\n    whistle #1 events missing: seq 2\n" in summary
    assert f"case row: ledger seq 1 assigned, Temporal seq {last_seq} verifying" in summary

    repair = await rebuild(dev_env.client, original, query=OURS)
    assert repair.differences == dry.differences
    assert (repair.written, repair.exit_code) == (4, 0)  # two events, one whistle event, a row
    assert contents(original) == before

    again = await rebuild(dev_env.client, original, query=OURS)
    assert (again.differences, again.written, again.exit_code) == ({}, 0, 0)


async def test_an_event_that_differs_is_reported_and_left(dev_env, cases, original):
    case_id = cases["invalid"]
    event = (CaseEventRow.case_id == case_id) & (CaseEventRow.seq == 2)
    with original.engine.begin() as conn:
        note = conn.scalar(select(CaseEventRow.note).where(event))
        conn.execute(update(CaseEventRow).where(event).values(note="改过的"))
    try:
        report = await rebuild(dev_env.client, original, case_id=case_id)
        assert report.differences == {
            case_id: CaseDifferences(case_id, differing_events={2: ["note"]})}
        assert report.exit_code == 1 and report.written == 0
        assert "event seq 2 differs in note (left as recorded)" in report.summary()
        assert original.history(case_id)[1].note == "改过的"
    finally:
        with original.engine.begin() as conn:
            conn.execute(update(CaseEventRow).where(event).values(note=note))


async def test_details_stop_at_the_limit_but_the_counts_do_not(dev_env, cases, tmp_path):
    report = await rebuild(dev_env.client, sqlite_ledger(tmp_path), dry_run=True, query=OURS,
                           detail_limit=2)
    # The two cases listed may have brought their whistles along; the rest is only counted.
    listed = sum(1 + len(d.whistle_rows) for d in report.differences.values())
    assert len(report.differences) == 2 and report.differing == 7
    assert report.unlisted == 7 - listed
    assert f"… and {7 - listed} more workflows that differ, not listed" in report.summary()


def bihuan_rebuild(*args: str, address: str, ledger_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BIHUAN_TEMPORAL_ADDRESS": address, "BIHUAN_TEMPORAL_NAMESPACE": "bihuan",
           "BIHUAN_LEDGER_URL": ledger_url}
    return subprocess.run([sys.executable, "-m", "cli.main", "rebuild", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


async def test_command_line_rebuilds_one_case_into_a_new_database(dev_env, cases, original,
                                                                  tmp_path):
    address = dev_env.client.service_client.config.target_host
    url = f"sqlite:///{tmp_path / 'var' / 'rebuilt.db'}"  # not there yet: migrated first
    case_id = cases["whistled"]

    def run(*args: str, at: str = address, ledger: str = url) -> subprocess.CompletedProcess:
        return bihuan_rebuild(*args, address=at, ledger_url=ledger)

    dry = await asyncio.to_thread(run, "--dry-run", "--case", case_id)
    assert dry.returncode == 1, dry.stderr
    assert "1 cases and 1 whistles replayed" in dry.stdout
    seqs = ", ".join(str(e.seq) for e in original.history(case_id))
    assert f"{case_id}:\n    events missing: seq {seqs}\n" in dry.stdout

    done = await asyncio.to_thread(run, "--case", case_id)
    assert done.returncode == 0, done.stderr
    rebuilt = Ledger(make_engine(url))
    assert rebuilt.history(case_id) == original.history(case_id)
    assert rebuilt.whistle_history(case_id) == original.whistle_history(case_id)
    assert rebuilt.case(case_id) == original.case(case_id)
    rebuilt.engine.dispose()

    again = await asyncio.to_thread(run, "--case", case_id)
    assert again.returncode == 0 and "nothing to do" in again.stdout

    unknown = await asyncio.to_thread(run, "--case", "hotline-no-such-case")
    assert unknown.returncode == 2
    assert "case hotline-no-such-case is not in Temporal" in unknown.stderr

    unreachable = await asyncio.to_thread(run, "--dry-run", at="127.0.0.1:1")
    assert unreachable.returncode == 2
    assert "cannot reach Temporal at 127.0.0.1:1" in unreachable.stderr

    no_ledger = await asyncio.to_thread(
        run, "--dry-run", ledger="postgresql+psycopg://bihuan:hunter2@127.0.0.1:1/ledger")
    assert no_ledger.returncode == 2
    assert "bihuan rebuild: ledger postgresql+psycopg://bihuan:***@127.0.0.1:1/ledger: " \
        in no_ledger.stderr
    assert "hunter2" not in no_ledger.stderr

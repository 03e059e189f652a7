"""The ledger on SQLite and on PostgreSQL: idempotent projection, order, and a case driven by a
real workflow into each."""

from datetime import datetime, timedelta, timezone

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain import lifecycle, whistles
from domain.models import Actor, LedgerEntry
from domain.roles import Role
from domain.whistles import WhistleCommand, WhistleEntry
from ledger.tables import Base, CaseEventRow, CaseStepRow, StageSpanRow, WhistleSummonsRow
from runtime.worker import build_worker
from tests.factories import HOTLINE, INSPECTOR, OFFICER, SUPERVISOR, cmd, intake, policy
from runtime.cases import start_case
from workflows.case import CaseWorkflow

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def transitions(catalog):
    """Entries as the workflow would produce them: open, accept, submit."""
    state, opened = lifecycle.open_case(intake(policy(catalog), opened_at=T0))
    entries = [LedgerEntry(event=opened, state=state.model_copy(deep=True))]
    for minutes, command in ((5, cmd("accept", OFFICER)),
                             (90, cmd("submit_rectification", OFFICER, report="已清运并消杀"))):
        event = lifecycle.apply(state, command, T0 + timedelta(minutes=minutes), catalog.calendar)
        entries.append(LedgerEntry(event=event, state=state.model_copy(deep=True)))
    return entries


def event_rows(ledger, case_id: str) -> int:
    with Session(ledger.engine) as session:
        return session.scalar(select(func.count()).select_from(CaseEventRow)
                              .where(CaseEventRow.case_id == case_id))


def test_recording_twice_writes_once(any_ledger, catalog):
    entries = transitions(catalog)
    for entry in entries + entries:
        any_ledger.record(entry)
    case_id = entries[0].event.case_id
    assert event_rows(any_ledger, case_id) == 3
    assert [e.action.value for e in any_ledger.history(case_id)] == \
        ["open", "accept", "submit_rectification"]
    assert any_ledger.case(case_id).stage.value == "verifying"


def test_an_older_entry_arriving_late_does_not_roll_the_case_back(any_ledger, catalog):
    first, second, third = transitions(catalog)
    for entry in (first, third, second):
        any_ledger.record(entry)
    case_id = first.event.case_id
    assert any_ledger.case(case_id).stage.value == "verifying"
    assert [e.seq for e in any_ledger.history(case_id)] == [1, 2, 3]


def test_what_is_read_back_is_what_was_written(any_ledger, catalog):
    entries = transitions(catalog)
    for entry in entries:
        any_ledger.record(entry)
    case_id = entries[0].event.case_id
    state = any_ledger.case(case_id)
    assert state == entries[-1].state
    assert state.created_at == T0 and state.created_at.tzinfo is not None
    events = any_ledger.history(case_id)
    assert events == [e.event for e in entries]
    assert events[0].note == "吉日巷口垃圾堆积三天无人清运"
    assert any_ledger.case_id_for("hotline", state.external_id) == case_id
    assert any_ledger.case_id_for("grid", state.external_id) is None
    assert any_ledger.case("hotline-unknown") is None and any_ledger.history("hotline-unknown") == []


async def test_a_real_case_projects_into_the_ledger(any_ledger, time_env, executor, catalog):
    task_queue = f"ledger-{any_ledger.engine.dialect.name}"
    async with build_worker(time_env.client, task_queue, any_ledger, executor):
        case = intake(policy(catalog))
        handle = await start_case(time_env.client, case, task_queue)
        for kind, actor, fields in (("accept", OFFICER, {}),
                                    ("submit_rectification", OFFICER, {"report": "已整改"}),
                                    ("verify", INSPECTOR, {"passed": True}),
                                    ("evaluate", HOTLINE, {"rating": "基本满意"})):
            await handle.execute_update(CaseWorkflow.act, cmd(kind, actor, **fields))
        # Left waiting for its 回头看, its timer would fire for no worker when a later module
        # skips time on this shared server.
        await handle.terminate(reason="end of test")
    state = any_ledger.case(case.case_id)
    assert state.stage.value == "recheck_pending" and state.rating.value == "basically_satisfied"
    assert [e.to_stage.value for e in any_ledger.history(case.case_id)] == [
        "assigned", "rectifying", "verifying", "evaluating", "recheck_pending"]


def test_steps_and_stage_spans_are_projected_for_the_statistics(any_ledger, catalog):
    ledger = any_ledger
    entries = transitions(catalog)
    for entry in entries + entries[::-1]:  # retried, and late arrivals of older entries
        ledger.record(entry)
    with ledger.engine.connect() as conn:
        steps = conn.execute(select(CaseStepRow).order_by(CaseStepRow.position)).all()
        spans = conn.execute(select(StageSpanRow).order_by(StageSpanRow.seq)).all()
    assert [(s.step, s.completed_by, s.late) for s in steps] == [
        ("accept", "accept", False), ("rectify", "submit_rectification", False),
        ("verify", None, False)]
    assert [(s.stage, s.seconds) for s in spans] == [("assigned", 300.0), ("rectifying", 5100.0)]


def test_whistle_records_are_idempotent_and_keep_each_department(any_ledger):
    start = whistles.WhistleStart(
        case_id="hotline-w1", whistle_no=1, request_id="w1", kind="routine", kind_name="日常哨",
        reason="联合处置", departments=["拉萨市水利局", "拉萨市自来水公司"], report_in_limit="24h",
        blown_by=OFFICER, blown_at=T0)
    state, summoned = whistles.start(start)
    entries = [WhistleEntry(event=summoned, state=state.model_copy(deep=True))]
    water = Actor(id="dep-sl-01", name="赵工", role=Role.DEPARTMENT, department="拉萨市水利局")
    for when, who, kind, fields in ((T0 + timedelta(minutes=20), water, "report_in", {}),
                                    (T0 + timedelta(hours=2), SUPERVISOR, "end_whistle",
                                     {"reason": "转常规"})):
        command = WhistleCommand(request_id=f"r-{kind}", actor=who, payload={"kind": kind, **fields})
        event = whistles.apply(state, command, when, start.calendar)
        entries.append(WhistleEntry(event=event, state=state.model_copy(deep=True)))
    for entry in entries + entries[::-1]:  # retried and out of order
        any_ledger.record_whistle(entry)
    (recorded,) = any_ledger.whistles("hotline-w1")
    assert recorded.status == "ended" and recorded.summons[0].reported_at is not None
    assert [e.action.value for e in any_ledger.whistle_history("hotline-w1")] == [
        "summon", "report_in", "end_whistle"]
    with any_ledger.engine.connect() as conn:
        rows = conn.execute(select(WhistleSummonsRow.department, WhistleSummonsRow.reported_at)
                            .order_by(WhistleSummonsRow.department)).all()
    assert [(d, r is not None) for d, r in rows] == [("拉萨市水利局", True), ("拉萨市自来水公司", False)]


def test_the_migrations_build_exactly_the_tables_the_code_declares(any_ledger):
    """Columns, types, indexes and keys: a model changed without its migration shows here."""
    with any_ledger.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_a_sqlite_ledger_syncs_every_commit_to_disk(ledger):
    """A commit the worker reported must survive a power cut: write-ahead log, synced at every
    commit (synchronous=FULL, 2), on every connection the engine hands out."""
    with ledger.engine.connect() as connection:
        cursor = connection.connection.cursor()
        assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cursor.execute("PRAGMA synchronous").fetchone()[0] == 2

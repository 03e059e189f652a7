"""Writes and reads of the ledger.

`record` is the only writer and is idempotent: an event is keyed by (case_id, seq) and the case
row only moves forward in seq, so a retried or replayed activity changes nothing the second time.
Its notifications go to the outbox in the same transaction, keyed by their event_id.
"""

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone

from sqlalchemy import Connection, Engine, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from domain.actions import Action
from domain.models import CaseEvent, CaseIntake, CaseState, LedgerEntry
from domain.whistles import WhistleEntry, WhistleEvent, WhistleState
from ledger import hotline, outbox, rollups
from ledger.prepared import Prepared
from ledger.tables import (STAGE_TIME_COLUMNS, CaseEventRow, CaseRow, CaseStartRow, CaseStateRow,
                           CaseStepRow, StageSpanRow, WhistleEventRow, WhistleRow,
                           WhistleSummonsRow)

_INSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
# The API's reads of one case, built once: a statement built per call cost more than the read.
_CASE_STATE = select(CaseStateRow.state).where(CaseStateRow.case_id == bindparam("case_id"))
_CASE_ID_FOR = select(CaseRow.case_id).where(
    CaseRow.source == bindparam("source"), CaseRow.external_id == bindparam("external_id")
).limit(1)


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = _INSERT[engine.dialect.name]
        # Statements built once and executed with parameters: building one per write (values,
        # the excluded alias) cost more than the write itself, and compiled forms are reused.
        self._statements: dict[tuple, Prepared] = {}
        # SQLite takes one writer at a time. Writers of this process queue here and the next
        # starts as soon as one commits; left to SQLite, they sleep and poll (tails of seconds
        # with many cases writing at once).
        self._one_writer = threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        # Reads of what record wrote to the outbox (for_case), for the API and tests.
        self.outbox = outbox.Outbox(engine)

    def record(self, entry: LedgerEntry, start: CaseIntake | None = None) -> None:
        """Write one entry. With `start`, the case's workflow is owed a start: noted in the same
        transaction (runtime.cases.record_and_start), until `cases_started`."""
        with self._writing() as connection:
            rollups.add(connection, self._insert, self._record(connection, entry, start))

    def record_many(self, entries: Sequence[LedgerEntry]) -> None:
        """Write entries in one transaction (all of them or, on an error, none), their roll-up
        changes added up first: entries written together mostly touch the same rows."""
        with self._writing() as connection:
            # In case order: on PostgreSQL each case's lock is held until the commit, and two
            # batches taking them in the same order do not deadlock.
            changes = [self._record(connection, entry)
                       for entry in sorted(entries, key=lambda e: (e.event.case_id, e.event.seq))]
            rollups.add(connection, self._insert, rollups.combined(changes))

    def _record(self, connection: Connection, entry: LedgerEntry,
                start: CaseIntake | None = None) -> rollups.Change:
        """Write one entry's rows; what it changes in the roll-ups is returned, for the caller
        to add."""
        event, case = _event_values(entry.event), _case_values(entry.state)
        if start is not None:
            self._new_only(CaseStartRow, ("case_id",)).run(connection, dict(
                case_id=start.case_id, intake=start.model_dump(mode="json"),
                recorded_at=datetime.now(timezone.utc)))
        if self.engine.dialect.name == "postgresql":
            # One writer per case at a time, so the roll-up difference below is taken
            # against what no concurrent write of the same case is changing.
            connection.execute(select(func.pg_advisory_xact_lock(
                func.hashtext(entry.event.case_id))))
        # A write first: on SQLite it takes the database's write lock before the reads.
        self._new_only(CaseEventRow, ("case_id", "seq")).run(connection, event)
        before = after = rollups.read_facts(connection, entry.event.case_id)
        if self._advance(connection, CaseRow, case, ["case_id"]):
            after = rollups.facts_of(case)
            self._replace(connection, CaseStateRow, [dict(
                case_id=case["case_id"], last_seq=case["last_seq"],
                state=entry.state.model_dump(mode="json"))], ["case_id"])
            self._replace(connection, CaseStepRow, _step_values(entry.state),
                          ["case_id", "position"])
        span = _span_values(entry)
        added = None
        if span and self._new_only(StageSpanRow, ("case_id", "seq"),
                                   returning="seq").run(connection, span):
            added = (span["seq"], (span["stage"], span["bucket"], span["seconds"]))
        # Same transaction: a notification is stored exactly when its event is. Hotline
        # callbacks are derived here, not in the workflow, so recorded histories replay as
        # they are and a rebuild recreates them too.
        outbox.add(connection, entry.notifications + hotline.callbacks(connection, entry),
                   self._insert)
        return rollups.change(connection, entry.event.case_id, before, after, added)

    def cases_started(self, case_ids: Sequence[str]) -> None:
        """Clear the start notes of cases whose workflows are known to have started."""
        with self._writing() as connection:
            connection.execute(delete(CaseStartRow).where(CaseStartRow.case_id.in_(case_ids)))

    def start_pending(self, case_id: str) -> bool:
        with Session(self.engine) as session:
            return session.get(CaseStartRow, case_id) is not None

    def pending_starts(self, recorded_before: datetime, limit: int) -> list[CaseIntake]:
        """Cases recorded before `recorded_before` whose workflows are not known to have
        started, oldest first."""
        with Session(self.engine) as session:
            rows = session.scalars(select(CaseStartRow.intake)
                                   .where(CaseStartRow.recorded_at < recorded_before)
                                   .order_by(CaseStartRow.recorded_at).limit(limit))
            return [CaseIntake.model_validate(row) for row in rows]

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        # A plain connection, not an ORM session: no statement of a write loads an object, and
        # the session's bookkeeping cost a fifth of the write.
        with self._one_writer, self.engine.begin() as connection:
            yield connection

    def _advance(self, connection: Connection, table, values: dict, keys: list[str]) -> bool:
        """Insert the row, or overwrite it only with a newer last_seq; whether it moved, read
        from RETURNING (the same on both databases, where an upsert's rowcount is not)."""
        return bool(self._upsert(table, tuple(values), tuple(keys), advance=True).run(
            connection, values))

    def _replace(self, connection: Connection, table, rows: list[dict], keys: list[str]) -> None:
        """Insert or overwrite rows, in one round trip."""
        if not rows:
            return
        self._upsert(table, tuple(rows[0]), tuple(keys), advance=False).run(connection, rows)

    def _upsert(self, table, columns: tuple[str, ...], keys: tuple[str, ...],
                advance: bool) -> Prepared:
        cache_key = (table.__tablename__, columns, keys, advance)
        statement = self._statements.get(cache_key)
        if statement is None:
            t = table.__table__
            insert = self._insert(t)
            statement = insert.on_conflict_do_update(
                index_elements=list(keys),
                set_={c: insert.excluded[c] for c in columns if c not in keys},
                where=t.c.last_seq < insert.excluded.last_seq if advance else None)
            if advance:
                statement = statement.returning(t.c.last_seq)
            statement = self._statements[cache_key] = Prepared(statement)
        return statement

    def _new_only(self, table, keys: tuple[str, ...], returning: str | None = None) -> Prepared:
        """Insert unless a row with these keys exists; with `returning`, that column of the row
        inserted, none when it existed."""
        cache_key = (table.__tablename__, keys, returning)
        statement = self._statements.get(cache_key)
        if statement is None:
            statement = self._insert(table.__table__).on_conflict_do_nothing(
                index_elements=list(keys))
            if returning:
                statement = statement.returning(table.__table__.c[returning])
            statement = self._statements[cache_key] = Prepared(statement)
        return statement

    def record_whistle(self, entry: WhistleEntry) -> None:
        """A whistle's event, its record and its departments' rows; idempotent like `record`."""
        e, w = entry.event, entry.state
        with self._writing() as connection:
            self._new_only(WhistleEventRow, ("case_id", "whistle_no", "seq")).run(connection, dict(
                case_id=e.case_id, whistle_no=e.whistle_no, seq=e.seq, request_id=e.request_id,
                action=e.action.value, department=e.department, occurred_at=e.occurred_at,
                note=e.note, evidence=e.evidence, payload=e.payload,
                actor=e.actor.model_dump(mode="json", exclude_none=True)))
            whistle = dict(case_id=w.case_id, whistle_no=w.whistle_no, workflow_id=w.workflow_id,
                           kind=w.kind, status=w.status, reason=w.reason, blown_by=w.blown_by.id,
                           blown_at=w.blown_at, closed_at=w.closed_at, last_seq=w.seq,
                           state=w.model_dump(mode="json"))
            if self._advance(connection, WhistleRow, whistle, ["case_id", "whistle_no"]):
                parts = [dict(case_id=w.case_id, whistle_no=w.whistle_no,
                              department=s.department, kind=w.kind, summoned_at=s.summoned_at,
                              due_at=s.due_at, reported_at=s.reported_at, late=s.late,
                              reminders=s.reminders, done_at=s.done_at) for s in w.summons]
                self._replace(connection, WhistleSummonsRow, parts,
                              ["case_id", "whistle_no", "department"])
            outbox.add(connection, entry.notifications, self._insert)

    def whistles(self, case_id: str) -> list[WhistleState]:
        with Session(self.engine) as session:
            states = session.scalars(select(WhistleRow.state).where(WhistleRow.case_id == case_id)
                                     .order_by(WhistleRow.whistle_no)).all()
        return [WhistleState.model_validate(s) for s in states]

    def whistle_history(self, case_id: str) -> list[WhistleEvent]:
        with Session(self.engine) as session:
            rows = session.scalars(select(WhistleEventRow)
                                   .where(WhistleEventRow.case_id == case_id)
                                   .order_by(WhistleEventRow.whistle_no,
                                             WhistleEventRow.seq)).all()
        return [WhistleEvent(case_id=r.case_id, whistle_no=r.whistle_no, seq=r.seq,
                             request_id=r.request_id, action=r.action, actor=r.actor,
                             department=r.department, occurred_at=r.occurred_at, note=r.note,
                             evidence=r.evidence, payload=r.payload) for r in rows]

    def case(self, case_id: str) -> CaseState | None:
        with self.engine.connect() as connection:
            state = connection.scalar(_CASE_STATE, {"case_id": case_id})
        return CaseState.model_validate(state) if state is not None else None

    def case_id_for(self, source: str, external_id: str) -> str | None:
        with self.engine.connect() as connection:
            return connection.scalar(_CASE_ID_FOR, {"source": source,
                                                    "external_id": external_id})

    def history(self, case_id: str) -> list[CaseEvent]:
        with Session(self.engine) as session:
            rows = session.scalars(select(CaseEventRow).where(CaseEventRow.case_id == case_id)
                                   .order_by(CaseEventRow.seq)).all()
        return [CaseEvent(case_id=r.case_id, seq=r.seq, request_id=r.request_id, action=r.action,
                          actor=r.actor, from_stage=r.from_stage, to_stage=r.to_stage,
                          occurred_at=r.occurred_at, round=r.round, note=r.note,
                          evidence=r.evidence, payload=r.payload) for r in rows]


def _case_values(s: CaseState) -> dict:
    values = dict(
        case_id=s.case_id, source=s.source.value, external_id=s.external_id,
        category=s.category, team=s.team, urgency=s.urgency.value,
        district=s.location.district, street=s.location.street,
        community=s.location.community, address=s.location.address,
        description=s.description, stage=s.stage.value, round=s.round, rebounds=s.rebounds,
        rating=s.rating.value if s.rating else None, overdue=s.overdue,
        whistles=len(s.whistles), rechecks=s.rechecks, first_verification=s.first_verification,
        evaluation=s.evaluation, opened_by=s.opened_by, departments=_departments(s),
        **_step_counts(s),
        due_at=s.clock.due_at if s.clock else None, created_at=s.created_at,
        updated_at=s.updated_at, last_seq=s.seq)
    for stage in STAGE_TIME_COLUMNS:
        values[f"{stage}_at"] = s.stage_times.get(stage)
    return values


def _step_values(s: CaseState) -> list[dict]:
    return [dict(case_id=s.case_id, position=position, step=clock.step, round=clock.round,
                 limit=clock.limit, started_at=clock.started_at, due_at=clock.due_at,
                 original_due_at=clock.original_due_at, overdue_at=clock.overdue_at,
                 overdue=clock.overdue, extensions=clock.extensions,
                 completed_at=clock.completed_at,
                 completed_by=clock.completed_by.value if clock.completed_by else None,
                 late=clock.late)
            for position, clock in enumerate(s.steps)]


def _step_counts(s: CaseState) -> dict[str, int]:
    signed = [c for c in s.steps if c.step == "accept" and c.completed_by == Action.ACCEPT]
    submitted = [c for c in s.steps
                 if c.step == "rectify" and c.completed_by == Action.SUBMIT_RECTIFICATION]
    return dict(accept_signed=len(signed), accept_on_time=sum(not c.late for c in signed),
                rectify_submitted=len(submitted),
                rectify_on_time=sum(not c.late for c in submitted))


def _departments(s: CaseState) -> str:
    names = sorted(set(s.policy.departments if s.policy else []) | s.summoned_departments)
    return f"|{'|'.join(names)}|" if names else ""


def _span_values(entry: LedgerEntry) -> dict | None:
    """The stage the event left and how long the case was in it."""
    e, s = entry.event, entry.state
    if e.from_stage is None or e.from_stage == e.to_stage or e.from_stage not in s.stage_times:
        return None
    entered = s.stage_times[e.from_stage]
    seconds = (e.occurred_at - entered).total_seconds()
    return dict(case_id=e.case_id, seq=e.seq, stage=e.from_stage.value, entered_at=entered,
                left_at=e.occurred_at, seconds=seconds, bucket=rollups.bucket(seconds))


def _event_values(e: CaseEvent) -> dict:
    return dict(
        case_id=e.case_id, seq=e.seq, request_id=e.request_id, action=e.action.value,
        actor_id=e.actor.id, actor_name=e.actor.name, actor_role=e.actor.role.value,
        actor_team=e.actor.team, actor_department=e.actor.department,
        from_stage=e.from_stage.value if e.from_stage else None, to_stage=e.to_stage.value,
        round=e.round, occurred_at=e.occurred_at, note=e.note, evidence=e.evidence,
        payload=e.payload, actor=e.actor.model_dump(mode="json", exclude_none=True))

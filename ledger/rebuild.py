"""Rebuild the ledger from the workflows still in Temporal, and report how it differed.

The ledger is a projection: every row in it was handed over by a workflow, as the argument of
a local activity (`LedgerActivities.record(LedgerEntry)`, `record_whistle(WhistleEntry)`).
Replaying a workflow's history runs the same workflow code on the same inputs, so it builds the
very same entries again. A workflow interceptor catches each one as the workflow passes it to
`start_local_activity`; the activity itself does not run during a replay (its result is read
from the history's marker). A case whose opening the API recorded before starting it
(`CaseIntake.opening_recorded`) hands over no opening entry: it is derived from the intake the
history starts with, as the API derived it. The caught entries are exactly what the ledger
should hold: what is missing is written through the ordinary idempotent writer, in order.

What rebuild never does: overwrite an event that is there but differs (events are an
append-only record; the report names it), or delete anything. The ledger outlives Temporal's
retention, so cases Temporal no longer holds are simply not looked at.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio import workflow
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import (ExecuteWorkflowInput, Interceptor, Replayer,
                               StartLocalActivityInput,
                               WorkflowInboundInterceptor, WorkflowInterceptorClassInput,
                               WorkflowOutboundInterceptor)

from domain.models import CaseIntake, LedgerEntry
from domain.notices import opening_entry
from domain.whistles import WhistleEntry
from ledger.repository import Ledger
from ledger.tables import CaseRow, WhistleRow
from workflows.case import CaseWorkflow
from workflows.whistle import WhistleWorkflow

# Every workflow that writes to the ledger.
QUERY = "WorkflowType IN ('CaseWorkflow', 'WhistleWorkflow')"
# The activity names the workflows hand their entries to (activities/ledger.py).
LEDGER_ACTIVITIES = frozenset({"record_case_event", "record_whistle_event"})
_CAPTURE = "bihuan_rebuild_capture"


class RebuildError(Exception):
    """Temporal could not be read: nothing after the point of failure was compared."""


# ---- the report ------------------------------------------------------------------------------

@dataclass(frozen=True)
class RowDifference:
    """A case row (status = stage) or a whistle row not at Temporal's newest seq and status."""
    ledger_seq: int | None  # None: the row is missing
    ledger_status: str | None
    temporal_seq: int
    temporal_status: str

    @property
    def repairable(self) -> bool:
        # Rows only move forward: one that is missing or behind is brought up to date; one that
        # is ahead of Temporal, or at the same seq with another status, is left for a person.
        return self.ledger_seq is None or self.ledger_seq < self.temporal_seq

    def __str__(self) -> str:
        ledger = ("missing" if self.ledger_seq is None
                  else f"seq {self.ledger_seq} {self.ledger_status}")
        return f"ledger {ledger}, Temporal seq {self.temporal_seq} {self.temporal_status}"


@dataclass
class CaseDifferences:
    """How one case's rows (and its whistles' rows) differ from its workflows' entries."""
    case_id: str
    missing_events: list[int] = field(default_factory=list)  # seqs
    # seq -> the fields that differ; never overwritten
    differing_events: dict[int, list[str]] = field(default_factory=dict)
    case_row: RowDifference | None = None
    missing_whistle_events: list[tuple[int, int]] = field(default_factory=list)  # (no, seq)
    differing_whistle_events: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    whistle_rows: dict[int, RowDifference] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.missing_events or self.differing_events or self.case_row
                    or self.missing_whistle_events or self.differing_whistle_events
                    or self.whistle_rows)

    @property
    def unrepairable(self) -> bool:
        """Differences writing the missing entries does not remove."""
        rows = [self.case_row, *self.whistle_rows.values()]
        return bool(self.differing_events or self.differing_whistle_events
                    or any(r and not r.repairable for r in rows))

    def merge(self, other: "CaseDifferences") -> None:
        self.missing_events += other.missing_events
        self.differing_events.update(other.differing_events)
        self.case_row = other.case_row or self.case_row
        self.missing_whistle_events += other.missing_whistle_events
        self.differing_whistle_events.update(other.differing_whistle_events)
        self.whistle_rows.update(other.whistle_rows)

    def lines(self) -> list[str]:
        out = []
        if self.missing_events:
            out.append(f"events missing: seq {', '.join(map(str, self.missing_events))}")
        for seq, fields in self.differing_events.items():
            out.append(f"event seq {seq} differs in {', '.join(fields)} (left as recorded)")
        if self.case_row:
            out.append(f"case row: {self.case_row}")
        for no in sorted({no for no, _ in self.missing_whistle_events}):
            seqs = [str(seq) for n, seq in self.missing_whistle_events if n == no]
            out.append(f"whistle #{no} events missing: seq {', '.join(seqs)}")
        for (no, seq), fields in self.differing_whistle_events.items():
            out.append(f"whistle #{no} event seq {seq} differs in {', '.join(fields)} "
                       "(left as recorded)")
        for no, row in self.whistle_rows.items():
            out.append(f"whistle #{no} row: {row}")
        return out


@dataclass
class RebuildReport:
    dry_run: bool
    cases: int = 0          # CaseWorkflow histories replayed
    whistles: int = 0       # WhistleWorkflow histories replayed
    entries: int = 0        # ledger entries the replays produced
    written: int = 0        # of those, written to the ledger now
    differing: int = 0      # workflows whose entries the ledger did not match (before writing)
    unrepairable: int = 0   # of those, with differences rebuild leaves (see CaseDifferences)
    failed: int = 0         # histories that could not be replayed: nothing of them was written
    seconds: float = 0.0
    # The details, per case, of the first `detail_limit` cases that differed and workflows that
    # failed: a brand-new ledger differs in every case, and memory should not grow with that.
    differences: dict[str, CaseDifferences] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # workflow id -> why
    detail_limit: int = 100
    unlisted: int = 0       # differing workflows past the limit, counted only

    @property
    def exit_code(self) -> int:
        """0: the ledger now matches Temporal; 1: differences remain (a dry run found some,
        or some rebuild does not overwrite); 2: a history could not be replayed."""
        if self.failed:
            return 2
        return 1 if self.unrepairable or (self.dry_run and self.differing) else 0

    def add(self, diff: CaseDifferences | None, written: int) -> None:
        self.written += written
        if not diff:
            return
        self.differing += 1
        self.unrepairable += diff.unrepairable
        if diff.case_id in self.differences:  # a case and its whistles are separate workflows
            self.differences[diff.case_id].merge(diff)
        elif len(self.differences) < self.detail_limit:
            self.differences[diff.case_id] = diff
        else:
            self.unlisted += 1

    def fail(self, workflow_id: str, why: str) -> None:
        self.failed += 1
        if len(self.failures) < self.detail_limit:
            self.failures[workflow_id] = why

    def summary(self) -> str:
        rate = (self.cases + self.whistles) / self.seconds if self.seconds else 0.0
        out = [f"重建台账 rebuild{' (dry run: nothing written)' if self.dry_run else ''}: "
               f"{self.cases} cases and {self.whistles} whistles replayed, "
               f"{self.entries} entries in {self.seconds:.1f}s ({rate:.0f} workflows/s)"]
        for case_id, diff in self.differences.items():
            out.append(f"  {case_id}:")
            out.extend(f"    {line}" for line in diff.lines())
        for workflow_id, why in self.failures.items():
            out.append(f"  {workflow_id}: could not be replayed, left untouched: {why}")
        if self.unlisted:
            out.append(f"  … and {self.unlisted} more workflows that differ, not listed")
        if self.failed > len(self.failures):
            out.append(f"  … and {self.failed - len(self.failures)} more that could not be "
                       "replayed, not listed")
        if not self.differing and not self.failed:
            out.append("台账与 Temporal 一致 the ledger matches Temporal: nothing to do")
        elif self.dry_run:
            out.append(f"{self.differing} workflows differ from the ledger; run without "
                       "--dry-run to write the missing entries")
        else:
            out.append(f"{self.written} entries written; {self.differing} workflows differed")
            if self.unrepairable:
                out.append(f"{self.unrepairable} workflows still differ: rebuild never "
                           "overwrites a recorded event or a row ahead of Temporal")
        return "\n".join(out)


# ---- catching the entries --------------------------------------------------------------------

class _CaptureInterceptor(Interceptor):
    """Hands every entry a replayed workflow gives the ledger to `sink`, and the opening of a
    case the API recorded before starting it, derived from its intake.

    The sandbox gets interceptor classes as class objects, not by import (a class defined in a
    function works too), so nothing here needs passing through; the entries are the real
    domain types, as the workflows import them passed through. The sink still goes through an
    extern function: that is the SDK's documented way out of the sandbox."""

    def __init__(self, sink: Callable[[Any], None]) -> None:
        self._sink = sink

    def workflow_interceptor_class(
            self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        input.unsafe_extern_functions[_CAPTURE] = self._catch
        return _CaptureInbound

    def _catch(self, item: LedgerEntry | WhistleEntry | CaseIntake) -> None:
        if not isinstance(item, CaseIntake):
            self._sink(item)
        elif item.opening_recorded:
            self._sink(opening_entry(item))


class _CaptureInbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_CaptureOutbound(outbound))

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        # A case whose opening the API recorded hands the workflow no opening entry: its first
        # run's intake (without a carry-over) is caught instead, and becomes that entry.
        # (The sandbox has its own copy of the class: compared by name.)
        first_run = len(input.args) == 1 or input.args[1] is None
        if input.type.__name__ == "CaseWorkflow" and first_run:
            workflow.extern_functions()[_CAPTURE](CaseIntake.model_validate(input.args[0]))
        return await super().execute_workflow(input)


class _CaptureOutbound(WorkflowOutboundInterceptor):
    def start_local_activity(self, input: StartLocalActivityInput):
        if input.activity in LEDGER_ACTIVITIES:
            workflow.extern_functions()[_CAPTURE](input.args[0])
        return super().start_local_activity(input)


# ---- the rebuild -----------------------------------------------------------------------------

async def rebuild(client: Client, ledger: Ledger, *, dry_run: bool = False,
                  case_id: str | None = None, query: str = QUERY,
                  detail_limit: int = 100) -> RebuildReport:
    """Replay every case and whistle workflow `query` lists (or one case and its whistles),
    compare what they handed the ledger with what it holds and, unless `dry_run`, write what
    is missing. One workflow at a time: memory holds one history and its entries.
    Raises RebuildError when Temporal cannot be read."""
    report = RebuildReport(dry_run=dry_run, detail_limit=detail_limit)
    caught: list[LedgerEntry | WhistleEntry] = []
    # The whistles the case itself blew, learnt from its replay (only with `case_id`).
    whistle_ids: list[str] = []
    replayer = Replayer(workflows=[CaseWorkflow, WhistleWorkflow], namespace=client.namespace,
                        # The converter the worker decodes these histories with.
                        data_converter=client.data_converter,
                        interceptors=[_CaptureInterceptor(caught.append)])
    histories = (_one_case(client, case_id, whistle_ids) if case_id
                 else _listed(client, query))
    started = time.monotonic()
    try:
        async with replayer.workflow_replay_iterator(histories) as results:
            async for result in results:
                workflow_id = result.history.workflow_id
                entries, caught[:] = list(caught), []
                if result.replay_failure:
                    report.fail(workflow_id, str(result.replay_failure))
                    continue
                if _workflow_type(result.history) == "CaseWorkflow":
                    report.cases += 1
                    if case_id and entries:
                        newest = max(entries, key=lambda e: e.event.seq)
                        whistle_ids[:] = [w.workflow_id for w in newest.state.whistles]
                else:
                    report.whistles += 1
                report.entries += len(entries)
                report.add(*await asyncio.to_thread(_reconcile, ledger, entries, dry_run))
    except RPCError as err:
        raise RebuildError(f"cannot read Temporal (namespace {client.namespace}): "
                           f"{err.status.name}: {err.message}") from err
    report.seconds = time.monotonic() - started
    return report


async def _listed(client: Client, query: str) -> AsyncIterator[WorkflowHistory]:
    # Both the listing and each history are fetched page by page as the replay asks for them.
    async for execution in client.list_workflows(query, page_size=100):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        try:
            history = await handle.fetch_history()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                continue  # closed and past retention since it was listed: nothing to replay
            raise
        yield history


async def _one_case(client: Client, case_id: str,
                    whistle_ids: list[str]) -> AsyncIterator[WorkflowHistory]:
    try:
        runs = [await client.get_workflow_handle(case_id).fetch_history()]
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise RebuildError(f"case {case_id} is not in Temporal (namespace "
                               f"{client.namespace}); closed cases are kept only for the "
                               "namespace's retention period") from err
        raise
    # A case that continued as new: its earlier runs hold its earlier entries. Oldest first,
    # so the newest run's replay names the whistles.
    while previous := _started(runs[0]).continued_execution_run_id:
        runs.insert(0, await client.get_workflow_handle(case_id, run_id=previous)
                    .fetch_history())
    for history in runs:
        yield history
    # The case has been replayed before the next history is asked for: whistle_ids is filled.
    for whistle_id in list(whistle_ids):
        yield await client.get_workflow_handle(whistle_id).fetch_history()


def _started(history: WorkflowHistory):
    return history.events[0].workflow_execution_started_event_attributes


def _workflow_type(history: WorkflowHistory) -> str:
    return _started(history).workflow_type.name


def _reconcile(ledger: Ledger, entries: list, dry_run: bool) -> tuple[CaseDifferences | None, int]:
    """Compare one workflow's entries with the ledger and write what is missing."""
    if not entries:
        return None, 0
    # In seq order: an update in the workflow's first task may hand over its entry before
    # the opening one.
    entries = sorted(entries, key=lambda e: e.event.seq)
    if isinstance(entries[0], LedgerEntry):
        diff, to_write = _compare_case(ledger, entries)
        write = ledger.record
    else:
        diff, to_write = _compare_whistle(ledger, entries)
        write = ledger.record_whistle
    if not dry_run:
        for entry in to_write:
            write(entry)
    return diff, 0 if dry_run else len(to_write)


def _compare_case(ledger: Ledger, entries: list[LedgerEntry]) -> tuple[CaseDifferences, list]:
    case_id = entries[0].event.case_id
    diff = CaseDifferences(case_id)
    stored = {e.seq: e for e in ledger.history(case_id)}
    with Session(ledger.engine) as session:
        row = session.execute(select(CaseRow.last_seq, CaseRow.stage)
                              .where(CaseRow.case_id == case_id)).first()
    to_write = _compare_events(entries, stored, diff.missing_events, diff.differing_events, int)
    newest = entries[-1].state
    if row is None or (row.last_seq, row.stage) != (newest.seq, newest.stage.value):
        diff.case_row = RowDifference(row.last_seq if row else None, row.stage if row else None,
                                      newest.seq, newest.stage.value)
    return diff, _with_newest(to_write, entries, diff.case_row)


def _compare_whistle(ledger: Ledger,
                     entries: list[WhistleEntry]) -> tuple[CaseDifferences, list]:
    first = entries[0].event
    case_id, no = first.case_id, first.whistle_no
    diff = CaseDifferences(case_id)
    stored = {e.seq: e for e in ledger.whistle_history(case_id) if e.whistle_no == no}
    with Session(ledger.engine) as session:
        row = session.execute(select(WhistleRow.last_seq, WhistleRow.status).where(
            WhistleRow.case_id == case_id, WhistleRow.whistle_no == no)).first()
    to_write = _compare_events(entries, stored, diff.missing_whistle_events,
                               diff.differing_whistle_events, lambda seq: (no, seq))
    newest = entries[-1].state
    row_diff = None
    if row is None or (row.last_seq, row.status) != (newest.seq, newest.status):
        row_diff = RowDifference(row.last_seq if row else None, row.status if row else None,
                                 newest.seq, newest.status)
        diff.whistle_rows[no] = row_diff
    return diff, _with_newest(to_write, entries, row_diff)


def _compare_events(entries: list, stored: dict, missing: list, differing: dict,
                    key: Callable) -> list:
    """Fills `missing` and `differing` (under key(seq)); returns the entries to write."""
    to_write = []
    for entry in entries:
        event = entry.event
        old = stored.get(event.seq)
        if old is None:
            missing.append(key(event.seq))
            to_write.append(entry)
        elif old != event:
            differing[key(event.seq)] = [name for name in type(event).model_fields
                                         if getattr(old, name) != getattr(event, name)]
    return to_write


def _with_newest(to_write: list, entries: list, row: RowDifference | None) -> list:
    # A row behind (or missing) with every event present: writing the newest entry again moves
    # it forward (the event insert is a no-op, the row upsert applies: its seq is newer).
    if row and row.repairable and (not to_write or to_write[-1] is not entries[-1]):
        to_write.append(entries[-1])
    return to_write

"""Opening a case: recorded in the ledger first, then its workflow started.

The opening is a pure function of the intake, so it is known here without a round trip to the
workflow. Recording it first, with a note in `case_starts` in the same transaction, means a case
the API has accepted is never lost: if Temporal is away, or the API dies before the start, the
worker's sweep (`start_pending`) starts the workflow later. The workflow is told the opening is
recorded and does not write it again: no local activity, and one history event fewer.
"""

import asyncio
from datetime import datetime, timedelta, timezone

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from domain import lifecycle, notices
from domain.models import CaseIntake, CaseState, LedgerEntry
from ledger.repository import Ledger
from runtime.logging import get_logger
from workflows import search_attributes
from workflows.case import CaseWorkflow

log = get_logger("cases")


async def start_case(client: Client, intake: CaseIntake, task_queue: str,
                     state: CaseState | None = None) -> WorkflowHandle:
    """Start the workflow of a new case; raises WorkflowAlreadyStartedError if its id exists,
    open or closed. Its search attributes, from its opening `state` (derived from the intake
    when not given), are set with the start (no upsert event)."""
    state = state or lifecycle.open_case(intake)[0]
    return await client.start_workflow(
        CaseWorkflow.run, intake, id=intake.case_id, task_queue=task_queue,
        search_attributes=search_attributes.of_state(state, with_stage=False),
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)


class StartedCases:
    """Clears the start notes of cases the API started, those of a moment together: clearing
    each in a transaction of its own cost an opening a fifth of its CPU (0.8 of 4.2 ms). A note
    not cleared yet, or never (the API stopped first), only makes the sweep find the workflow
    there and clear it; a note is not what tells whether a case's workflow exists."""

    def __init__(self, ledger: Ledger, every: float = 0.5) -> None:
        self._ledger, self._every = ledger, every
        self._case_ids: list[str] = []
        # The batch waiting to be cleared, and every clearing still running (held here so
        # that none is collected before it ends).
        self._clearing: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()

    def add(self, case_id: str) -> None:
        self._case_ids.append(case_id)
        if self._clearing is None:
            self._clearing = asyncio.create_task(self._clear_soon())
            self._running.add(self._clearing)
            self._clearing.add_done_callback(self._running.discard)

    async def close(self) -> None:
        """Clear what is waiting now (the API is stopping)."""
        if self._clearing is not None:
            self._clearing.cancel()
            self._clearing = None
        await self._clear()
        # Clearings under way end before the ledger's connections are closed.
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _clear_soon(self) -> None:
        await asyncio.sleep(self._every)
        # Cases started from here on wait for the next batch.
        self._clearing = None
        await self._clear()

    async def _clear(self) -> None:
        case_ids, self._case_ids = self._case_ids, []
        if not case_ids:
            return
        try:
            await asyncio.to_thread(self._ledger.cases_started, case_ids)
        except Exception as err:  # noqa: BLE001 - the sweep clears them
            log.warning("start notes not cleared; the sweep will", cases=len(case_ids),
                        error=str(err)[:300])


async def record_and_start(client: Client, ledger: Ledger, intake: CaseIntake, task_queue: str,
                           started_cases: StartedCases | None = None
                           ) -> tuple[LedgerEntry, bool | None]:
    """Record the opening, then start the workflow. Returns the opening and whether this call
    started the workflow: False when it existed already (a repeated request), None when
    Temporal could not be reached (the sweep starts it). Raises what the ledger raises, and
    then nothing was recorded or started. The start note is cleared at once, or with others
    by `started_cases`."""
    intake = intake.model_copy(update={"lean_loop": True, "opening_recorded": True})
    opening = notices.opening_entry(intake)
    await asyncio.to_thread(ledger.record, opening, intake)
    try:
        await start_case(client, intake, task_queue, opening.state)
        started: bool | None = True
    except WorkflowAlreadyStartedError:
        started = False
    except RPCError as err:
        log.warning("case recorded, its workflow not started yet", case_id=intake.case_id,
                    error=err.message)
        return opening, None
    if started_cases is None:
        await asyncio.to_thread(ledger.cases_started, [intake.case_id])
    else:
        started_cases.add(intake.case_id)
    return opening, started


async def start_pending(client: Client, ledger: Ledger, task_queue: str,
                        grace: timedelta = timedelta(seconds=30), limit: int = 100) -> int:
    """Start the workflows of cases recorded more than `grace` ago and still not known to have
    started (the API normally starts them within milliseconds). Returns how many it started."""
    before = datetime.now(timezone.utc) - grace
    started = 0
    # Whose workflows are known to exist now: their notes are cleared together.
    known: list[str] = []
    for intake in await asyncio.to_thread(ledger.pending_starts, before, limit):
        try:
            await start_case(client, intake, task_queue)
            started += 1
            log.info("case workflow started from the ledger", case_id=intake.case_id)
        except WorkflowAlreadyStartedError:
            pass
        except RPCError as err:
            log.warning("case workflow still not started", case_id=intake.case_id,
                        error=err.message)
            continue
        known.append(intake.case_id)
    if known:
        await asyncio.to_thread(ledger.cases_started, known)
    return started


async def run_start_sweep(client: Client, ledger: Ledger, task_queue: str,
                          stop: asyncio.Event, every: float, grace: timedelta) -> None:
    """`start_pending` every `every` seconds until `stop` is set."""
    while not stop.is_set():
        try:
            await start_pending(client, ledger, task_queue, grace)
        except Exception as err:  # the ledger away: try again next round
            log.warning("case start sweep failed", error=str(err))
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except asyncio.TimeoutError:
            pass

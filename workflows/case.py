"""CaseWorkflow: one durable workflow per case, from intake to 回头看 and closing.

The state machine itself is `domain.lifecycle`; this class only receives actions, waits on the
timers of the loop (evaluation window, 回头看 interval) and hands every transition to the ledger.
"""

import asyncio
from collections import deque
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities
    from domain import lifecycle
    from domain.actions import SIGNAL_ACTIONS, Action
    from domain.errors import Refusal
    from domain.models import (ActionResult, CaseEvent, CaseIntake, CaseState, Command,
                               LedgerEntry)
    from domain.roles import Role
    from domain.stages import TERMINAL_STAGES, Stage
    from workflows import search_attributes as sa

LEDGER_WRITE_TIMEOUT = timedelta(seconds=10)
# The ledger must end up with every row: keep retrying until the database is back.
LEDGER_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1),
                           maximum_interval=timedelta(minutes=1), backoff_coefficient=2.0)
SEEN_SIGNAL_IDS = 500


@workflow.defn
class CaseWorkflow:
    @workflow.init
    def __init__(self, intake: CaseIntake) -> None:
        self._state, opened = lifecycle.open_case(intake)
        # Taken now: an update in the first task may change the state before run() records it.
        self._opening = LedgerEntry(event=opened, state=self._state.model_copy(deep=True))
        # Bumped on every stage-changing action so the main loop can restart its timers.
        self._moves = 0
        self._seen_signals: deque[str] = deque(maxlen=SEEN_SIGNAL_IDS)
        # The API starts the workflow with its search attributes already set.
        self._published = {pair.key.name: pair.value
                           for pair in workflow.info().typed_search_attributes}

    @workflow.run
    async def run(self, intake: CaseIntake) -> CaseState:
        await self._write(self._opening)
        while self._state.stage not in TERMINAL_STAGES:
            due, on_expiry = self._timer()
            if not await self._moved_before(due):
                await self._transition(lifecycle.system_command(
                    on_expiry, f"{on_expiry.value}:{self._state.round}:{self._state.seq}"))
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    @workflow.update
    async def act(self, cmd: Command) -> ActionResult:
        # Validated again: another update may have moved the case since the validator ran.
        self._check(cmd)
        return await self._transition(cmd)

    @act.validator
    def _validate_act(self, cmd: Command) -> None:
        self._check(cmd)

    @workflow.signal
    async def note(self, cmd: Command) -> None:
        """Supplements from the hotline and 督办 notes: recorded, the stage never changes."""
        if cmd.request_id in self._seen_signals:
            return
        self._seen_signals.append(cmd.request_id)
        if cmd.action not in SIGNAL_ACTIONS:
            workflow.logger.warning("ignored signal with action %s", cmd.action)
            return
        try:
            lifecycle.check(self._state, cmd)
        except Refusal as refusal:
            workflow.logger.warning("ignored %s: %s", cmd.action, refusal.message)
            return
        await self._record(lifecycle.apply(self._state, cmd, workflow.now()))

    @workflow.query
    def state(self) -> CaseState:
        return self._state

    def _timer(self) -> tuple[datetime | None, Action | None]:
        """What happens by itself in the current stage, and when."""
        if self._state.stage == Stage.EVALUATING:
            return self._state.deadlines["evaluate"], Action.NO_RESPONSE
        if self._state.stage == Stage.RECHECK_PENDING:
            return self._state.recheck_due_at, Action.RECHECK_DUE
        return None, None

    async def _moved_before(self, due: datetime | None) -> bool:
        moves = self._moves
        # Never a zero timeout: wait_condition reads 0 as "no timeout".
        timeout = max(due - workflow.now(), timedelta(seconds=1)) if due else None
        try:
            await workflow.wait_condition(lambda: self._moves != moves, timeout=timeout)
            return True
        except asyncio.TimeoutError:
            return False

    def _check(self, cmd: Command) -> None:
        if cmd.action in SIGNAL_ACTIONS or cmd.actor.role == Role.SYSTEM:
            raise ApplicationError(f"{cmd.action.value} is not an action a request can take.",
                                   {"code": "not_an_action"}, type="not_an_action",
                                   non_retryable=True)
        try:
            lifecycle.check(self._state, cmd)
        except Refusal as refusal:
            raise ApplicationError(refusal.message, {"code": refusal.code, **refusal.details},
                                   type=refusal.code, non_retryable=True) from None

    async def _transition(self, cmd: Command) -> ActionResult:
        before = self._state.stage
        event = lifecycle.apply(self._state, cmd, workflow.now())
        self._moves += 1
        entry = await self._record(event)
        return ActionResult(case_id=self._state.case_id, action=cmd.action,
                            request_id=cmd.request_id, from_stage=before,
                            to_stage=event.to_stage, seq=event.seq, state=entry.state)

    async def _record(self, event: CaseEvent) -> LedgerEntry:
        # A copy: later actions keep changing the live state while this write is in flight.
        entry = LedgerEntry(event=event, state=self._state.model_copy(deep=True))
        await self._write(entry)
        return entry

    async def _write(self, entry: LedgerEntry) -> None:
        self._publish_search_attributes()
        await workflow.execute_local_activity_method(
            LedgerActivities.record, entry,
            start_to_close_timeout=LEDGER_WRITE_TIMEOUT, retry_policy=LEDGER_RETRY)

    def _publish_search_attributes(self) -> None:
        # Only what changed: every upsert is one more history event.
        changed = [pair for pair in sa.of_state(self._state)
                   if self._published.get(pair.key.name) != pair.value]
        if changed:
            workflow.upsert_search_attributes(changed)
            self._published.update({pair.key.name: pair.value for pair in changed})

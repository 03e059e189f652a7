"""CaseWorkflow: one durable workflow per case, from intake to 回头看 and closing.

The state machine itself is `domain.lifecycle`; this class only receives actions, waits on the
one timer that matters next (催办, 超时, evaluation window, 回头看 interval), runs whistles as
child workflows and hands every transition, with the notifications it causes, to the ledger.
"""

import asyncio
from collections import deque

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities
    from domain import lifecycle, notices
    from domain.access import read_refusal
    from domain.continuation import (DEFAULT_HISTORY_EVENT_LIMIT, RECENT_REQUESTS,
                                     CaseCarryOver)
    from domain.actions import SIGNAL_ACTIONS, Action
    from domain.errors import Refusal
    from domain.models import (SYSTEM_ACTOR, ActionOutcome, ActionResult, CaseEvent, CaseIntake,
                               CaseState, Command, LedgerEntry, WhistleClosedPayload)
    from domain.roles import Role
    from domain.stages import TERMINAL_STAGES, Stage
    from domain.whistles import WhistleStart
    from workflows import search_attributes as sa
    from workflows.shared import Alarm, refused, timer_fired, write_ledger
    from workflows.whistle import WhistleWorkflow

SEEN_SIGNAL_IDS = 500
# Cases recorded before continue-as-new existed replay without it.
CONTINUE_AS_NEW_PATCH = "case-continue-as-new"
# Cases on the lean loop keep one timer across stage changes and do not upsert CaseStage (lists
# come from the ledger): about three history events fewer per officer action. Cases started
# before it keep the old loop, so their recorded histories replay; cases started now say so in
# their intake (CaseIntake.lean_loop) and never ask for the patch.
LEAN_LOOP = "lean-loop"


@workflow.defn
class CaseWorkflow:
    @workflow.init
    def __init__(self, intake: CaseIntake, carried: CaseCarryOver | None = None) -> None:
        # Started with the intake alone, the SDK cannot match the two hints to one argument
        # and hands over plain JSON.
        self._intake = intake = CaseIntake.model_validate(intake)
        self._calendar = intake.calendar
        # Bumped on every transition so the main loop re-plans its timer.
        self._moves = 0
        self._seen_signals: deque[str] = deque(maxlen=SEEN_SIGNAL_IDS)
        self._whistle_task: asyncio.Task | None = None
        # Requests applied in earlier runs, answered again instead of applied twice (Temporal
        # de-duplicates update ids only within a run); those of this run go on to the next.
        self._earlier: dict[str, ActionOutcome] = {}
        self._applied: deque[ActionOutcome] = deque(maxlen=RECENT_REQUESTS)
        self._runs = 1
        self._opening: LedgerEntry | None = None
        if carried:
            # Continued: the case is open and recorded already.
            self._state = carried.state
            self._seen_signals.extend(carried.seen_signals)
            self._earlier = {o.request_id: o for o in carried.applied}
            self._applied.extend(carried.applied)
            self._runs = carried.runs + 1
        else:
            self._state, opened = lifecycle.open_case(intake)
            if not intake.opening_recorded:
                # Taken now: an update in the first task may change the state before run()
                # records it.
                self._opening = self._entry(opened)
        # The API starts the workflow with its search attributes already set.
        self._published = {pair.key.name: pair.value
                           for pair in workflow.info().typed_search_attributes}
        self._alarm = Alarm()

    @workflow.run
    async def run(self, intake: CaseIntake, carried: CaseCarryOver | None = None) -> CaseState:
        if self._opening:
            await self._write(self._opening)
        while self._state.stage not in TERMINAL_STAGES:
            if self._may_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._may_continue_as_new():
                    # The next run is on the lean loop, which keeps no CaseStage.
                    intake = self._intake.model_copy(update={"lean_loop": True})
                    workflow.continue_as_new(args=[intake, self._carry_over()],
                                             search_attributes=sa.of_state(self._state,
                                                                           with_stage=False))
            if self._lean():
                await self._wait_with_alarm()
                continue
            due, on_expiry = lifecycle.next_timer(self._state) or (None, None)
            moves = self._moves
            if await timer_fired(due, lambda: self._moves != moves):
                await self._transition(on_expiry)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    async def _wait_with_alarm(self) -> None:
        """Wait for an action or the next deadline. The alarm is not moved for a later
        deadline: when it rings early nothing is due yet and it is set again."""
        planned = lifecycle.next_timer(self._state)
        if planned is not None:
            self._alarm.ring_by(planned[0])
        moves = self._moves
        await workflow.wait_condition(lambda: self._moves != moves or self._alarm.rang)
        if self._alarm.rang:
            self._alarm.clear()
            planned = lifecycle.next_timer(self._state)
            if planned is not None and planned[0] <= workflow.now():
                await self._transition(planned[1])

    @workflow.update
    async def act(self, cmd: Command) -> ActionResult:
        earlier = self._earlier.get(cmd.request_id)
        if earlier:
            return ActionResult(**earlier.model_dump(), state=self._state.snapshot())
        # Validated again: another update may have moved the case since the validator ran.
        self._check(cmd)
        result = await self._transition(cmd)
        self._applied.append(ActionOutcome(**result.model_dump(exclude={"state"})))
        if cmd.action == Action.WHISTLE:
            # Started before answering, so the summoned can report in as soon as they hear.
            await self._start_whistle(cmd)
        return result

    @act.validator
    def _validate_act(self, cmd: Command) -> None:
        if cmd.request_id in self._earlier:
            return
        # Who may read the case may act on it: checked here, on the case as it is, so the API
        # need not read the ledger first. Only in the validator: validators do not run on
        # replay, and the handler's check must decide as it did when the history was made.
        refusal = read_refusal(cmd.actor, self._state)
        if refusal:
            raise refused(refusal)
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
            lifecycle.check(self._state, cmd, workflow.now())
        except Refusal as refusal:
            workflow.logger.warning("ignored %s: %s", cmd.action, refusal.message)
            return
        await self._record(lifecycle.apply(self._state, cmd, workflow.now(), self._calendar))

    @workflow.query
    def state(self) -> CaseState:
        return self._state

    async def _start_whistle(self, cmd: Command) -> None:
        whistle, p = self._state.whistles[-1], cmd.payload
        start = WhistleStart(
            case_id=self._state.case_id, whistle_no=whistle.no, request_id=cmd.request_id,
            kind=p.whistle_kind, kind_name=p.whistle_kind_name, reason=p.reason,
            departments=p.departments, report_in_limit=p.report_in_limit,
            reminder_share=self._state.policy.reminder_share if self._state.policy else 0.8,
            blown_by=cmd.actor, blown_at=whistle.blown_at, team=self._state.team,
            calendar=self._calendar)
        handle = await workflow.start_child_workflow(
            WhistleWorkflow.run, start, id=whistle.workflow_id)
        self._whistle_task = asyncio.create_task(self._follow_whistle(handle, whistle.no))

    async def _follow_whistle(self, handle: workflow.ChildWorkflowHandle, no: int) -> None:
        try:
            closed: WhistleClosedPayload = await handle
        except ChildWorkflowError as err:
            # Terminated or failed from outside: the case must not stay escalated for ever.
            closed = WhistleClosedPayload(whistle_no=no, status="ended",
                                          note=f"吹哨流程中止：{err.cause or err}")
        await self._transition(Command(request_id=f"whistle_closed:{no}", actor=SYSTEM_ACTOR,
                                       payload=closed))

    def _may_continue_as_new(self) -> bool:
        """Past the history limit, with no whistle in flight (its child and the task following
        it belong to this run) and no terminal stage; patched last, so its marker is recorded
        only by a case that really continues."""
        info = workflow.info()
        limit = self._intake.history_event_limit or DEFAULT_HISTORY_EVENT_LIMIT
        long = info.get_current_history_length() >= limit or info.is_continue_as_new_suggested()
        whistling = self._state.stage == Stage.ESCALATED or (
            self._whistle_task is not None and not self._whistle_task.done())
        return (long and not whistling and self._state.stage not in TERMINAL_STAGES
                and workflow.patched(CONTINUE_AS_NEW_PATCH))

    def _lean(self) -> bool:
        # The intake first: asking for the patch records it.
        return self._intake.lean_loop or workflow.patched(LEAN_LOOP)

    def _carry_over(self) -> CaseCarryOver:
        return CaseCarryOver(state=self._state, seen_signals=list(self._seen_signals),
                             applied=list(self._applied), runs=self._runs)

    def _check(self, cmd: Command) -> None:
        try:
            if cmd.action in SIGNAL_ACTIONS or cmd.actor.role == Role.SYSTEM:
                raise Refusal("not_an_action",
                              f"{cmd.action.value} is not an action a request can take.")
            lifecycle.check(self._state, cmd, workflow.now())
        except Refusal as refusal:
            raise refused(refusal) from None

    async def _transition(self, cmd: Command) -> ActionResult:
        before = self._state.stage
        event = lifecycle.apply(self._state, cmd, workflow.now(), self._calendar)
        self._moves += 1
        entry = await self._record(event)
        return ActionResult(case_id=self._state.case_id, action=cmd.action,
                            request_id=cmd.request_id, from_stage=before,
                            to_stage=event.to_stage, seq=event.seq, state=entry.state)

    async def _record(self, event: CaseEvent) -> LedgerEntry:
        entry = self._entry(event)
        await self._write(entry)
        return entry

    def _entry(self, event: CaseEvent) -> LedgerEntry:
        # A copy: later actions keep changing the live state while this write is in flight.
        return notices.ledger_entry(event, self._state.snapshot())

    async def _write(self, entry: LedgerEntry) -> None:
        self._publish_search_attributes()
        await write_ledger(LedgerActivities.record, entry)

    def _publish_search_attributes(self) -> None:
        # Only what changed: every upsert is one more history event.
        changed = [pair for pair in sa.of_state(self._state,
                                                with_stage=not self._lean())
                   if self._published.get(pair.key.name) != pair.value]
        if changed:
            workflow.upsert_search_attributes(changed)
            self._published.update({pair.key.name: pair.value for pair in changed})

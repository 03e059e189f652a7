"""WhistleWorkflow: one 吹哨报到, a child of its case's workflow.

Summoned departments report in and report their part done through the `act` update; a timer
reminds them before their report-in limit, marks them late and tells the supervisors when it
passes, and keeps reminding until they report in (事不完、人不撤). The whistle ends when every
part is done or a supervisor ends it; the case then returns to rectifying.
"""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities
    from domain import notices, whistles
    from domain.errors import Refusal
    from domain.models import WhistleClosedPayload
    from domain.roles import Role
    from domain.whistles import (WhistleCommand, WhistleEntry, WhistleEvent, WhistleStart,
                                 WhistleState)
    from workflows.shared import refused, timer_fired, write_ledger


@workflow.defn
class WhistleWorkflow:
    @workflow.init
    def __init__(self, start: WhistleStart) -> None:
        self._calendar = start.calendar
        self._state, summoned = whistles.start(start)
        self._opening = self._entry(summoned)
        self._moves = 0

    @workflow.run
    async def run(self, start: WhistleStart) -> WhistleClosedPayload:
        await self._write(self._opening)
        while self._state.status == "open":
            due, on_expiry = whistles.next_timer(self._state) or (None, None)
            moves = self._moves
            if await timer_fired(due, lambda: self._moves != moves):
                await self._transition(on_expiry)
        await workflow.wait_condition(workflow.all_handlers_finished)
        s = self._state
        note = ("各部门均已办结" if s.status == "completed"
                else f"{s.ended_by.name or s.ended_by.id}结束吹哨：{s.end_reason}")
        return WhistleClosedPayload(whistle_no=s.whistle_no, status=s.status,
                                    late_departments=s.late_departments, note=note)

    @workflow.update
    async def act(self, cmd: WhistleCommand) -> WhistleState:
        self._check(cmd)
        await self._transition(cmd)
        return self._state

    @act.validator
    def _validate_act(self, cmd: WhistleCommand) -> None:
        self._check(cmd)

    @workflow.query
    def state(self) -> WhistleState:
        return self._state

    def _check(self, cmd: WhistleCommand) -> None:
        try:
            if cmd.actor.role == Role.SYSTEM:
                raise Refusal("not_an_action", "Timers are not requests.")
            whistles.check(self._state, cmd)
        except Refusal as refusal:
            raise refused(refusal) from None

    async def _transition(self, cmd: WhistleCommand) -> None:
        event = whistles.apply(self._state, cmd, workflow.now(), self._calendar)
        self._moves += 1
        await self._write(self._entry(event))

    def _entry(self, event: WhistleEvent) -> WhistleEntry:
        state = self._state.snapshot()
        return WhistleEntry(event=event, state=state,
                            notifications=notices.for_whistle_event(event, state))

    async def _write(self, entry: WhistleEntry) -> None:
        await write_ledger(LedgerActivities.record_whistle, entry)

"""What the 12345 routes do: take a work order in (open its case, find the case it was already
delivered as, or merge it into the open case it repeats), show a ticket's case and its
follow-up list, and feed the caller's follow-up result to the evaluation step.

Routes stay thin; the case itself is opened and acted on through CaseService."""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError

from api.errors import ApiError
from api.schemas import ActionResponse, CaseView, OpenCaseRequest
from api.service import CaseService
from config.hotline_codes import HotlineCodes
from domain.access import READ_ALL
from domain.calendar import local_text
from domain.hotline import FollowUpResult, WorkOrder, duplicates_of
from domain.models import (Actor, CaseState, Command, EvaluatePayload, Source,
                           SupplementPayload)
from domain.roles import Role
from domain.stages import STAGE_LABELS
from ledger.hotline import HotlineRecords, Ticket
from workflows.case import CaseWorkflow

# Room left in a supplement for the words that introduce the merged ticket.
MERGED_CONTENT_CHARS = 3800


class ReceivedWorkOrder(BaseModel):
    ticket_no: str
    case_id: str
    outcome: Literal["opened", "existing", "merged"]
    message: str
    case: CaseView


class Caller(BaseModel):
    ticket_no: str
    merged: bool
    name: str | None
    phone: str | None
    call_time: datetime
    appeal_type: str


class StoredResult(BaseModel):
    id: int
    ticket_no: str
    rating: str
    resolved: bool
    comment: str
    called_at: datetime | None
    received_at: datetime
    stage: str
    outcome: str


class WorkOrderView(BaseModel):
    ticket_no: str
    case_id: str
    merged: bool
    case: CaseView
    follow_up_list: list[Caller]
    follow_up_results: list[StoredResult]


@dataclass
class Received:
    body: ReceivedWorkOrder
    created: bool


class HotlineService:
    def __init__(self, cases: CaseService, records: HotlineRecords, codes: HotlineCodes) -> None:
        self.cases, self.records, self.codes = cases, records, codes

    # ---- intake ---------------------------------------------------------------------------------

    async def receive(self, order: WorkOrder, actor: Actor) -> Received:
        _require_hotline(actor)
        known = await self._known_case(order.ticket_no)
        if known is not None:
            case_id, merged = known
            return await self._answer(order, case_id, "merged" if merged else "existing", actor,
                                      "This work order was received before; here is its case.")
        urgency = self.codes.urgency_of(order.urgency)
        if urgency is None:
            raise ApiError(422, "unknown_urgency",
                           f"Urgency {order.urgency!r} is not one the hotline mapping knows.",
                           known=sorted(self.codes.urgencies))
        catalog = self.cases.catalog
        where = order.address
        problem = catalog.location_problem(where.district, where.street, where.community)
        if problem:
            raise ApiError(422, "unknown_location",
                           f"The address is not in the catalog: {problem}.")
        category = self.codes.category_of(order.category_code)
        if category is not None:
            candidates = await run_in_threadpool(self.records.open_cases, category,
                                                 where.district)
            for primary in duplicates_of(category, where, candidates,
                                         self.cases.settings.hotline_duplicate_distance_m):
                if await self._merge(order, primary, actor):
                    return await self._answer(
                        order, primary.case_id, "merged", actor,
                        f"Same problem as open case {primary.case_id}: merged into it (并单); "
                        "the caller is on its follow-up list.")
        request = OpenCaseRequest(
            source=Source.HOTLINE, external_id=order.ticket_no,
            # An unmapped code is kept as the hint the dispatcher classifies by.
            category=category or order.category_hint(), description=order.description(),
            location=where, urgency=urgency, reporter=order.caller,
            attachments=order.attachments, received_at=order.call_time)
        opened = await self.cases.open_case(request, actor, None)
        await run_in_threadpool(self.records.add_ticket, order, opened.case.case_id, False)
        outcome = "opened" if opened.created else "existing"
        routed = ("routed to its team" if category else
                  "waiting for the dispatcher: the hotline code is not mapped")
        message = (f"Case opened, {routed}." if opened.created
                   else "This work order was received before; here is its case.")
        return Received(ReceivedWorkOrder(ticket_no=order.ticket_no,
                                          case_id=opened.case.case_id, outcome=outcome,
                                          message=message, case=opened.case),
                        created=opened.created)

    async def _known_case(self, ticket_no: str) -> tuple[str, bool] | None:
        ticket = await run_in_threadpool(self.records.ticket, ticket_no)
        if ticket is not None:
            return ticket.case_id, ticket.merged
        # Opened before the ticket was stored (or through POST /cases).
        case_id = await run_in_threadpool(self.cases.ledger.case_id_for, Source.HOTLINE.value,
                                          ticket_no)
        return (case_id, False) if case_id else None

    async def _merge(self, order: WorkOrder, primary: CaseState, actor: Actor) -> bool:
        """Record the ticket on the open case it repeats; False when that case has ended in the
        meantime (the next match, or a new case, takes the ticket instead)."""
        content = (f"并单：12345工单{order.ticket_no}（{local_text(order.call_time)}来电，"
                   f"{order.appeal_type}）反映同一问题：{order.content[:MERGED_CONTENT_CHARS]}")
        cmd = Command(request_id=f"merge-{order.ticket_no}", actor=actor,
                      payload=SupplementPayload(content=content, attachments=order.attachments))
        try:
            # A signal: the workflow de-duplicates it on the request id if this is redone.
            await self.cases.client.get_workflow_handle(primary.case_id).signal(
                CaseWorkflow.note, cmd)
        except RPCError:
            return False
        await run_in_threadpool(self.records.add_ticket, order, primary.case_id, True)
        return True

    async def _answer(self, order: WorkOrder, case_id: str, outcome: str, actor: Actor,
                      message: str) -> Received:
        await run_in_threadpool(self.records.add_ticket, order, case_id, outcome == "merged")
        state = await self.cases.state(case_id)
        return Received(ReceivedWorkOrder(ticket_no=order.ticket_no, case_id=case_id,
                                          outcome=outcome, message=message,
                                          case=CaseView.of(state, actor)), created=False)

    # ---- reads ----------------------------------------------------------------------------------

    async def work_order(self, ticket_no: str, actor: Actor) -> WorkOrderView:
        _require_reader(actor)
        ticket = await self._ticket(ticket_no)
        state = await self.cases.state(ticket.case_id)
        callers = await run_in_threadpool(self.records.tickets_of, ticket.case_id)
        results = await run_in_threadpool(self.records.follow_ups, ticket.case_id)
        return WorkOrderView(
            ticket_no=ticket.ticket_no, case_id=ticket.case_id, merged=ticket.merged,
            case=CaseView.of(state, actor),
            follow_up_list=[Caller(ticket_no=t.ticket_no, merged=t.merged, name=t.caller_name,
                                   phone=t.caller_phone, call_time=t.call_time,
                                   appeal_type=t.appeal_type) for t in callers],
            follow_up_results=[StoredResult(**r) for r in results])

    async def _ticket(self, ticket_no: str) -> Ticket:
        ticket = await run_in_threadpool(self.records.ticket, ticket_no)
        if ticket is None:
            raise ApiError(404, "ticket_not_found", f"No work order {ticket_no} was received.")
        return ticket

    # ---- 回访 -------------------------------------------------------------------------------------

    async def follow_up(self, ticket_no: str, result: FollowUpResult, actor: Actor,
                        idempotency_key: str | None) -> ActionResponse:
        """Feed the caller's rating to the case's 评价 step. Stored whatever happens; a case not
        waiting for a rating answers 409 and the result stays for the dispatcher."""
        _require_hotline(actor)
        ticket = await self._ticket(ticket_no)
        key = idempotency_key or hashlib.sha256(
            result.model_dump_json().encode()).hexdigest()[:32]
        state = await self.cases.state(ticket.case_id)
        stored = await run_in_threadpool(self.records.store_follow_up, ticket_no, key,
                                         ticket.case_id, state.stage.value, result)
        if stored.outcome == "not_awaiting":
            raise _not_awaiting(state, stored.id)
        # Sent even when the case has moved on: a resend of a result that was applied gets the
        # first outcome back (same update id), and one that was not is refused by the workflow.
        cmd = Command(request_id=f"follow-up-{ticket_no}-{key}", actor=actor,
                      payload=EvaluatePayload(rating=result.rating, comment=result.note()))
        try:
            outcome = await self.cases.apply(ticket.case_id, cmd)
        except ApiError as err:
            if err.code not in ("stage_conflict", "case_closed"):
                raise
            # Another rating (or the window's end) got there first.
            await run_in_threadpool(self.records.set_follow_up_outcome, stored.id, "not_awaiting")
            raise _not_awaiting(await self.cases.state(ticket.case_id), stored.id) from None
        await run_in_threadpool(self.records.set_follow_up_outcome, stored.id, "evaluated")
        return ActionResponse.of(outcome, actor)


def _not_awaiting(state: CaseState, stored_id: int) -> ApiError:
    return ApiError(409, "not_awaiting_follow_up",
                    f"Case {state.case_id} is {state.stage.value} "
                    f"({STAGE_LABELS[state.stage]}), not waiting for a follow-up result; the "
                    "result is stored for the dispatcher and changes nothing.",
                    stage=state.stage.value, follow_up_id=stored_id)


def _require_hotline(actor: Actor) -> None:
    if actor.role != Role.HOTLINE:
        raise ApiError(403, "role_not_allowed",
                       f"Role '{actor.role.value}' may not deliver hotline work orders or "
                       "follow-up results; allowed: hotline.")


def _require_reader(actor: Actor) -> None:
    if actor.role != Role.HOTLINE and actor.role not in READ_ALL:
        raise ApiError(403, "role_not_allowed",
                       f"Role '{actor.role.value}' may not read hotline work orders.")

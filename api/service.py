"""What the routes do: open cases, send actions to their workflows, read the ledger.

Routes stay thin; every Temporal and ledger call and every mapping of a refusal to an HTTP answer
lives here.
"""

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from starlette.concurrency import run_in_threadpool
from temporalio.client import (Client, WorkflowUpdateFailedError,
                              WorkflowUpdateRPCTimeoutOrCancelledError)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError
from api.schemas import (CaseHistory, CaseView, HistoryEntry, OpenCaseRequest,
                         WhistleActionResponse, WhistleList)
from config.catalog import Catalog
from config.settings import Settings
from domain.access import read_refusal
from domain.actions import ACTION_LABELS, ALLOWED_ROLES, Action
from domain.calendar import local_text
from domain.errors import REFUSAL_STATUS
from domain.models import (ActionResult, Actor, AssignPayload, CaseEvent, CaseIntake,
                           CaseState, Command, WhistlePayload)
from domain.whistles import WhistleCommand, WhistleEvent
from domain.roles import Role
from domain.stages import STAGE_LABELS, TERMINAL_STAGES, Stage
from ledger.repository import Ledger
from runtime.cases import StartedCases, record_and_start
from runtime.logging import get_logger
from workflows.case import CaseWorkflow
from workflows.whistle import WhistleWorkflow

log = get_logger("api")


@dataclass
class Opened:
    case: CaseView
    created: bool


class CaseService:
    def __init__(self, client: Client, ledger: Ledger, catalog: Catalog, settings: Settings):
        self.client, self.ledger, self.catalog, self.settings = client, ledger, catalog, settings
        self.started_cases = StartedCases(ledger)

    # ---- intake ---------------------------------------------------------------------------------

    async def open_case(self, req: OpenCaseRequest, actor: Actor,
                        idempotency_key: str | None) -> Opened:
        _require_role(actor, Action.OPEN)
        problem = self.catalog.location_problem(req.location.district, req.location.street,
                                                req.location.community)
        if problem:
            raise ApiError(422, "unknown_location", f"The location is not in the catalog: {problem}.")
        case_id = _case_id(req.source.value, req.external_id, idempotency_key)
        existing = await self._repeated(case_id, req, idempotency_key)
        if existing:
            return Opened(await self.get_case(existing, actor), created=False)
        category = self.catalog.category(req.category) if req.category else None
        intake = CaseIntake(
            case_id=case_id, request_id=idempotency_key or case_id,
            opened_at=datetime.now(timezone.utc), source=req.source,
            external_id=req.external_id, description=req.description, location=req.location,
            urgency=req.urgency, reporter=req.reporter, attachments=req.attachments,
            received_at=req.received_at, actor=actor,
            category_hint=req.category if req.category and not category else None,
            policy=self.catalog.case_policy(category, req.urgency.value) if category else None,
            evaluation_window_days=self.catalog.evaluation_window_days,
            calendar=self.catalog.calendar,
            history_event_limit=self.settings.case_history_event_limit)
        # The row is current when the caller hears of the case, however busy the worker is,
        # and the case is kept even if Temporal is away (the worker starts it later). If the
        # ledger does not answer, nothing is recorded or started.
        opening, started = await record_and_start(self.client, self.ledger, intake,
                                                  self.settings.task_queue, self.started_cases)
        if started is False:
            return Opened(await self.get_case(case_id, actor), created=False)
        return Opened(CaseView.of(opening.state, actor), created=True)

    async def _repeated(self, case_id: str, req: OpenCaseRequest,
                        idempotency_key: str | None) -> str | None:
        """The case a repeated request opened already, found in the ledger, so that it is
        found even after Temporal has forgotten its workflow (and never started again)."""
        if req.external_id:
            return await run_in_threadpool(self.ledger.case_id_for, req.source.value,
                                           req.external_id)
        if idempotency_key and await run_in_threadpool(self.ledger.case, case_id):
            return case_id
        return None

    # ---- reads ----------------------------------------------------------------------------------

    async def get_case(self, case_id: str, actor: Actor) -> CaseView:
        return CaseView.of(await self._readable(case_id, actor), actor)

    async def state(self, case_id: str) -> CaseState:
        """The case as it stands: from the ledger, or from the workflow in the moment before its
        opening is written there."""
        state = await run_in_threadpool(self.ledger.case, case_id)
        return state if state is not None else await self._query(case_id)

    async def _readable(self, case_id: str, actor: Actor) -> CaseState:
        """The case as it stands, if `actor` may see it (404 before 403: no probing for ids)."""
        state = await self.state(case_id)
        refusal = read_refusal(actor, state)
        if refusal:
            raise ApiError(403, refusal.code, refusal.message)
        return state

    async def _query(self, case_id: str) -> CaseState:
        try:
            return await self.client.get_workflow_handle(case_id).query(
                CaseWorkflow.state,
                rpc_timeout=timedelta(seconds=self.settings.query_timeout_seconds))
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise ApiError(404, "case_not_found", f"There is no case {case_id}.") from None
            # Not in the ledger yet and its worker busy or away: a clear answer, not a 500.
            raise ApiError(503, "case_not_ready",
                           f"Case {case_id} cannot be read yet: {err.message}. Try again in a "
                           "moment.") from None

    async def history(self, case_id: str, actor: Actor) -> CaseHistory:
        await self._readable(case_id, actor)
        return await self._history(case_id)

    async def whistles(self, case_id: str, actor: Actor) -> WhistleList:
        await self._readable(case_id, actor)
        return await self._whistles(case_id)

    async def case_file(self, case_id: str, actor: Actor
                        ) -> tuple[CaseView, CaseHistory, WhistleList]:
        """The case, its history and its whistles, for one page: the case read once."""
        case = CaseView.of(await self._readable(case_id, actor), actor)
        return case, await self._history(case_id), await self._whistles(case_id)

    async def _history(self, case_id: str) -> CaseHistory:
        events = await run_in_threadpool(self.ledger.history, case_id)
        whistle_events = await run_in_threadpool(self.ledger.whistle_history, case_id)
        entries = [_history_entry(e) for e in events] + [_whistle_entry(e) for e in whistle_events]
        # Sorted is stable: at the same instant a case step stays before the whistle's own.
        entries.sort(key=lambda e: e.occurred_at)
        return CaseHistory(case_id=case_id, events=entries)

    async def _whistles(self, case_id: str) -> WhistleList:
        found = await run_in_threadpool(self.ledger.whistles, case_id)
        return WhistleList(case_id=case_id, whistles=found)

    async def whistle_act(self, case_id: str, no: int, action: Action, body, actor: Actor,
                          idempotency_key: str | None) -> WhistleActionResponse:
        _require_role(actor, action)
        state = await self._readable(case_id, actor)
        if not 1 <= no <= len(state.whistles):
            raise ApiError(404, "whistle_not_found",
                           f"Case {case_id} has no whistle {no}; it has {len(state.whistles)}.")
        whistle = state.whistles[no - 1]
        if whistle.status != "open":
            raise ApiError(409, "whistle_closed",
                           f"Whistle {no} of case {case_id} is already {whistle.status}; "
                           "it accepts no more actions.")
        request_id = idempotency_key or uuid.uuid4().hex
        cmd = WhistleCommand(request_id=request_id, actor=actor, payload=body.model_dump())
        handle = self.client.get_workflow_handle(whistle.workflow_id)
        whistle_state = await self._update(
            case_id, handle.execute_update(WhistleWorkflow.act, cmd, id=request_id), request_id)
        return WhistleActionResponse(case_id=case_id, whistle_no=no, action=action,
                                     request_id=request_id, whistle=whistle_state)

    # ---- actions --------------------------------------------------------------------------------

    async def act(self, case_id: str, action: Action, body, actor: Actor,
                  idempotency_key: str | None) -> ActionResult:
        """Whether the actor may read the case, and so act on it, is checked by the workflow
        against the case as it is (a repeated request gets its first outcome even if that
        action took the case out of the actor's reach, as an officer's 退单 does)."""
        _require_role(actor, action)
        request_id = idempotency_key or uuid.uuid4().hex
        if action == Action.ASSIGN:
            # The category's time limits depend on the case's urgency.
            payload = self._assign_payload(await self.state(case_id), body)
        elif action == Action.WHISTLE:
            payload = self._whistle_payload(body)
        else:
            payload = body.model_dump()
        if action == Action.REJECT and body.duplicate_of and body.duplicate_of != case_id:
            if await run_in_threadpool(self.ledger.case, body.duplicate_of) is None:
                raise ApiError(422, "unknown_case",
                               f"duplicate_of names case {body.duplicate_of}, which does not exist.")
        result = await self.apply(case_id, Command(request_id=request_id, actor=actor,
                                                   payload=payload))
        if result.action != action:
            raise ApiError(422, "idempotency_key_reused",
                           f"Idempotency-Key {request_id} was already used for "
                           f"'{result.action.value}', not '{action.value}'.")
        return result

    async def apply(self, case_id: str, cmd: Command) -> ActionResult:
        """Send an action, already authorised, to the case's workflow; the request id is the
        update id, so a repeat gets the first outcome."""
        handle = self.client.get_workflow_handle(case_id)
        return await self._update(
            case_id, handle.execute_update(CaseWorkflow.act, cmd, id=cmd.request_id),
            cmd.request_id)

    async def _update(self, case_id: str, update, request_id: str):
        """Await an update, turning each way it can fail into the caller's answer."""
        try:
            # A timeout scope, not wait_for: no task of its own for every request.
            async with asyncio.timeout(self.settings.action_timeout_seconds):
                return await update
        except WorkflowUpdateFailedError as err:
            raise _refusal(err.cause) from None
        except (asyncio.TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise ApiError(504, "action_pending",
                           "The case did not answer in time; send the same request again with "
                           "the same Idempotency-Key to learn its outcome.",
                           request_id=request_id) from None
        except RPCError as err:
            raise await self._closed_or_missing(case_id, err) from None

    async def note(self, case_id: str, action: Action, body, actor: Actor,
                   idempotency_key: str | None) -> str:
        """Supplements and 督办 notes: fire-and-forget signals, refused only if the case is over."""
        _require_role(actor, action)
        state = await self._readable(case_id, actor)
        if state.stage in TERMINAL_STAGES:
            raise _closed(state)
        request_id = idempotency_key or uuid.uuid4().hex
        cmd = Command(request_id=request_id, actor=actor, payload=body.model_dump())
        try:
            await self.client.get_workflow_handle(case_id).signal(CaseWorkflow.note, cmd)
        except RPCError as err:
            raise await self._closed_or_missing(case_id, err) from None
        return request_id

    def _assign_payload(self, state: CaseState, body) -> AssignPayload:
        if not self.catalog.team(body.team):
            raise ApiError(422, "unknown_team", f"There is no team '{body.team}'.",
                           teams=sorted(self.catalog.teams))
        policy = None
        if body.category:
            category = self.catalog.category(body.category)
            if not category:
                raise ApiError(422, "unknown_category", f"There is no category '{body.category}'.")
            policy = self.catalog.case_policy(category, state.urgency.value)
        return AssignPayload(team=body.team, policy=policy, note=body.note)

    def _whistle_payload(self, body) -> WhistlePayload:
        kind = self.catalog.whistle_kinds.get(body.kind)
        if kind is None:
            raise ApiError(422, "unknown_whistle_kind", f"There is no whistle kind '{body.kind}'.",
                           kinds=sorted(self.catalog.whistle_kinds))
        departments = []
        for name in body.departments:
            department = self.catalog.department(name)
            if department is None:
                raise ApiError(422, "unknown_department", f"There is no department '{name}'.")
            departments.append(department.name)
        return WhistlePayload(whistle_kind=kind.code, whistle_kind_name=kind.name,
                              report_in_limit=str(kind.report_in), departments=departments,
                              reason=body.reason)

    async def _closed_or_missing(self, case_id: str, err: RPCError) -> ApiError:
        # The workflow is gone (finished, or past retention): the ledger tells which.
        state = await run_in_threadpool(self.ledger.case, case_id)
        if state is not None and state.stage in TERMINAL_STAGES:
            return _closed(state)
        if err.status == RPCStatusCode.NOT_FOUND:
            if state is None:
                return ApiError(404, "case_not_found", f"There is no case {case_id}.")
            if await run_in_threadpool(self.ledger.start_pending, case_id):
                return ApiError(503, "case_not_ready",
                                f"Case {case_id} is recorded and its workflow is being started; "
                                "try again in a moment.")
        return ApiError(503, "temporal_unavailable", f"The case engine did not answer: {err.message}")


def _case_id(source: str, external_id: str | None, idempotency_key: str | None) -> str:
    if external_id:
        return f"{source}-{external_id}"
    if idempotency_key:
        return f"{source}-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]}"
    return f"{source}-{uuid.uuid4().hex[:20]}"


def _require_role(actor: Actor, action: Action) -> None:
    if actor.role not in ALLOWED_ROLES[action] or actor.role == Role.SYSTEM:
        roles = ", ".join(sorted(ALLOWED_ROLES[action]))
        raise ApiError(403, "role_not_allowed",
                       f"Role '{actor.role.value}' may not {action.value}; allowed: {roles}.")


def _refusal(cause: BaseException | None) -> ApiError:
    if isinstance(cause, ApplicationError) and cause.type:
        details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        details = {k: v for k, v in details.items() if k != "code"}
        return ApiError(REFUSAL_STATUS.get(cause.type, 409), cause.type, cause.message, **details)
    return ApiError(500, "action_failed", f"The action failed: {cause}")


def _closed(state: CaseState) -> ApiError:
    return ApiError(409, "case_closed",
                    f"Case {state.case_id} is {state.stage.value} ({STAGE_LABELS[state.stage]}); "
                    "it accepts no more actions.", stage=state.stage.value, allowed=[])


def _who(actor: Actor) -> str:
    scope = actor.team or actor.department
    return f"{actor.name or actor.id}({actor.role.value}{'，' + scope if scope else ''})"


def _whistle_entry(e: WhistleEvent) -> HistoryEntry:
    summary = (f"{local_text(e.occurred_at)} {_who(e.actor)} 第{e.whistle_no}次吹哨 "
               f"{ACTION_LABELS[e.action]}" + (f"。{e.note}" if e.note else ""))
    return HistoryEntry(seq=e.seq, whistle_no=e.whistle_no, department=e.department,
                        occurred_at=e.occurred_at, action=e.action,
                        action_label=ACTION_LABELS[e.action], actor=e.actor, from_stage=None,
                        from_label=None, to_stage=Stage.ESCALATED,
                        to_label=STAGE_LABELS[Stage.ESCALATED], round=0, note=e.note,
                        evidence=e.evidence, payload=e.payload, summary=summary)


def _history_entry(e: CaseEvent) -> HistoryEntry:
    who, local = _who(e.actor), local_text(e.occurred_at)
    stages = (f"{STAGE_LABELS[e.from_stage]} → {STAGE_LABELS[e.to_stage]}" if e.from_stage
              else STAGE_LABELS[e.to_stage])
    summary = f"{local} {who} {ACTION_LABELS[e.action]}：{stages}" + (f"。{e.note}" if e.note else "")
    return HistoryEntry(seq=e.seq, occurred_at=e.occurred_at, action=e.action,
                        action_label=ACTION_LABELS[e.action], actor=e.actor,
                        from_stage=e.from_stage,
                        from_label=STAGE_LABELS[e.from_stage] if e.from_stage else None,
                        to_stage=e.to_stage, to_label=STAGE_LABELS[e.to_stage], round=e.round,
                        note=e.note, evidence=e.evidence, payload=e.payload, summary=summary)

from typing import Annotated

from fastapi import APIRouter, Body, Path, Response, status

from api.auth import CurrentActor
from api.deps import IdempotencyKey, Service
from api.errors import ErrorBody
from api.schemas import (ACTIONS, ActionResponse, ActionSpec, CaseHistory, CaseView,
                         OpenCaseRequest, SignalAccepted)

router = APIRouter(prefix="/cases", tags=["cases"])

CaseId = Annotated[str, Path(max_length=128, examples=["hotline-2026112200123"])]
ERRORS = {status: {"model": ErrorBody} for status in (401, 403, 404, 422)}
# Also possible on every POST: body too large, engine unreachable, no answer in time.
POST_ERRORS = {**ERRORS, **{status: {"model": ErrorBody} for status in (413, 503, 504)}}


@router.post("", status_code=201, response_model=CaseView, summary="受理立案: open a case",
             responses={200: {"model": CaseView, "description": "The case already existed"},
                        **POST_ERRORS})
async def open_case(body: OpenCaseRequest, actor: CurrentActor, service: Service,
                    response: Response, idempotency_key: IdempotencyKey = None) -> CaseView:
    """Open a case. Idempotent on (source, external_id): the same hotline ticket twice answers
    with the same case (201 the first time, 200 after) and never starts a second workflow."""
    opened = await service.open_case(body, actor, idempotency_key)
    if not opened.created:
        response.status_code = status.HTTP_200_OK
    return opened.case


@router.get("/{case_id}", response_model=CaseView, summary="案件详情: where a case stands",
            responses=ERRORS)
async def get_case(case_id: CaseId, actor: CurrentActor, service: Service) -> CaseView:
    return await service.get_case(case_id, actor)


@router.get("/{case_id}/history", response_model=CaseHistory, responses=ERRORS,
            summary="办理过程: every step of a case, in order")
async def get_history(case_id: CaseId, actor: CurrentActor, service: Service) -> CaseHistory:
    """Read from the ledger, so it answers after the case closed and after Temporal's
    retention has passed."""
    return await service.history(case_id, actor)


def _add_action_route(spec: ActionSpec) -> None:
    body_type = Annotated[spec.body, Body(openapi_examples={"example": {"value": spec.example}})]
    refusals = {**POST_ERRORS, 409: {"model": ErrorBody}}

    if spec.signal:
        async def endpoint(case_id: CaseId, body: body_type, actor: CurrentActor,
                           service: Service,
                           idempotency_key: IdempotencyKey = None) -> SignalAccepted:
            request_id = await service.note(case_id, spec.action, body, actor, idempotency_key)
            return SignalAccepted(case_id=case_id, action=spec.action, request_id=request_id,
                                  message="Recorded in the case history; the stage is unchanged.")
        response_model, status_code = SignalAccepted, 202
    else:
        async def endpoint(case_id: CaseId, body: body_type, actor: CurrentActor,
                           service: Service,
                           idempotency_key: IdempotencyKey = None) -> ActionResponse:
            result = await service.act(case_id, spec.action, body, actor, idempotency_key)
            return ActionResponse.of(result, actor)
        response_model, status_code = ActionResponse, 200

    router.add_api_route(f"/{{case_id}}/actions/{spec.action.value}", endpoint, methods=["POST"],
                         response_model=response_model, status_code=status_code,
                         summary=spec.summary, description=spec.description,
                         responses=refusals, name=f"action_{spec.action.value}",
                         tags=["actions"])


for _spec in ACTIONS:
    _add_action_route(_spec)

from typing import Annotated

from fastapi import APIRouter, Body, Path

from api.auth import CurrentActor
from api.deps import IdempotencyKey, Service
from api.errors import ErrorBody
from api.routes.cases import ERRORS, POST_ERRORS, CaseId
from api.schemas import WHISTLE_ACTIONS, WhistleActionResponse, WhistleActionSpec, WhistleList

router = APIRouter(prefix="/cases/{case_id}/whistles", tags=["whistles"])

WhistleNo = Annotated[int, Path(ge=1, le=1000, description="1 for the case's first whistle")]


@router.get("", response_model=WhistleList, responses=ERRORS,
            summary="吹哨报到记录: every whistle of a case with each department's record")
async def list_whistles(case_id: CaseId, actor: CurrentActor, service: Service) -> WhistleList:
    """Per summoned department: summoned at, report-in deadline, reported in at, late or not,
    reminders sent, done at. Read from the ledger."""
    return await service.whistles(case_id, actor)


def _add_route(spec: WhistleActionSpec) -> None:
    body_type = Annotated[spec.body, Body(openapi_examples={"example": {"value": spec.example}})]

    async def endpoint(case_id: CaseId, whistle_no: WhistleNo, body: body_type,
                       actor: CurrentActor, service: Service,
                       idempotency_key: IdempotencyKey = None) -> WhistleActionResponse:
        return await service.whistle_act(case_id, whistle_no, spec.action, body, actor,
                                         idempotency_key)

    router.add_api_route(f"/{{whistle_no}}/{spec.path}", endpoint, methods=["POST"],
                         response_model=WhistleActionResponse, summary=spec.summary,
                         description=spec.description, name=f"whistle_{spec.path}",
                         responses={**POST_ERRORS, 409: {"model": ErrorBody}})


for _spec in WHISTLE_ACTIONS:
    _add_route(_spec)

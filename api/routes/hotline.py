"""The 12345 hotline's contract: work orders in, the caller's follow-up result back, and a
ticket's case with its follow-up list. Callbacks go the other way, through the outbox."""

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response, status

from api.auth import CurrentActor
from api.deps import IdempotencyKey
from api.errors import ErrorBody
from api.hotline import HotlineService, ReceivedWorkOrder, WorkOrderView
from api.schemas import ActionResponse
from config.hotline_codes import load_hotline_codes
from domain.hotline import FollowUpResult, WorkOrder
from ledger.hotline import HotlineRecords

router = APIRouter(prefix="/hotline", tags=["hotline"])

TicketNo = Annotated[str, Path(pattern=r"^[A-Za-z0-9._:-]{1,100}$",
                               examples=["2026112200123"])]
ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404, 413, 422, 503, 504)}


def hotline_service(app: FastAPI) -> HotlineService:
    """Built once per app, from the case service and the hotline's code mapping (a broken
    mapping file fails here, which the lifespan calls at start-up)."""
    found = getattr(app.state, "hotline", None)
    if found is None:
        cases = app.state.service
        codes = load_hotline_codes(app.state.settings.config_dir, cases.catalog)
        found = app.state.hotline = HotlineService(cases, HotlineRecords(cases.ledger.engine),
                                                   codes)
    return found


async def _service(request: Request) -> HotlineService:
    return hotline_service(request.app)


Hotline = Annotated[HotlineService, Depends(_service)]


@router.post("/work-orders", status_code=201, response_model=ReceivedWorkOrder,
             summary="12345工单: receive a work order",
             responses={200: {"model": ReceivedWorkOrder,
                              "description": "Received before, or merged into an open case"},
                        **ERRORS})
async def receive_work_order(body: WorkOrder, actor: CurrentActor, hotline: Hotline,
                             response: Response) -> ReceivedWorkOrder:
    """Map the platform's work order to a case (hotline role). Its category code is looked up
    in config/data/hotline_codes.yaml: a mapped code routes the case to its team, an unmapped
    one leaves it in `reported` for the dispatcher. 201 `opened` for a new case; 200 `existing`
    when the ticket was received before; 200 `merged` when it repeats an open case of the same
    category at the same spot (same community, or within BIHUAN_HOTLINE_DUPLICATE_DISTANCE_M
    when both have coordinates): the ticket joins that case's follow-up list and its history
    records a supplement, instead of a second rectification."""
    received = await hotline.receive(body, actor)
    if not received.created:
        response.status_code = status.HTTP_200_OK
    return received.body


@router.get("/work-orders/{ticket_no}", response_model=WorkOrderView, responses=ERRORS,
            summary="工单进度: a ticket's case, callers to call back and follow-up results")
async def get_work_order(ticket_no: TicketNo, actor: CurrentActor,
                         hotline: Hotline) -> WorkOrderView:
    return await hotline.work_order(ticket_no, actor)


@router.post("/work-orders/{ticket_no}/follow-up", response_model=ActionResponse,
             responses={**ERRORS, 409: {"model": ErrorBody}},
             summary="回访结果: the caller's rating after the follow-up call")
async def post_follow_up(ticket_no: TicketNo, body: FollowUpResult, actor: CurrentActor,
                         hotline: Hotline,
                         idempotency_key: IdempotencyKey = None) -> ActionResponse:
    """Takes the case's 评价 step with the caller's rating (a dissatisfied rating goes to
    社区复核). The result is stored in any case; when the case is not waiting for one it is
    answered 409 `not_awaiting_follow_up` and nothing else changes. Send the same
    Idempotency-Key to resend a result."""
    return await hotline.follow_up(ticket_no, body, actor, idempotency_key)

"""Operations: what the outbox still owes the outside world (webhooks, the hotline's
callbacks), for admins and supervisors."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.auth import CurrentActor
from api.errors import ApiError, ErrorBody
from domain.models import Audience
from domain.roles import Role
from ledger import outbox
from notifications.relay import redact_url

router = APIRouter(prefix="/admin", tags=["admin"])

OPERATORS = frozenset({Role.ADMIN, Role.SUPERVISOR})


class OutboxItem(BaseModel):
    event_id: str
    kind: str
    case_id: str
    audience: Audience
    occurred_at: datetime
    sequence: int | None = Field(description="The case event's number (hotline callbacks)")
    endpoint: str = Field(description="Without credentials or query")
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None


class OutboxReport(BaseModel):
    status: str
    counts: dict[str, int] = Field(description="Deliveries per status (of the audience, if one "
                                               "is asked for)")
    items: list[OutboxItem]


@router.get("/outbox", response_model=OutboxReport,
            responses={code: {"model": ErrorBody} for code in (401, 403, 422)},
            summary="投递状态: deliveries still pending or given up")
async def get_outbox(request: Request, actor: CurrentActor,
                     status: Literal["pending", "failed"] = "pending",
                     audience: Audience | None = None,
                     case_id: Annotated[str | None, Query(max_length=128)] = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100) -> OutboxReport:
    """Pending deliveries (waiting for their next attempt, with the last error) or failed ones
    (attempts used up), e.g. `?status=failed&audience=hotline` for callbacks the platform
    never acknowledged. Admins and supervisors only."""
    if actor.role not in OPERATORS:
        raise ApiError(403, "role_not_allowed",
                       f"Role '{actor.role.value}' may not read the outbox; allowed: admin, "
                       "supervisor.")
    engine = request.app.state.service.ledger.engine
    who = audience.value if audience else None
    found = await run_in_threadpool(outbox.deliveries, engine, status, who, case_id, limit)
    counts = await run_in_threadpool(outbox.status_counts, engine, who)
    items = [OutboxItem(event_id=e.notification.event_id, kind=e.notification.kind,
                        case_id=e.notification.case_id, audience=e.notification.audience,
                        occurred_at=e.notification.occurred_at,
                        sequence=e.notification.data.get("sequence"),
                        endpoint=redact_url(e.delivery.endpoint), status=e.delivery.status,
                        attempts=e.delivery.attempts,
                        next_attempt_at=e.delivery.next_attempt_at,
                        last_error=e.delivery.last_error, delivered_at=e.delivery.delivered_at)
             for e in found]
    return OutboxReport(status=status, counts=counts, items=items)

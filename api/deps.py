from typing import Annotated

from fastapi import Depends, Header, Request

from api.service import CaseService


# Async, as every dependency on the request path: a plain function would be run in the thread
# pool, a hand-off per request for reading an attribute.
async def get_service(request: Request) -> CaseService:
    return request.app.state.service


Service = Annotated[CaseService, Depends(get_service)]

IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", pattern=r"^[A-Za-z0-9._:-]{1,200}$",
    description="The caller's request id. A request repeated with the same key is applied once "
                "and answered with the first outcome.")]

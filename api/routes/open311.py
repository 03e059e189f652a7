"""Open311 GeoReport v2 (https://wiki.open311.org/GeoReport_v2) under /open311/v2/, in JSON
and XML: the city's categories as services, cases as service requests. Errors use the
standard's own shape, [{"code", "description"}], not the rest of the API's."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from api.deps import IdempotencyKey
from api.errors import ErrorBody
from api.open311.formats import Open311Error, error_response, respond
from api.open311.service import Open311Service

router = APIRouter(prefix="/open311/v2", tags=["open311"])


def _documented(body: dict, *statuses: int) -> dict:
    """The answers a route gives: `body` (JSON, or the XML document) on success, the
    standard's errors otherwise; FastAPI's own 422 for a malformed header."""
    def content(schema: dict) -> dict:
        return {"application/json": {"schema": schema}, "text/xml": {"schema": {"type": "string"}}}
    errors = {"type": "array", "items": {"type": "object", "properties": {
        "code": {"type": "integer"}, "description": {"type": "string"}}}}
    answers = {status: {"description": "GeoReport v2 answer", "content": content(body)}
               for status in statuses}
    answers.update({status: {"description": "GeoReport v2 errors", "content": content(errors)}
                    for status in (400, 403, 404, 503)})
    answers[422] = {"model": ErrorBody, "description": "A malformed header"}
    answers[413] = {"model": ErrorBody, "description": "The body is too large"}
    return answers


LIST = {"type": "array", "items": {"type": "object"}}
REQUEST_FORM = {"type": "object", "required": ["api_key", "service_code"], "properties": {
    name: {"type": "string"} for name in (
        "api_key", "service_code", "attribute[district]", "attribute[street]",
        "attribute[community]", "lat", "long", "address_string", "description", "first_name",
        "last_name", "phone", "email", "media_url")}}
OBJECT = {"type": "object"}

Fmt = Annotated[str, Path(description="json or xml", examples=["json"])]


def _service(request: Request) -> Open311Service:
    found = getattr(request.app.state, "open311", None)
    if found is None:
        found = request.app.state.open311 = Open311Service(request.app.state.service)
    return found


async def _answer(fmt: str, root: str,
                  produce: Callable[[], Awaitable[tuple[Any, int]]]) -> Response:
    """Run `produce` (the body and the status) and write it in `fmt`, or the error it raised."""
    if fmt not in ("json", "xml"):
        return error_response("json", Open311Error(404, f"Format {fmt!r} is not served; use "
                                                        "json or xml."))
    try:
        body, status = await produce()
    except Open311Error as error:
        return error_response(fmt, error)
    return respond(fmt, root, body, status=status)


async def _read(fmt: str, request: Request, root: str,
                read: Callable[[Open311Service], Awaitable[Any]]) -> Response:
    """A read, after the api_key check reads may be configured to need."""
    svc = _service(request)

    async def produce():
        svc.check_read(request.query_params.get("api_key"))
        return await read(svc), 200
    return await _answer(fmt, root, produce)


@router.get("/services.{fmt}", summary="GeoReport: the service list (our categories)",
            response_class=Response, responses=_documented(LIST, 200))
async def services(fmt: Fmt, request: Request) -> Response:
    return await _read(fmt, request, "services", lambda svc: svc.services())


@router.get("/services/{service_code}.{fmt}", summary="GeoReport: a service's definition",
            response_class=Response, responses=_documented(OBJECT, 200))
async def service_definition(service_code: str, fmt: Fmt, request: Request) -> Response:
    return await _read(fmt, request, "service_definition",
                       lambda svc: svc.definition(service_code))


@router.post("/requests.{fmt}", summary="GeoReport: open a service request",
             response_class=Response, status_code=201, responses=_documented(LIST, 200, 201),
             openapi_extra={"requestBody": {"content": {
                 "application/x-www-form-urlencoded": {"schema": REQUEST_FORM}}}})
async def create_request(fmt: Fmt, request: Request,
                         idempotency_key: IdempotencyKey = None) -> Response:
    """Form-encoded: api_key, service_code, attribute[district] (and optionally
    attribute[street], attribute[community]), lat and long or address_string, description,
    first_name, last_name, phone, media_url. 201 with the service_request_id; an
    Idempotency-Key header makes a resend answer 200 with the same id."""
    svc, body = _service(request), await request.body()

    async def produce():
        answer, is_new = await svc.create(body, idempotency_key)
        return answer, 201 if is_new else 200
    return await _answer(fmt, "service_requests", produce)


@router.get("/requests.{fmt}", summary="GeoReport: query service requests",
            response_class=Response, responses=_documented(LIST, 200))
async def list_requests(fmt: Fmt, request: Request) -> Response:
    """Filters: service_request_id (comma list, overrides the rest), service_code (comma list),
    start_date and end_date (W3C, at most 90 days apart; the latest 90 days by default),
    status (open, closed). page_size (at most 1000, the default) and page page through."""
    return await _read(fmt, request, "service_requests",
                       lambda svc: svc.requests(dict(request.query_params)))


@router.get("/requests/{service_request_id}.{fmt}", summary="GeoReport: one service request",
            response_class=Response, responses=_documented(LIST, 200))
async def get_request(service_request_id: str, fmt: Fmt, request: Request) -> Response:
    return await _read(fmt, request, "service_requests",
                       lambda svc: svc.request(service_request_id))

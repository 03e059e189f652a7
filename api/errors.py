"""One error shape for every refusal: {"code": machine-readable, "message": a sentence, ...}.

Refused attempts (401, 403, 409) are logged with who, what, which case and why, and counted."""

from collections import Counter

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from pydantic import BaseModel
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from runtime.logging import get_logger

LOGGED_STATUSES = frozenset({401, 403, 409})
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
log = get_logger("api")


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict = {}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None,
                 **details: object) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
        self.headers = headers


def _field_errors(exc: RequestValidationError) -> list[dict]:
    errors = []
    for err in exc.errors():
        # Drop the leading "body"/"path"; a JSON syntax error's location is a character offset.
        loc = [str(part) for part in err["loc"][1:]] if err["type"] != "json_invalid" else []
        errors.append({"field": ".".join(loc) or str(err["loc"][0]), "message": err["msg"],
                       "type": err["type"]})
    return errors


def _record_refusal(request: Request, exc: ApiError) -> None:
    actor = getattr(request.state, "actor", None)
    request.app.state.refusals[(exc.status, exc.code)] += 1
    log.warning("refused", status=exc.status, code=exc.code, reason=exc.message,
                method=request.method, path=request.url.path,
                case_id=request.path_params.get("case_id"),
                actor_id=actor.id if actor else None, role=actor.role.value if actor else None)


def install(app: FastAPI) -> None:
    app.state.refusals = Counter()

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        if exc.status in LOGGED_STATUSES:
            _record_refusal(request, exc)
        body = ErrorBody(code=exc.code, message=exc.message, details=exc.details)
        return JSONResponse(body.model_dump(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode (not UTF-8): a malformed request.
            body = ErrorBody(code="invalid_input", message="The request body is not valid JSON "
                             "text (UTF-8).", details={"errors": [{"field": "body",
                                                                   "message": str(exc.detail),
                                                                   "type": "json_invalid"}]})
            return JSONResponse(body.model_dump(), status_code=422)
        code = HTTP_CODES.get(exc.status_code, "http_error")
        body = ErrorBody(code=code, message=str(exc.detail))
        return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=exc.headers)

    async def _ledger_away(request: Request, exc: Exception) -> JSONResponse:
        log.warning("ledger unavailable", method=request.method, path=request.url.path,
                    error=str(exc).splitlines()[0])
        body = ErrorBody(code="ledger_unavailable",
                         message="The ledger (the case database) did not answer. Send the same "
                         "request again: with the same Idempotency-Key or ticket it is applied "
                         "once.")
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "5"})

    for away in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(away, _ledger_away)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        fields = ", ".join(e["field"] for e in errors)
        body = ErrorBody(code="invalid_input",
                         message=f"The request is not valid; check these fields: {fields}.",
                         details={"errors": errors})
        return JSONResponse(body.model_dump(), status_code=422)

"""One error shape for every refusal: {"code": machine-readable, "message": a sentence, ...}."""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict = {}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def _field_errors(exc: RequestValidationError) -> list[dict]:
    errors = []
    for err in exc.errors():
        # Drop the leading "body"/"path" and the discriminator tags pydantic inserts.
        loc = [str(part) for part in err["loc"][1:]]
        errors.append({"field": ".".join(loc) or str(err["loc"][0]), "message": err["msg"],
                       "type": err["type"]})
    return errors


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        body = ErrorBody(code=exc.code, message=exc.message, details=exc.details)
        return JSONResponse(body.model_dump(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        fields = ", ".join(e["field"] for e in errors)
        body = ErrorBody(code="invalid_input",
                         message=f"The request is not valid; check these fields: {fields}.",
                         details={"errors": errors})
        return JSONResponse(body.model_dump(), status_code=422)

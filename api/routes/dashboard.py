"""督办看板 routes: thin, each page gathered by api.dashboard.pages and rendered from
api/dashboard/templates. Signed in by the same bearer tokens as the JSON API (see
api.dashboard.session)."""

import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path as PathParam, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from api.auth import verify_token
from api.dashboard import pages, session
from api.dashboard.labels import (ROLE_LABELS, limit_text, outcome_text, refusal_text,
                                  sign_in_text)
from api.deps import IdempotencyKey, Service
from api.errors import ApiError
from api.schemas import ACTIONS
from config.catalog import URGENCY_LABELS
from domain.actions import Action
from domain.calendar import local_text
from domain.lifecycle import STEP_LABELS
from domain.models import RATING_LABELS, SOURCE_LABELS
from domain.stages import STAGE_LABELS

PACKAGE = Path(__file__).resolve().parent.parent / "dashboard"
templates = Jinja2Templates(directory=PACKAGE / "templates")
templates.env.filters["lhasa"] = lambda moment, fmt="%Y-%m-%d %H:%M": (
    local_text(moment, fmt) if moment else "—")
templates.env.filters["limit"] = limit_text
templates.env.filters["percent"] = lambda value: "—" if value is None else f"{value:.1%}"
templates.env.globals.update(STAGE_LABELS=STAGE_LABELS, SOURCE_LABELS=SOURCE_LABELS,
                             URGENCY_LABELS=URGENCY_LABELS, ROLE_LABELS=ROLE_LABELS,
                             STEP_NAMES=STEP_LABELS, RATING_LABELS=RATING_LABELS,
                             outcome=outcome_text,
                             # Each 督办 form's Idempotency-Key: a double click is applied once.
                             new_key=lambda: uuid.uuid4().hex)
# Scripts and styles only from this server; photos of evidence may be anywhere.
CSP = ("default-src 'self'; img-src 'self' data: https: http:; style-src 'self'; "
       "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
URGE_BODY = next(spec.body for spec in ACTIONS if spec.action == Action.URGE)

router = APIRouter(prefix=session.PATH, include_in_schema=False)
CaseId = Annotated[str, PathParam(max_length=128)]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _page(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    context.setdefault("actor", getattr(request.state, "actor", None))
    response = templates.TemplateResponse(request, template, context, status_code=status)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    return response


def _refused(request: Request, err: ApiError, nav: str) -> HTMLResponse:
    own = err.code == pages.FILTER_REFUSED
    return _page(request, "refused.html", status=err.status, nav=nav, code=err.code,
                 message=err.message if own else refusal_text(err.code))


async def _render(request: Request, nav: str, template: str, gather) -> HTMLResponse:
    session.signed_in(request)
    try:
        data = await gather(request.state.actor)
    except ApiError as err:
        return _refused(request, err, nav)
    return _page(request, template, nav=nav, **data)


# ---- signing in ---------------------------------------------------------------------------------

@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None, reason: str | None = None):
    return _page(request, "login.html", next=session.safe_next(next),
                 error=sign_in_text(reason))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request):
    fields = await session.form_fields(request)
    token, target = fields.get("token", "").strip(), session.safe_next(fields.get("next"))
    if token.lower().startswith("bearer "):  # pasted with the header's scheme
        token = token[7:].strip()
    try:
        if not token:
            raise ApiError(401, "missing_token", "No token was given.")
        verify_token(request.app.state.settings, token)
    except ApiError as err:
        return _page(request, "login.html", status=401, next=target,
                     error=sign_in_text(err.code))
    response = RedirectResponse(target, status_code=303)
    session.keep_token(request, response, token)
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse(f"{session.PATH}/login", status_code=303)
    session.forget_token(response)
    return response


# ---- pages --------------------------------------------------------------------------------------

@router.get("", response_class=HTMLResponse)
async def overview(request: Request, service: Service):
    return await _render(request, "overview", "overview.html",
                         lambda actor: pages.overview(service, actor, _now()))


@router.get("/overdue", response_class=HTMLResponse)
async def overdue(request: Request, service: Service):
    return await _render(request, "overdue", "overdue.html",
                         lambda actor: pages.overdue_board(service, actor, _now()))


@router.get("/cases", response_class=HTMLResponse)
async def cases(request: Request, service: Service):
    params = list(request.query_params.multi_items())
    return await _render(request, "cases", "cases.html",
                         lambda actor: pages.case_list(service, actor, params))


@router.get("/cases/{case_id}", response_class=HTMLResponse)
async def case(request: Request, case_id: CaseId, service: Service):
    return await _render(request, "cases", "case.html",
                         lambda actor: pages.case_detail(service, actor, case_id, _now()))


@router.get("/whistles", response_class=HTMLResponse)
async def whistles(request: Request, service: Service):
    start, end = request.query_params.get("from"), request.query_params.get("to")
    return await _render(request, "whistles", "whistles.html",
                         lambda actor: pages.whistle_board(service, actor, _now(), start, end))


@router.get("/map", response_class=HTMLResponse)
async def case_map(request: Request, service: Service):
    return await _render(request, "map", "map.html",
                         lambda actor: pages.case_places(service, actor))


# ---- 督办 ----------------------------------------------------------------------------------------

@router.post("/cases/{case_id}/urge")
async def urge(request: Request, case_id: CaseId, service: Service,
               idempotency_key: IdempotencyKey = None) -> JSONResponse:
    """The dashboard's 督办 button: the API's urge action, taken by the signed-in supervisor."""
    try:
        actor = session.signed_in(request)
    except session.SignInRequired as needed:
        raise ApiError(401, needed.reason or "missing_token", "登录已失效，请重新登录。") from None
    session.require_script_header(request)
    try:
        body = URGE_BODY.model_validate_json(await request.body())
    except ValueError:
        raise ApiError(422, "invalid_input", "请填写督办意见。") from None
    try:
        request_id = await service.note(case_id, Action.URGE, body, actor, idempotency_key)
    except ApiError as err:
        raise ApiError(err.status, err.code, refusal_text(err.code), **err.details) from None
    return JSONResponse({"case_id": case_id, "request_id": request_id,
                         "message": "督办已发送，将记入案件办理过程。"}, status_code=202)


def install(app: FastAPI) -> None:
    """The pages, their static files, and sending a browser without a token to sign in."""
    app.include_router(router)
    app.mount(f"{session.PATH}/static", StaticFiles(directory=PACKAGE / "static"),
              name="dashboard-static")

    @app.exception_handler(session.SignInRequired)
    async def _sign_in(request: Request, exc: session.SignInRequired) -> RedirectResponse:
        return session.sign_in_redirect(request, exc.reason)

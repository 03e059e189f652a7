"""Open311 GeoReport v2 over bihuan: categories are services, cases are service requests.

Requests are opened through CaseService as a hotline-role identity named by the api_key
(BIHUAN_OPEN311_API_KEYS) and read from the ledger. Our stages map to open/closed with the
stage in status_notes; agency_responsible is the team, expected_datetime the current deadline.
No reporter's name or phone is ever listed.
"""

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from api.open311.formats import Open311Error
from api.schemas import OpenCaseRequest
from api.service import CaseService
from config.catalog import Category
from domain.models import Actor, CaseState, Location, Reporter, Source
from domain.roles import Role
from domain.stages import STAGE_LABELS, TERMINAL_STAGES, Stage
from ledger.tables import CaseRow, CaseStateRow

MAX_SPAN = timedelta(days=90)
DEFAULT_PAGE_SIZE = MAX_PAGE_SIZE = 1000
MAX_IDS = 200
LOCATION_ATTRIBUTES = ("district", "street", "community")


class Open311Service:
    def __init__(self, cases: CaseService) -> None:
        self.cases = cases
        self.catalog = cases.catalog
        self.settings = cases.settings

    # ---- identity -------------------------------------------------------------------------------

    def identity(self, api_key: str | None) -> Actor:
        name = self.settings.open311_api_keys.get(api_key or "")
        if not api_key or name is None:
            raise Open311Error(403, "api_key is missing or not known.")
        return Actor(id=name, name=name, role=Role.HOTLINE)

    def check_read(self, api_key: str | None) -> None:
        if not self.settings.open311_public_reads:
            self.identity(api_key)

    # ---- services -------------------------------------------------------------------------------

    async def services(self) -> list[dict]:
        return [{"service_code": c.code, "service_name": c.name, "description": c.description,
                 "metadata": True, "type": "realtime", "keywords": "", "group": c.team}
                for c in self.catalog.categories.values()]

    async def definition(self, code: str) -> dict:
        self._category(code)
        districts = [{"key": d, "name": d} for d in self.catalog.districts]
        return {"service_code": code, "attributes": [
            _attribute(1, "district", "singlevaluelist", True, "区县 (district or county)",
                       "One of the listed districts", districts),
            _attribute(2, "street", "string", False, "街道/乡镇 (street or township)",
                       "As GET /catalog/districts lists it"),
            _attribute(3, "community", "string", False, "社区/村 (community or village)",
                       "As GET /catalog/districts lists it"),
        ]}

    def _category(self, code: str | None) -> Category:
        category = self.catalog.categories.get(code or "")
        if category is None:
            raise Open311Error(404, f"service_code {code!r} is not a service here; see "
                                    "services.json.")
        return category

    # ---- opening a request ----------------------------------------------------------------------

    async def create(self, body: bytes, idempotency_key: str | None) -> tuple[list[dict], bool]:
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise Open311Error(400, "The form is not UTF-8 text.") from None
        actor = self.identity(form.get("api_key"))
        category = self._category(form.get("service_code"))
        request = _open_request(form, category)
        try:
            opened = await self.cases.open_case(request, actor, idempotency_key)
        except ApiError as err:
            raise Open311Error(400 if err.status == 422 else err.status, err.message) from None
        notice = f"已受理，由{opened.case.team}办理" if opened.case.team else "已受理，待派单"
        return ([{"service_request_id": opened.case.case_id, "service_notice": notice,
                  "account_id": None}], opened.created)

    # ---- reading requests -----------------------------------------------------------------------

    async def requests(self, params: dict[str, str]) -> list[dict]:
        ids = _split(params.get("service_request_id"))
        if len(ids) > MAX_IDS:
            raise Open311Error(400, f"At most {MAX_IDS} service_request_id values at once.")
        codes = _split(params.get("service_code"))
        for code in codes:
            self._category(code)
        statuses = _split(params.get("status"))
        if set(statuses) - {"open", "closed"}:
            raise Open311Error(400, "status must be open, closed or both (comma separated).")
        start, end = _date_range(params.get("start_date"), params.get("end_date"))
        page_size = _whole(params, "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        page = _whole(params, "page", 1, 1_000_000)
        states = await run_in_threadpool(
            _select, self.cases.ledger.engine, ids, codes, statuses, start, end, page_size,
            (page - 1) * page_size)
        return [self._request(state) for state in states]

    async def request(self, case_id: str) -> list[dict]:
        try:
            state = await self.cases.state(case_id)
        except ApiError:
            raise Open311Error(404, f"There is no service request {case_id}.") from None
        return [self._request(state)]

    def _request(self, state: CaseState) -> dict:
        category = self.catalog.categories.get(state.category or "")
        clock, where = state.clock, state.location
        return {
            "service_request_id": state.case_id,
            "status": "closed" if state.stage in TERMINAL_STAGES else "open",
            "status_notes": _status_notes(state),
            "service_name": category.name if category else state.category_hint,
            "service_code": state.category,
            "description": state.description,
            "agency_responsible": state.team,
            "service_notice": "",
            "requested_datetime": state.created_at,
            "updated_datetime": state.updated_at,
            "expected_datetime": clock.due_at if clock else None,
            "address": "".join(p for p in (where.district, where.street, where.community,
                                           where.address) if p),
            "address_id": None,
            "zipcode": None,
            "lat": where.lat,
            "long": where.lng,
            "media_url": state.attachments[0] if state.attachments else None,
        }


def _attribute(order: int, code: str, datatype: str, required: bool, description: str,
               datatype_description: str, values: list[dict] | None = None) -> dict:
    attribute = {"variable": True, "code": code, "datatype": datatype, "required": required,
                 "datatype_description": datatype_description, "order": order,
                 "description": description}
    if values is not None:
        attribute["values"] = values
    return attribute


def _open_request(form: dict[str, str], category: Category) -> OpenCaseRequest:
    place = {name: form.get(f"attribute[{name}]") or None for name in LOCATION_ATTRIBUTES}
    if not place["district"]:
        raise Open311Error(400, "attribute[district] is required: see the service definition "
                                "for the districts.")
    lat, lng = form.get("lat") or None, form.get("long") or None
    address = form.get("address_string") or None
    if address is None and (lat is None or lng is None):
        raise Open311Error(400, "A location is required: lat and long, or address_string.")
    name = " ".join(p for p in (form.get("last_name"), form.get("first_name")) if p) or None
    try:
        location = Location(district=place["district"], street=place["street"],
                            community=place["community"],
                            address=address or f"{lat},{lng}", lat=lat, lng=lng)
        reporter = Reporter(name=name, phone=form.get("phone") or None)
        media = form.get("media_url")
        return OpenCaseRequest(
            source=Source.SNAPSHOT, category=category.code,
            description=form.get("description") or category.name, location=location,
            reporter=reporter, attachments=[media] if media else [])
    except ValidationError as err:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "form" for e in err.errors())
        raise Open311Error(400, f"These fields are not valid: {fields}.") from None


def _status_notes(state: CaseState) -> str:
    notes = STAGE_LABELS[state.stage]
    if state.round > 1 and state.stage not in TERMINAL_STAGES:
        notes += f"（第{state.round}轮整改）"
    if state.stage == Stage.INVALID and state.invalid_reason:
        notes += f"：{state.invalid_reason}"
    if state.overdue:
        notes += "，已超时督办"
    return notes


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _whole(params: dict[str, str], name: str, default: int, most: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise Open311Error(400, f"{name} must be a whole number from 1 to {most}.")
    return int(text)


def _moment(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Open311Error(400, f"{name} must be a W3C date and time with a zone, e.g. "
                                "2026-11-01T00:00:00Z.")
    return moment.astimezone(timezone.utc)


def _date_range(start_text: str | None, end_text: str | None) -> tuple[datetime, datetime]:
    """The requested_datetime range: at most 90 days, the latest 90 when not given."""
    start, end = _moment("start_date", start_text), _moment("end_date", end_text)
    if start is None and end is None:
        end = datetime.now(timezone.utc)
    if start is None:
        start = end - MAX_SPAN
    if end is None:
        end = start + MAX_SPAN
    if end <= start:
        raise Open311Error(400, "end_date must be after start_date.")
    if end - start > MAX_SPAN:
        raise Open311Error(400, "start_date and end_date may be at most 90 days apart.")
    return start, end


def _select(engine: Engine, ids: list[str], codes: list[str], statuses: list[str],
            start: datetime | None, end: datetime | None, limit: int,
            offset: int) -> list[CaseState]:
    c = CaseRow
    query = select(CaseStateRow.state).select_from(c).join(
        CaseStateRow, CaseStateRow.case_id == c.case_id)
    if ids:
        # The standard: a list of ids overrides every other filter.
        query = query.where(c.case_id.in_(ids))
    else:
        query = query.where(c.created_at >= start, c.created_at <= end)
        if codes:
            query = query.where(c.category.in_(codes))
        terminal = [s.value for s in TERMINAL_STAGES]
        if statuses == ["open"]:
            query = query.where(c.stage.not_in(terminal))
        elif statuses == ["closed"]:
            query = query.where(c.stage.in_(terminal))
    query = query.order_by(c.created_at.desc(), c.case_id).limit(limit).offset(offset)
    with Session(engine) as session:
        states = session.scalars(query).all()
    return [CaseState.model_validate(s) for s in states]

"""整改台账: the supervisors' case list and its export, read from the ledger.

Any authenticated role may call these; what it gets is limited in SQL exactly as domain.access
limits reading a single case (ledger.queries.visible_to), so an officer lists their team's cases,
community staff their area's, the hotline what it opened. No reporter's name or phone is listed.
"""

from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, computed_field
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from api.auth import CurrentActor
from api.deps import Service
from api.errors import ApiError, ErrorBody
from api.export import MEDIA_TYPES, export_response
from config.catalog import URGENCY_LABELS, Catalog
from domain.calendar import LHASA, local_text
from domain.models import RATING_LABELS, SOURCE_LABELS, Actor
from domain.stages import STAGE_LABELS
from ledger.queries import (DEFAULT_LIMIT, MAX_LIMIT, CaseFilter, CaseSummary, InvalidCursor,
                            Order, Sort, iter_cases, list_cases)
from ledger.repository import Ledger

router = APIRouter(prefix="/cases", tags=["supervision"])

ERRORS = {status: {"model": ErrorBody} for status in (401, 422)}
SPREADSHEETS = {media.split(";")[0]: {} for media in MEDIA_TYPES.values()}
DESCRIPTION_CHARS = 200


class ListQuery(CaseFilter):
    sort: Sort = Sort.CREATED
    order: Order = Order.DESC
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    cursor: Annotated[str, Field(max_length=1000, description=(
        "next_cursor of the previous page, with the same sort and order"))] | None = None


class ExportQuery(CaseFilter):
    sort: Sort = Sort.CREATED
    order: Order = Order.DESC
    format: Literal["csv", "xlsx"] = "csv"


class CaseListItem(CaseSummary):
    description: str = Field(description=f"The first {DESCRIPTION_CHARS} characters")

    @computed_field
    @property
    def stage_label(self) -> str:
        return STAGE_LABELS[self.stage]


class CaseList(BaseModel):
    items: list[CaseListItem]
    total: int = Field(description="How many cases match, on every page")
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the "
                                                "last")


@router.get("", response_model=CaseList, responses=ERRORS,
            summary="整改台账: the cases the caller may see, filtered, a page at a time")
async def list_cases_route(query: Annotated[ListQuery, Query()], actor: CurrentActor,
                           service: Service) -> CaseList:
    """List parameters repeat: `?stage=assigned&stage=rectifying`. Times need a zone
    (`2026-11-20T00:00:00+08:00`, the + sent as %2B); ranges are [from, to). Follow
    `next_cursor` for the next page; `total` counts the whole filtered set."""
    return await case_page(service.ledger, query, actor)


@router.get("/export", response_class=StreamingResponse,
            summary="导出台账: the same list as CSV or Excel, every matching case",
            responses={200: {"content": SPREADSHEETS,
                             "description": "The spreadsheet, as an attachment"}, **ERRORS})
async def export_cases_route(query: Annotated[ExportQuery, Query()], actor: CurrentActor,
                             service: Service) -> StreamingResponse:
    """Filters and sort as `GET /cases`; Chinese headers and labels, times in Lhasa time."""
    return export_cases(service.ledger, service.catalog, query, actor)


# ---- what the routes do -------------------------------------------------------------------------

async def case_page(ledger: Ledger, query: ListQuery, actor: Actor) -> CaseList:
    try:
        page = await run_in_threadpool(list_cases, ledger.engine, query, actor, query.sort,
                                       query.order, query.limit, query.cursor)
    except InvalidCursor as err:
        # The shape of every other invalid input, so clients handle one kind of 422.
        raise ApiError(422, "invalid_input", f"The cursor is not valid: {err}.",
                       errors=[{"field": "cursor", "message": str(err),
                                "type": "invalid_cursor"}]) from None
    items = [CaseListItem(**s.model_dump(exclude={"description"}),
                          description=_shortened(s.description)) for s in page.items]
    return CaseList(items=items, total=page.total, next_cursor=page.next_cursor)


EXPORT_HEADERS = ("案件编号", "阶段", "责任专班", "问题类别", "来源", "紧急程度", "区县", "街道",
                  "社区", "地址", "问题描述", "轮次", "反弹次数", "是否超时", "当前时限",
                  "立案时间", "更新时间", "办结时间", "满意度")


def export_cases(ledger: Ledger, catalog: Catalog, query: ExportQuery,
                 actor: Actor) -> StreamingResponse:
    def rows() -> Iterator[list]:
        # Lazy: the query runs once the response starts sending, in the thread pool; closing
        # this generator (a download given up) closes the query's cursor and connection.
        with closing(iter_cases(ledger.engine, query, actor, query.sort, query.order)) as cases:
            for case in cases:
                yield export_row(case, catalog)

    today = datetime.now(LHASA).date().isoformat()
    return export_response(query.format, f"cases-{today}", EXPORT_HEADERS, rows(),
                           sheet_title="整改台账")


def export_row(s: CaseSummary, catalog: Catalog) -> list:
    """A case as a spreadsheet row under EXPORT_HEADERS: labels instead of codes, full text."""
    category = catalog.categories.get(s.category) if s.category else None
    return [s.case_id, STAGE_LABELS[s.stage], s.team,
            category.name if category else s.category, SOURCE_LABELS[s.source],
            URGENCY_LABELS[s.urgency], s.district, s.street, s.community, s.address,
            s.description, s.round, s.rebounds, "是" if s.overdue else "否", _local(s.due_at),
            _local(s.created_at), _local(s.updated_at), _local(s.closed_at),
            RATING_LABELS[s.rating] if s.rating else None]


def _local(moment: datetime | None) -> str | None:
    return local_text(moment) if moment else None


def _shortened(text: str) -> str:
    return text if len(text) <= DESCRIPTION_CHARS else text[:DESCRIPTION_CHARS - 1] + "…"

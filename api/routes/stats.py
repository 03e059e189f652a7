"""考核统计: the figures supervisors are assessed by, and the 吹哨报到双考核, read from the
ledger (ledger/stats.py computes them; this module validates, authorises and labels)."""

import re
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import (AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo,
                      field_validator)
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from api.auth import CurrentActor
from api.deps import Service
from api.errors import ApiError, ErrorBody
from api.export import MEDIA_TYPES, export_response
from config.catalog import Catalog
from domain.calendar import LHASA, local_text
from domain.errors import Refusal
from domain.models import SOURCE_LABELS, Actor, Source
from domain.roles import Role
from domain.stages import STAGE_LABELS, Stage
from ledger import stats

router = APIRouter(prefix="/stats", tags=["stats"])

ERRORS = {status: {"model": ErrorBody} for status in (401, 403, 422)}
SPREADSHEETS = {media.split(";")[0]: {} for media in MEDIA_TYPES.values()}
# The hotline and reporters open cases; they are not assessed and see no statistics.
NOT_ASSESSED = frozenset({Role.HOTLINE, Role.REPORTER})
MAX_YEARS = 3

# name: (label, definition). One table for the response labels, the export headers and the
# OpenAPI text; ledger/stats.py's docstring says the same for the code.
COUNTS = {
    "found": ("发现数", "cases created in the period"),
    "open": ("在办数", "of them, neither closed nor invalid now"),
    "closed": ("办结数", "of them, closed now"),
    "invalid": ("作废数", "of them, rejected as invalid or duplicate"),
    "rated": ("已评价数", "valid cases with a rating now"),
    "unrated": ("未评价数", "valid cases without a rating: no answer to the follow-up call "
                           "(no_response) or not evaluated yet; never counted as satisfied"),
    "no_response": ("回访未评价数", "valid cases whose caller gave no rating in the window"),
}
RATES = {
    "accepted_on_time_rate": ("及时签收率", "签收 steps ended by signing (accept) and not late / "
                                           "all 签收 steps ended by signing; a 签收 ended by "
                                           "re-dispatch, 退单 or rejection counts in neither"),
    "rectified_on_time_rate": ("按时办结率", "整改 steps ended by submitting the rectification "
                                            "and not late / all such steps, one per round; "
                                            "late means after the final deadline, so an "
                                            "approved extension counts as agreed time"),
    "resolved_rate": ("解决率", "cases whose first on-site verification passed / cases "
                               "verified at least once"),
    "satisfaction_rate": ("满意率", "ratings 非常满意, 满意 or 基本满意 / rated cases"),
    "rebound_rate": ("反弹率", "rebounds (回头看 that found the problem back) / 回头看 carried out"),
}
WHISTLE_COUNTS = {
    "summoned": ("被吹哨次数", "summons made in the period"),
    "reported_on_time": ("按时报到", "reported in by the deadline and never marked late"),
    "reported_late": ("迟到报到", "reported in after the deadline, or marked late first"),
    "not_reported": ("未报到", "not reported in (yet), deadline passed or not"),
    "parts_done": ("完成任务", "reported its part done"),
}
AVG_REPORT_IN = ("平均报到用时（分钟）", "mean minutes from summons to report-in over those that "
                                       "reported in; null when none did")
GROUP_HEADERS = {"none": "范围", "team": "专班", "district": "区县", "street": "街道",
                 "category": "问题类别", "source": "来源"}
# What a row without a value of the grouped column stands for.
NO_GROUP = {"team": "未派单", "street": "未填街道", "category": "未分类"}


def _bullets(table: dict) -> str:
    return "\n".join(f"- `{name}` {label}: {definition}."
                     for name, (label, definition) in table.items())


STATS_DESCRIPTION = f"""
Every figure counts the cases **created** in [from, to) within the caller's scope — the cohort
of the period, whatever became of them later — and, with `interval`, in the row's week or
month. Invalid (作废) cases count in `found` and `invalid` only: no rate and no stage time
includes them. A rate carries its numerator and denominator; its value is null, not 0, when the
denominator is 0.

{_bullets(COUNTS)}
{_bullets(RATES)}
- `stage_times`: per stage, every stay the cases finished in it (another round counts again; a
  stay still running does not): `spans`, `avg_seconds` (mean, to 0.1 s) and `p90_seconds`, the
  nearest-rank 90th percentile: the ⌈0.9·n⌉-th shortest stay. Stays are counted in duration
  bands 5 % wide that keep their shortest and longest stay, so `p90_seconds` is exact when it
  is the shortest or longest of its band (always when the band's stays are equal) and
  otherwise within that band, at most 5 % from the exact value.

`from`/`to`: a date (midnight in Lhasa, UTC+8) or a time with its offset
(`2026-11-01T00:00:00+08:00`; a + sent unescaped arrives as a space and is read as +). `to`
must come after `from`, at most {MAX_YEARS} years later. `group_by`: team, district, street,
category, source or none (one row). `interval`: week (from Monday) or month, cut in Lhasa
time; every group found in the period then gets a row for every week or month, zeros
included.

Scope: supervisors, admins and dispatchers count every case; an officer their team's; a
department the cases that concern it (its category or a summons); community staff and
inspectors their area's. The hotline and reporters are refused (403 role_not_allowed).
"""

WHISTLE_DESCRIPTION = f"""
Per department, the summons made (summoned_at) in [from, to), whatever case they belong to:

{_bullets(WHISTLE_COUNTS)}
- `avg_minutes_to_report_in` {AVG_REPORT_IN[0]}: {AVG_REPORT_IN[1]}.

summoned = reported_on_time + reported_late + not_reported. Supervisors and admins see every
department summoned in the period; a department sees its own row only (zeros when it was not
summoned); everyone else is refused (403 role_not_allowed). `from`/`to` as for `GET /stats`.
"""


# ---- query --------------------------------------------------------------------------------------

class GroupBy(StrEnum):
    NONE = "none"
    TEAM = "team"
    DISTRICT = "district"
    STREET = "street"
    CATEGORY = "category"
    SOURCE = "source"


class Interval(StrEnum):
    WEEK = "week"
    MONTH = "month"


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A + left unescaped in a query string arrives as a space: "…T00:00:00 08:00".
_SPACE_FOR_PLUS = re.compile(r"(T[\d:.]+) (\d{2}(:?\d{2})?)$")


class PeriodQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    period_from: AwareDatetime = Field(alias="from", description=(
        "Start, included: a date (Lhasa midnight) or a time with its offset"),
        examples=["2026-11-01", "2026-11-01T00:00:00+08:00"])
    period_to: AwareDatetime = Field(alias="to", description=(
        f"End, excluded: after from, at most {MAX_YEARS} years later"),
        examples=["2026-12-01"])

    @field_validator("period_from", "period_to", mode="before")
    @classmethod
    def _date_or_time(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        if _DATE.match(value):
            try:
                return datetime.combine(date.fromisoformat(value), time(), LHASA)
            except ValueError:
                raise ValueError("not a valid date") from None
        return _SPACE_FOR_PLUS.sub(r"\1+\2", value)

    @field_validator("period_from", "period_to")
    @classmethod
    def _storable(cls, value: datetime) -> datetime:
        try:
            value.astimezone(LHASA)  # weeks and months are cut in Lhasa time
            return value.astimezone(timezone.utc)
        except OverflowError:
            raise ValueError("the time is out of range") from None

    @field_validator("period_to")
    @classmethod
    def _after_from(cls, to: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("period_from")
        if start is None:
            return to
        if to <= start:
            raise ValueError("must be after from")
        if to > _years_after(start, MAX_YEARS):
            raise ValueError(f"must be at most {MAX_YEARS} years after from")
        return to


class StatsQuery(PeriodQuery):
    group_by: GroupBy = GroupBy.NONE
    interval: Interval | None = Field(None, description="week or month; omit for the whole period")


class StatsExportQuery(StatsQuery):
    format: Literal["csv", "xlsx"] = "csv"


class WhistleExportQuery(PeriodQuery):
    format: Literal["csv", "xlsx"] = "csv"


def _years_after(moment: datetime, years: int) -> datetime:
    local = moment.astimezone(LHASA)
    try:
        return local.replace(year=local.year + years)
    except ValueError:  # 29 February, or past year 9999
        if local.year + years > 9999:
            return datetime.max.replace(tzinfo=timezone.utc)
        return (local + timedelta(days=1)).replace(year=local.year + years)


# ---- responses ----------------------------------------------------------------------------------

class Count(BaseModel):
    label: str
    value: int


class Rate(BaseModel):
    label: str
    value: float | None = Field(description="numerator / denominator to 4 places; null when the "
                                            "denominator is 0")
    numerator: int
    denominator: int


class StageTime(BaseModel):
    stage: Stage
    label: str
    spans: int
    avg_seconds: float | None
    p90_seconds: float | None


class StatsRow(BaseModel):
    group: str | None = Field(description="The grouped column's value; null for the total row "
                                          "and for cases without one")
    group_label: str
    period: str | None = Field(description="2026-11 or 2026-W49; null without an interval")
    period_start: datetime
    period_end: datetime
    found: Count
    open: Count
    closed: Count
    invalid: Count
    rated: Count
    unrated: Count
    no_response: Count
    accepted_on_time_rate: Rate
    rectified_on_time_rate: Rate
    resolved_rate: Rate
    satisfaction_rate: Rate
    rebound_rate: Rate
    stage_times: list[StageTime]


class StatsReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    period_from: datetime = Field(alias="from")
    period_to: datetime = Field(alias="to")
    group_by: GroupBy
    interval: Interval | None
    rows: list[StatsRow]


class Minutes(BaseModel):
    label: str
    value: float | None


class WhistleRow(BaseModel):
    department: str
    summoned: Count
    reported_on_time: Count
    reported_late: Count
    not_reported: Count
    parts_done: Count
    avg_minutes_to_report_in: Minutes


class WhistleReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    period_from: datetime = Field(alias="from")
    period_to: datetime = Field(alias="to")
    rows: list[WhistleRow]


# ---- routes -------------------------------------------------------------------------------------

@router.get("", response_model=StatsReport, responses=ERRORS, description=STATS_DESCRIPTION,
            summary="考核统计: 三率, 及时签收率, 按时办结率, 反弹率 and time per stage")
async def get_stats(query: Annotated[StatsQuery, Query()], actor: CurrentActor,
                    service: Service) -> StatsReport:
    rows = await _case_rows(service, query, actor)
    return StatsReport(period_from=_lhasa(query.period_from), period_to=_lhasa(query.period_to),
                       group_by=query.group_by, interval=query.interval,
                       rows=[_row_view(r, query.group_by, service.catalog) for r in rows])


@router.get("/export", response_class=StreamingResponse, description=STATS_DESCRIPTION,
            summary="导出考核统计: the same figures as CSV or Excel, Chinese headers",
            responses={200: {"content": SPREADSHEETS,
                             "description": "The spreadsheet, as an attachment"}, **ERRORS})
async def export_stats(query: Annotated[StatsExportQuery, Query()], actor: CurrentActor,
                       service: Service) -> StreamingResponse:
    rows = await _case_rows(service, query, actor)
    views = [_row_view(r, query.group_by, service.catalog) for r in rows]
    return export_response(query.format, f"考核统计_{_span_name(query)}",
                           _stats_headers(query.group_by), [_stats_cells(v) for v in views],
                           sheet_title="考核统计")


@router.get("/whistles", response_model=WhistleReport, responses=ERRORS,
            description=WHISTLE_DESCRIPTION,
            summary="吹哨报到双考核: each summoned department's punctuality")
async def get_whistle_stats(query: Annotated[PeriodQuery, Query()], actor: CurrentActor,
                            service: Service) -> WhistleReport:
    rows = await _whistle_rows(service, query, actor)
    return WhistleReport(period_from=_lhasa(query.period_from),
                         period_to=_lhasa(query.period_to), rows=[_whistle_view(r) for r in rows])


@router.get("/whistles/export", response_class=StreamingResponse,
            description=WHISTLE_DESCRIPTION,
            summary="导出吹哨报到双考核: the same rows as CSV or Excel, Chinese headers",
            responses={200: {"content": SPREADSHEETS,
                             "description": "The spreadsheet, as an attachment"}, **ERRORS})
async def export_whistle_stats(query: Annotated[WhistleExportQuery, Query()],
                               actor: CurrentActor, service: Service) -> StreamingResponse:
    rows = await _whistle_rows(service, query, actor)
    headers = ["职能部门", *(label for label, _ in WHISTLE_COUNTS.values()), AVG_REPORT_IN[0]]
    cells = [[r.department, r.summoned, r.reported_on_time, r.reported_late, r.not_reported,
              r.parts_done, r.avg_minutes_to_report_in] for r in rows]
    return export_response(query.format, f"吹哨报到_{_span_name(query)}", headers, cells,
                           sheet_title="吹哨报到")


# ---- what the routes do -------------------------------------------------------------------------

async def _case_rows(service, query: StatsQuery, actor: Actor) -> list[stats.StatsRow]:
    if actor.role in NOT_ASSESSED:
        raise ApiError(403, "role_not_allowed",
                       f"Role '{actor.role.value}' may not read the statistics; they are for "
                       "the teams, departments, areas and supervisors assessed by them.")
    group_by = None if query.group_by == GroupBy.NONE else query.group_by.value
    interval = query.interval.value if query.interval else None
    return await run_in_threadpool(stats.case_stats, service.ledger.engine, query.period_from,
                                   query.period_to, group_by, interval, actor)


async def _whistle_rows(service, query: PeriodQuery, actor: Actor) -> list[stats.WhistleRow]:
    try:
        return await run_in_threadpool(stats.whistle_stats, service.ledger.engine,
                                       query.period_from, query.period_to, actor)
    except Refusal as refusal:
        raise ApiError(403, refusal.code, refusal.message) from None


def _row_view(r: stats.StatsRow, group_by: GroupBy, catalog: Catalog) -> StatsRow:
    counts = {name: Count(label=label, value=getattr(r, name))
              for name, (label, _) in COUNTS.items()}
    rates = {name: _rate(label, getattr(r, name.removesuffix("_rate")))
             for name, (label, _) in RATES.items()}
    return StatsRow(
        group=r.group, group_label=_group_label(r.group, group_by, catalog), period=r.period.key,
        period_start=_lhasa(r.period.start), period_end=_lhasa(r.period.end), **counts, **rates,
        stage_times=[StageTime(stage=t.stage, label=STAGE_LABELS[Stage(t.stage)], spans=t.spans,
                               avg_seconds=t.avg_seconds, p90_seconds=t.p90_seconds)
                     for t in r.stages])


def _rate(label: str, ratio: stats.Ratio) -> Rate:
    value = ratio.value
    return Rate(label=label, value=None if value is None else round(value, 4),
                numerator=ratio.numerator, denominator=ratio.denominator)


def _group_label(group: str | None, group_by: GroupBy, catalog: Catalog) -> str:
    if group_by == GroupBy.NONE:
        return "合计"
    if group is None:
        return NO_GROUP.get(group_by.value, "未填")
    if group_by == GroupBy.CATEGORY:
        category = catalog.categories.get(group)
        return category.name if category else group
    if group_by == GroupBy.SOURCE:
        try:
            return SOURCE_LABELS[Source(group)]
        except ValueError:
            return group
    return group


def _whistle_view(r: stats.WhistleRow) -> WhistleRow:
    counts = {name: Count(label=label, value=getattr(r, name))
              for name, (label, _) in WHISTLE_COUNTS.items()}
    return WhistleRow(department=r.department, **counts,
                      avg_minutes_to_report_in=Minutes(label=AVG_REPORT_IN[0],
                                                       value=r.avg_minutes_to_report_in))


def _stats_headers(group_by: GroupBy) -> list[str]:
    headers = [GROUP_HEADERS[group_by.value], "周期", "开始", "结束"]
    headers += [label for label, _ in COUNTS.values()]
    for label, _ in RATES.values():
        headers += [label, f"{label}分子", f"{label}分母"]
    for stage in stats.TIMED_STAGES:
        label = STAGE_LABELS[Stage(stage)]
        headers += [f"{label}次数", f"{label}平均用时（小时）", f"{label}P90用时（小时）"]
    return headers


def _stats_cells(v: StatsRow) -> list:
    cells = [v.group_label, v.period, local_text(v.period_start), local_text(v.period_end)]
    cells += [getattr(v, name).value for name in COUNTS]
    for name in RATES:
        rate = getattr(v, name)
        cells += [rate.value, rate.numerator, rate.denominator]
    for t in v.stage_times:
        cells += [t.spans, _hours(t.avg_seconds), _hours(t.p90_seconds)]
    return cells


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def _lhasa(moment: datetime) -> datetime:
    return moment.astimezone(LHASA)


def _span_name(query: PeriodQuery) -> str:
    return f"{_lhasa(query.period_from):%Y%m%d}-{_lhasa(query.period_to):%Y%m%d}"

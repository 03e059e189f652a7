"""What each dashboard page shows, gathered through the same calls the JSON API makes
(the /stats and /cases route functions, CaseService), so every figure and every row is scoped
to the signed-in person exactly as the API scopes them."""

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from urllib.parse import quote, urlencode

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.dashboard import charts
from api.dashboard.labels import COUNT_HINTS, RATE_HINTS, WHISTLE_HINTS, filter_names
from api.errors import ApiError
from api.routes.stats import (GroupBy, Interval, PeriodQuery, StatsQuery, StatsRow, get_stats,
                              get_whistle_stats)
from api.routes.supervision import ListQuery, case_page
from api.service import CaseService
from domain.actions import ALLOWED_ROLES, Action
from domain.calendar import LHASA
from domain.lifecycle import STEP_LABELS
from domain.models import Actor
from domain.stages import TERMINAL_STAGES
from ledger import dashboard as queries
from ledger.queries import CaseFilter, count_cases

TREND_WEEKS = 12
# A filter the dashboard's own form checked: its message is already written for the reader.
FILTER_REFUSED = "invalid_filter"
# Rankings and the whistle board look back this far by default: on the first days of a month
# "this month" would say next to nothing.
RECENT_DAYS = 30
LIST_FIELDS = ("stage", "team", "category", "source", "urgency")  # the filters that repeat
# Date boxes on the form: read as Lhasa days; the "to" day is included.
DATE_FIELDS = ("created_from", "created_to", "closed_from", "closed_to")


def lhasa_today(now: datetime) -> date:
    return now.astimezone(LHASA).date()


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), LHASA)


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _stats_query(start: datetime, end: datetime, **more) -> StatsQuery:
    return StatsQuery.model_validate({"from": start, "to": end, **more})


async def _stats(service: CaseService, actor: Actor, start: datetime, end: datetime,
                 **more) -> list[StatsRow]:
    return (await get_stats(_stats_query(start, end, **more), actor, service)).rows


async def _count(service: CaseService, actor: Actor, **filters) -> int:
    return await run_in_threadpool(count_cases, service.ledger.engine, CaseFilter(**filters),
                                   actor)


# ---- 总览 ----------------------------------------------------------------------------------------

async def overview(service: CaseService, actor: Actor, now: datetime) -> dict:
    today = lhasa_today(now)
    spans = {"today": ("今日", midnight(today), midnight(today + timedelta(days=1))),
             "month": ("本月", midnight(month_start(today)), midnight(next_month(today)))}
    periods = []
    for key, (title, start, end) in spans.items():
        row = (await _stats(service, actor, start, end))[0]
        created = dict(created_from=start, created_to=end)
        values = {"found": row.found.value, "open": row.open.value,
                  "overdue": await _count(service, actor, overdue=True, **created),
                  "closed": row.closed.value,
                  "rebounded": await _count(service, actor, rebounded=True, **created)}
        counts = [{"name": name, "label": label, "hint": hint, "value": values[name]}
                  for name, (label, hint) in COUNT_HINTS.items()]
        rates = [{"name": name, "label": label, "hint": hint, "rate": getattr(row, name)}
                 for name, (label, hint) in RATE_HINTS.items()]
        periods.append({"key": key, "title": title, "start": start, "end": end,
                        "counts": counts, "rates": rates})
    recent = (midnight(today - timedelta(days=RECENT_DAYS - 1)),
              midnight(today + timedelta(days=1)))
    return {"periods": periods, "trend": await _trend(service, actor, today),
            "recent_days": RECENT_DAYS,
            "team_ranking": _ranking(await _stats(service, actor, *recent,
                                                  group_by=GroupBy.TEAM)),
            "street_ranking": _ranking(await _stats(service, actor, *recent,
                                                    group_by=GroupBy.STREET)),
            "rate_hint": RATE_HINTS["rectified_on_time_rate"][1]}


async def _trend(service: CaseService, actor: Actor, today: date) -> dict:
    monday = today - timedelta(days=today.weekday())
    start = midnight(monday - timedelta(weeks=TREND_WEEKS - 1))
    rows = await _stats(service, actor, start, midnight(monday + timedelta(weeks=1)),
                        interval=Interval.WEEK)
    points = [charts.WeekPoint(label=f"{r.period_start:%m/%d}", found=r.found.value,
                               closed=r.closed.value, on_time_rate=r.rectified_on_time_rate.value)
              for r in rows]
    return {"svg": charts.trend_chart(points), "points": points}


def _ranking(rows: list[StatsRow]) -> list[dict]:
    """Best 按时办结率 first; groups with nothing to rate come last, busiest first."""
    def key(r: StatsRow):
        rate = r.rectified_on_time_rate
        return (rate.value is None, -(rate.value or 0), -rate.denominator, r.group_label)
    return [{"label": r.group_label, "rate": r.rectified_on_time_rate, "found": r.found.value,
             "open": r.open.value} for r in sorted(rows, key=key)]


# ---- 超时督办 -------------------------------------------------------------------------------------

async def overdue_board(service: CaseService, actor: Actor, now: datetime) -> dict:
    found = await run_in_threadpool(queries.overdue_steps, service.ledger.engine, actor)
    items = [{"step": s, "step_label": STEP_LABELS.get(s.step, s.step),
              "late_by": late_text(now - s.due_at)} for s in found.items]
    return {"items": items, "total": found.total, "can_urge": may_urge(actor)}


def may_urge(actor: Actor) -> bool:
    return actor.role in ALLOWED_ROLES[Action.URGE]


def late_text(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}天{hours}小时"
    if hours:
        return f"{hours}小时{minutes}分"
    return f"{minutes}分钟"


# ---- 案件列表 -------------------------------------------------------------------------------------

def list_query(params: list[tuple[str, str]]) -> tuple[ListQuery, dict]:
    """The list's query string as GET /cases reads it, plus what to show back in the form.
    Empty boxes are no filter; dates are Lhasa days, the end day included."""
    raw: dict[str, object] = {}
    for name, value in params:
        value = value.strip()
        if not value:
            continue
        if name in LIST_FIELDS:
            raw.setdefault(name, []).append(value)
        else:
            raw[name] = value
    form = dict(raw)
    for name in DATE_FIELDS:
        value = raw.get(name)
        if isinstance(value, str) and len(value) == 10:
            try:
                day = date.fromisoformat(value)
            except ValueError:
                continue  # left as typed; validation names the field
            raw[name] = midnight(day + timedelta(days=1) if name.endswith("_to") else day)
    try:
        return ListQuery.model_validate(raw), form
    except ValidationError as err:
        raise ApiError(422, FILTER_REFUSED, f"筛选条件有误：{filter_names(err)}。") from None


async def case_list(service: CaseService, actor: Actor, params: list[tuple[str, str]]) -> dict:
    query, form = list_query(params)
    page = await case_page(service.ledger, query, actor)
    next_url = None
    if page.next_cursor:
        kept = [(k, v) for k, v in params if k != "cursor" and v.strip()]
        next_url = "?" + urlencode([*kept, ("cursor", page.next_cursor)])
    catalog = service.catalog
    return {"page": page, "form": form, "next_url": next_url,
            "categories": {c.code: c.name for c in catalog.categories.values()},
            "teams": sorted(catalog.teams), "districts": catalog.districts}


# ---- 案件详情 -------------------------------------------------------------------------------------

async def case_detail(service: CaseService, actor: Actor, case_id: str, now: datetime) -> dict:
    case, history, whistles = await service.case_file(case_id, actor)
    clock = case.clock
    ui = service.settings.temporal_ui_url
    return {"case": case, "events": history.events, "whistles": whistles.whistles,
            "clock": clock, "clock_label": STEP_LABELS.get(clock.step) if clock else None,
            "late_by": late_text(now - clock.due_at) if clock and clock.overdue else None,
            "steps": [(s, STEP_LABELS.get(s.step, s.step)) for s in case.steps],
            "temporal_url": f"{ui}/{quote(case_id, safe='')}",
            "kind_names": {k.code: k.name for k in service.catalog.whistle_kinds.values()},
            "whistle_url": lambda workflow_id: f"{ui}/{quote(workflow_id, safe='')}",
            "can_urge": may_urge(actor) and case.stage not in TERMINAL_STAGES}


# ---- 吹哨报到 -------------------------------------------------------------------------------------

async def whistle_board(service: CaseService, actor: Actor, now: datetime,
                        start: str | None, end: str | None) -> dict:
    today = lhasa_today(now)
    start = start or (today - timedelta(days=RECENT_DAYS - 1)).isoformat()
    end = end or (today + timedelta(days=1)).isoformat()
    try:
        query = PeriodQuery.model_validate({"from": start, "to": end})
    except ValidationError:
        raise ApiError(422, FILTER_REFUSED, "日期有误：开始和结束须为日期（YYYY-MM-DD），结束在开始之后，"
                       "相隔不超过三年。") from None
    report = await get_whistle_stats(query, actor, service)

    def punctuality(row) -> float | None:
        return row.reported_on_time.value / row.summoned.value if row.summoned.value else None

    rows = [{"row": r, "punctuality": punctuality(r)} for r in report.rows]
    rows.sort(key=lambda r: (r["punctuality"] is None, -(r["punctuality"] or 0),
                             -r["row"].summoned.value, r["row"].department))
    return {"rows": rows, "start": start, "end": end, "hints": WHISTLE_HINTS}


# ---- 地图 -----------------------------------------------------------------------------------------

async def case_places(service: CaseService, actor: Actor) -> dict:
    places = await run_in_threadpool(queries.open_case_places, service.ledger.engine, actor)
    points, elsewhere = [], defaultdict(lambda: defaultdict(list))
    for p in places:
        if p.lat is not None and p.lng is not None and charts.in_lhasa(p.lat, p.lng):
            label = f"{p.case_id} · {p.district}{p.street or ''} · {p.address}"
            points.append(charts.MapPoint(case_id=p.case_id, lat=p.lat, lng=p.lng, label=label,
                                          overdue=p.overdue,
                                          href=f"/dashboard/cases/{quote(p.case_id, safe='')}"))
        else:
            elsewhere[p.district][p.street or "未填街道"].append(p)
    return {"svg": charts.case_map(points) if points else None, "points": points,
            "total": len(places),
            "without": {d: dict(streets) for d, streets in sorted(elsewhere.items())}}

"""The figures supervisors are assessed by, read from the ledger's projection.

`case_stats` counts a **cohort**: every figure of a row counts the cases *created* in
[period_from, period_to) (and, with an interval, in that row's week or month), within the
caller's scope, whatever happened to them afterwards. Re-running a past period later can
therefore move its figures as the cases go on; a case never moves to another period.

Invalid (作废) cases count in `found` and `invalid` only: every rate and every stage time leaves
them out. Each rate is a `Ratio` (numerator, denominator); its value is None, not 0, when the
denominator is 0.

- found 发现数: cases created in the period.
- open 在办数: of them, not closed and not invalid now.
- closed 办结数: of them, closed now.  invalid 作废数: of them, invalid now.
- rated 已评价数: valid cases with a rating now.  unrated 未评价数: valid cases without one (the
  caller did not answer — evaluation 'no_response' — or no evaluation yet); `no_response`
  回访未评价数 is the first kind alone. A round reopened after its rating clears it, so a rating
  is always the current round's.
- accepted_on_time 及时签收率: 签收 steps ended by signing (completed_by 'accept') and not late
  / all 签收 steps ended by signing. A 签收 handed on by assign/return/reject counts in neither.
- rectified_on_time 按时办结率: 整改 steps ended by submitting the rectification and not late /
  all such steps. One per round. Lateness is against the final deadline, so an approved
  extension counts as agreed time.
- resolved 解决率: cases whose first on-site verification passed / cases verified at least once.
- satisfaction 满意率: ratings very_satisfied, satisfied or basically_satisfied / rated cases.
- rebound 反弹率: sum of rebounds (回头看 that found the problem back) / sum of 回头看 carried out.
- stage times: per stage, every stay the cohort's cases have finished in it (a case back in a
  stage for another round counts once per stay; a stay still running does not count): how
  many, the mean seconds (rounded to 0.1 s) and the 90th percentile by nearest rank (the
  ⌈0.9·n⌉-th smallest duration). Stays are counted in duration bands 5 % wide, each knowing
  its shortest and longest stay: the percentile is exact when it is the shortest or longest
  of its band (always so when the band's stays are equal), otherwise it is interpolated
  inside the band, so within 5 % of the exact value.

Weeks start on Monday and months on the 1st, both in Lhasa time (UTC+8): a case created at
2026-11-30 23:30 in Lhasa is November's even though it is 15:30 UTC.

`whistle_stats` counts summons by when they were made (吹哨报到双考核), not by case cohort.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import (BigInteger, ColumnElement, Engine, Float, Integer, String, and_, case, cast,
                        extract, func, literal, not_, null, select, union_all)

from domain.calendar import LHASA
from domain.errors import Refusal
from domain.models import SATISFIED_RATINGS, Actor
from domain.roles import Role
from domain.stages import TERMINAL_STAGES, Stage
from ledger import rollups
from ledger.queries import rollup_scope, visible_to
from ledger.tables import ROLLUP_COUNTS, CaseRow, StageSpanRow, WhistleSummonsRow

GroupBy = Literal["team", "district", "street", "category", "source"]
Interval = Literal["week", "month"]

GROUP_COLUMNS = {"team": CaseRow.team, "district": CaseRow.district, "street": CaseRow.street,
                 "category": CaseRow.category, "source": CaseRow.source}
# Stages a case can leave, in lifecycle order: the ones time is spent in.
TIMED_STAGES = tuple(s.value for s in Stage if s not in TERMINAL_STAGES)
SATISFIED = tuple(sorted(r.value for r in SATISFIED_RATINGS))
INVALID, CLOSED = Stage.INVALID.value, Stage.CLOSED.value
# 吹哨报到双考核 is read by the leading group's office and by each department about itself.
WHISTLE_ALL = frozenset({Role.SUPERVISOR, Role.ADMIN})


# ---- results ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ratio:
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


@dataclass(frozen=True)
class StageTime:
    stage: str
    spans: int = 0
    avg_seconds: float | None = None
    p90_seconds: float | None = None


@dataclass(frozen=True)
class Bucket:
    """A row's slice of the period: key such as "2026-11" or "2026-W49" (None without an
    interval), and its bounds clipped to the period asked for."""
    key: str | None
    start: datetime
    end: datetime


@dataclass
class StatsRow:
    group: str | None
    period: Bucket
    found: int = 0
    open: int = 0
    closed: int = 0
    invalid: int = 0
    rated: int = 0
    unrated: int = 0
    no_response: int = 0
    accepted_on_time: Ratio = Ratio(0, 0)
    rectified_on_time: Ratio = Ratio(0, 0)
    resolved: Ratio = Ratio(0, 0)
    satisfaction: Ratio = Ratio(0, 0)
    rebound: Ratio = Ratio(0, 0)
    stages: list[StageTime] = field(default_factory=lambda: [StageTime(s) for s in TIMED_STAGES])


@dataclass
class WhistleRow:
    department: str
    summoned: int = 0
    reported_on_time: int = 0
    reported_late: int = 0
    not_reported: int = 0
    parts_done: int = 0
    avg_minutes_to_report_in: float | None = None


# ---- portable SQL -------------------------------------------------------------------------------

def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _seconds_between(start, end, dialect: str) -> ColumnElement[float]:
    # SQLite keeps the datetimes as text, PostgreSQL as timestamptz.
    if dialect == "postgresql":
        return cast(extract("epoch", end - start), Float())
    return (func.julianday(end) - func.julianday(start)) * 86400.0


# ---- periods ------------------------------------------------------------------------------------

def buckets(period_from: datetime, period_to: datetime,
            interval: Interval | None) -> list[Bucket]:
    """The period cut into Lhasa weeks (from Monday) or months; the first and last clipped."""
    if interval is None:
        return [Bucket(None, period_from, period_to)]
    local = period_from.astimezone(LHASA).replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "month":
        start = local.replace(day=1)
    else:
        start = local - timedelta(days=local.weekday())
    found = []
    while start < period_to:
        if interval == "month":
            key = f"{start.year:04d}-{start.month:02d}"
        else:
            year, week, _ = start.isocalendar()
            key = f"{year:04d}-W{week:02d}"
        try:
            end = ((start + timedelta(days=32)).replace(day=1) if interval == "month"
                   else start + timedelta(days=7))
        except OverflowError:  # the last bucket before year 10000
            end = period_to
        found.append(Bucket(key, max(start, period_from), min(end, period_to)))
        start = end
    return found


def _bucket_index(periods: list[Bucket]) -> ColumnElement[int]:
    """Which bucket a case's created_at falls in, as SQL. The bounds come from `buckets`, so
    both backends cut weeks and months exactly as Python does; the search is binary so a
    3-year weekly report costs eight comparisons per case, not 150."""
    def split(lo: int, hi: int) -> ColumnElement[int]:
        if hi - lo == 1:
            return literal(lo, Integer())
        mid = (lo + hi) // 2
        return case((CaseRow.created_at < periods[mid].start, split(lo, mid)),
                    else_=split(mid, hi))
    return split(0, len(periods))


def whole_months(period_from: datetime, period_to: datetime
                 ) -> tuple[list[str], list[tuple[datetime, datetime]]]:
    """The Lhasa months lying wholly in the period ("2026-11"), and what is left around them."""
    months = [b for b in buckets(period_from, period_to, "month")
              if b.start == _month_start(b.start) and b.end == _next_month(b.start)]
    if not months:
        return [], [(period_from, period_to)]
    rest = [(period_from, months[0].start)] if period_from < months[0].start else []
    if months[-1].end < period_to:
        rest.append((months[-1].end, period_to))
    return [b.key for b in months], rest


def _month_start(moment: datetime) -> datetime:
    return moment.astimezone(LHASA).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(moment: datetime) -> datetime:
    return (_month_start(moment) + timedelta(days=32)).replace(day=1)


# ---- case figures -------------------------------------------------------------------------------

class _Tally:
    """One row's figures while they are gathered: counts in ROLLUP_COUNTS order, and the time
    per stage, which one query works out for every row (`_stage_times`)."""

    def __init__(self) -> None:
        self.counts = [0] * len(ROLLUP_COUNTS)
        self.stages: dict[str, StageTime] = {}

    def add_counts(self, values) -> None:
        for i, value in enumerate(values):
            self.counts[i] += int(value or 0)

    def row(self, group: str | None, period: Bucket) -> StatsRow:
        c = dict(zip(ROLLUP_COUNTS, self.counts))
        return StatsRow(
            group, period, found=c["found"], open=c["open"], closed=c["closed"],
            invalid=c["invalid"], rated=c["rated"], no_response=c["no_response"],
            unrated=c["found"] - c["invalid"] - c["rated"],
            accepted_on_time=Ratio(c["accept_on_time"], c["accept_signed"]),
            rectified_on_time=Ratio(c["rectify_on_time"], c["rectify_submitted"]),
            resolved=Ratio(c["passed"], c["verified"]),
            satisfaction=Ratio(c["satisfied"], c["rated"]),
            rebound=Ratio(c["rebounds"], c["rechecks"]),
            stages=[self.stages.get(s, StageTime(s)) for s in TIMED_STAGES])


def case_stats(engine: Engine, period_from: datetime, period_to: datetime,
               group_by: GroupBy | None, interval: Interval | None,
               scope_actor: Actor, use_rollups: bool = True) -> list[StatsRow]:
    """The figures of the module docstring, one row per group and bucket.

    With neither group_by nor interval: one row, zeros included. With an interval, every group
    that has a case anywhere in the period gets a row for every bucket, so charts have no gaps;
    without group_by that is every bucket. Rows come in bucket order, then by group (no-group
    last).

    Whole Lhasa months are read from the monthly roll-ups (ledger/rollups.py) when one is kept
    for the caller's scope (the city, a team, a district) and the rows are not weekly; the rest
    of the period, and other scopes, from the cases themselves. Both give the same figures
    (`use_rollups=False` forces the second, for checking that)."""
    periods = buckets(period_from, period_to, interval)
    tallies: dict[tuple, _Tally] = {}

    def tally(group, bucket: int) -> _Tally:
        found = tallies.get((group, bucket))
        if found is None:
            found = tallies[(group, bucket)] = _Tally()
        return found

    months, rest = [], [(period_from, period_to)]
    scope = rollup_scope(scope_actor)
    if use_rollups and scope is not None and interval != "week":
        months, rest = whole_months(period_from, period_to)
    month_bucket = {b.key: i for i, b in enumerate(periods)} if interval else {}
    keys: list[ColumnElement] = []
    if group_by is not None:
        keys.append(GROUP_COLUMNS[group_by].label("grp"))
    if interval is not None:
        keys.append(_bucket_index(periods).label("period"))
    # Scope: the cases the caller could read one by one (domain.access.read_refusal).
    cohorts = [and_(CaseRow.created_at >= start, CaseRow.created_at < end,
                    visible_to(scope_actor, engine.dialect.name)) for start, end in rest]
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # One snapshot for every query, so a case moving meanwhile cannot make a row's
            # figures disagree (SQLite reads each statement on its own snapshot).
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        if months:
            counts = rollups.rows_for(months, scope, group_by or "all", interval == "month")
            for month, value, *values in conn.execute(counts).all():
                tally(value or None if group_by else None,
                      month_bucket.get(month, 0)).add_counts(values)
        for cohort in cohorts:
            for r in conn.execute(_case_counts(keys, cohort)).all():
                k = tuple(r[:len(keys)])
                tally(*_row_key(k, group_by, interval)).add_counts(r[len(keys):])
        sources = [_stage_bands(group_by, periods if interval else None, cohort)
                   for cohort in cohorts]
        if months:
            sources.append(rollups.bands_for(
                months, scope, group_by or "all",
                lambda month: _month_index(month, month_bucket)))
        for group, bucket, stage, time in _stage_times(conn, sources):
            tally(group, bucket).stages[stage] = time
    rows = {key: t.row(key[0], periods[key[1]]) for key, t in tallies.items()}
    return _complete(rows, periods, group_by, interval)


def _month_index(month: ColumnElement, month_bucket: dict[str, int]) -> ColumnElement[int]:
    if not month_bucket:
        return literal(0, Integer())
    return case({key: literal(i, Integer()) for key, i in month_bucket.items()}, value=month,
                else_=literal(0, Integer()))


def _stage_times(conn, sources: list) -> list[tuple]:
    """Count, mean and p90 per (group, bucket, stage) over every source of stays at once. The
    bands are summed, and a window finds the band holding the nearest rank ⌈9n/10⌉, so only
    that band reaches Python: (group, bucket, stage, StageTime)."""
    if not sources:
        return []
    u = (union_all(*sources) if len(sources) > 1 else sources[0]).subquery("u")
    # Whole numbers throughout: PostgreSQL sums a bigint into a numeric.
    b = (select(u.c.grp, u.c.period, u.c.stage, u.c.bucket,
                cast(func.sum(u.c.n), BigInteger()).label("n"),
                func.sum(u.c.us).label("us"), func.min(u.c.lo).label("lo"),
                func.max(u.c.hi).label("hi"))
         .group_by(u.c.grp, u.c.period, u.c.stage, u.c.bucket).subquery("b"))
    part = [b.c.grp, b.c.period, b.c.stage]
    w = select(*part, b.c.n, b.c.lo, b.c.hi,
               cast(func.sum(b.c.n).over(partition_by=part, order_by=b.c.bucket),
                    BigInteger()).label("cum"),
               cast(func.sum(b.c.n).over(partition_by=part), BigInteger()).label("total"),
               func.sum(b.c.us).over(partition_by=part).label("total_us")).subquery("w")
    rank = (w.c.total * 9 + 9) // 10
    query = (select(w.c.grp, w.c.period, w.c.stage, w.c.total, w.c.total_us,
                    (w.c.cum - w.c.n).label("before"), w.c.n, w.c.lo, w.c.hi)
             .where(w.c.cum >= rank, w.c.cum - w.c.n < rank))
    found = []
    for group, bucket, stage, total, total_us, before, n, lo, hi in conn.execute(query).all():
        total = int(total)
        p90 = rollups.within_band((total * 9 + 9) // 10 - int(before), int(n), lo, hi)
        found.append((group, int(bucket), stage, StageTime(
            stage, total, round(float(total_us) / 1_000_000 / total, 1), float(p90))))
    return found


def _row_key(k: tuple, group_by: GroupBy | None, interval: Interval | None) -> tuple:
    return (k[0] if group_by is not None else None, k[-1] if interval is not None else 0)


def _complete(rows: dict[tuple, StatsRow], periods: list[Bucket], group_by: GroupBy | None,
              interval: Interval | None) -> list[StatsRow]:
    if group_by is None:
        groups = [None]
    else:
        seen = {g for g, _ in rows}
        groups = sorted(g for g in seen if g is not None) + ([None] if None in seen else [])
    if group_by is not None and interval is None:
        return [rows[(g, 0)] for g in groups]
    return [rows.get((g, b)) or StatsRow(g, periods[b])
            for b in range(len(periods)) for g in groups]


def _case_counts(keys: list[ColumnElement], cohort):
    """Per key, the figures of ROLLUP_COUNTS, as rollups.case_counts counts one case."""
    c = CaseRow
    valid = c.stage != INVALID

    def valid_sum(column) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((valid, column), else_=0)), 0)

    figures = {
        "found": func.count(), "open": _count(c.stage.not_in((CLOSED, INVALID))),
        "closed": _count(c.stage == CLOSED), "invalid": _count(c.stage == INVALID),
        "rated": _count(valid & c.rating.is_not(None)),
        "no_response": _count(valid & (c.evaluation == "no_response")),
        "passed": _count(valid & (c.first_verification == "passed")),
        "verified": _count(valid & c.first_verification.is_not(None)),
        "satisfied": _count(valid & c.rating.in_(SATISFIED)),
    }
    return (select(*keys, *(figures.get(name) if name in figures
                            else valid_sum(getattr(c, name)) for name in ROLLUP_COUNTS))
            .where(cohort).group_by(*(k.name for k in keys)))


def _stage_bands(group_by: GroupBy | None, periods: list[Bucket] | None, cohort):
    """The stays of the cohort's valid cases by band, as `_stage_times` reads every source:
    (grp, period, stage, bucket, n, us, lo, hi); µs whole, as the roll-ups add them."""
    span = StageSpanRow
    grp = (GROUP_COLUMNS[group_by] if group_by is not None else cast(null(), String()))
    period = _bucket_index(periods) if periods else literal(0, Integer())
    keys = [grp.label("grp"), period.label("period")]
    return (select(*keys, span.stage, span.bucket, func.count().label("n"),
                   func.sum(func.round(span.seconds * 1_000_000)).label("us"),
                   func.min(span.seconds).label("lo"), func.max(span.seconds).label("hi"))
            .select_from(span).join(CaseRow, CaseRow.case_id == span.case_id)
            .where(cohort, CaseRow.stage != INVALID)
            .group_by(*keys, span.stage, span.bucket))


# ---- 吹哨报到双考核 -----------------------------------------------------------------------------

def whistle_stats(engine: Engine, period_from: datetime, period_to: datetime,
                  scope_actor: Actor) -> list[WhistleRow]:
    """Per department, the summons made (summoned_at) in [period_from, period_to):

    - summoned 被吹哨次数: summons in the period.
    - reported_on_time 按时报到: reported in no later than the report-in deadline, never marked
      late.
    - reported_late 迟到报到: reported in after the deadline, or marked late first.
    - not_reported 未报到: not reported in (yet), whether or not the deadline has passed.
      summoned = reported_on_time + reported_late + not_reported.
    - avg_minutes_to_report_in 平均报到用时: mean minutes from summons to report-in over those
      that reported in (rounded to 0.1 min); None when none did.
    - parts_done 完成任务: summons whose department reported its part done.

    Supervisors and admins see every department summoned in the period; a department sees its
    own row only (zeros when it was not summoned); every other role is refused."""
    w = WhistleSummonsRow
    where = [w.summoned_at >= period_from, w.summoned_at < period_to]
    if scope_actor.role == Role.DEPARTMENT and scope_actor.department:
        where.append(w.department == scope_actor.department)
    elif scope_actor.role not in WHISTLE_ALL:
        raise Refusal("role_not_allowed",
                      f"Role '{scope_actor.role.value}' may not read the 吹哨报到 figures; "
                      "supervisors and admins see every department, a department its own.")
    reported = w.reported_at.is_not(None)
    late = reported & (w.late | (w.reported_at > w.due_at))
    query = (select(w.department, func.count(), _count(reported & not_(late)), _count(late),
                    _count(w.reported_at.is_(None)), _count(w.done_at.is_not(None)),
                    func.avg(case((reported, _seconds_between(w.summoned_at, w.reported_at,
                                                               engine.dialect.name)))))
             .where(*where).group_by(w.department))
    with engine.connect() as conn:
        found = [WhistleRow(department, *(int(v) for v in counts),
                            avg_minutes_to_report_in=None if avg is None
                            else round(float(avg) / 60, 1))
                 for department, *counts, avg in conn.execute(query)]
    # Sorted here, not in SQL: PostgreSQL would order Chinese names by its locale.
    found.sort(key=lambda r: r.department)
    if scope_actor.role == Role.DEPARTMENT and not found:
        found = [WhistleRow(scope_actor.department)]
    return found

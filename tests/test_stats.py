"""The assessment figures (GET /stats, GET /stats/whistles) over a small ledger told case by
case, on SQLite and PostgreSQL. Every expected number below was worked out by hand from the
timelines in `tell_stories`; the comment next to it says which cases make it.

The cohort is November 2026 in Lhasa time, [2026-11-01 00:00+08:00, 2026-12-01 00:00+08:00).
Urgent limits, calendar time: 暴露垃圾 (环境卫生) 签收 1 h, 整改 8 h; 路灯不亮 (市政设施) 签收 2 h,
整改 24 h.

  E1 环境卫生 城关区 八廓  on time throughout, satisfied, 回头看 consolidated → closed
  E2 环境卫生 城关区 八廓  签收 late (overdue marked), unsatisfied, review upholds
  E3 环境卫生 城关区 吉日  extension approved, submitted after the first deadline but in time,
                          the caller never rates (no_response)
  E4 环境卫生 城关区 八廓  整改 late, first verification fails, round 2 in time, basically satisfied
  E5 环境卫生 城关区 八廓  reopened twice by 回头看 (2 rebounds over 3 rechecks) → closed
  E6 环境卫生 城关区 吉日  whistle W2 (住建 on time, 自来水 never reports), still evaluating
  E7 环境卫生 城关区 八廓  rejected as a duplicate → invalid
  E8 环境卫生 堆龙德庆区   opened 2026-11-30 23:30 Lhasa (15:30 UTC): November, week 49
  M1 市政设施 堆龙德庆区   签收 late, unsatisfied, review reopens → rating cleared
  M2 市政设施 堆龙德庆区   whistle W1 (住建 on time; 供电 in at the deadline, but marked late
                          first), 整改 late
  M3 市政设施 堆龙德庆区   opened 2026-11-30 00:10 Lhasa (Sunday in UTC); 退单, re-dispatched
  N1 no category 堆龙德庆区 waits for a dispatcher: no team
  X1 opened 2026-10-31 23:50 Lhasa, whistled at 23:58: outside, and so is its summons
  X2 opened 2026-12-01 00:00 Lhasa (16:00 UTC on 30 November): December
"""

import csv
import io
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from openpyxl import load_workbook

from domain import lifecycle, whistles
from domain.actions import Action
from domain.calendar import LHASA
from domain.errors import Refusal
from domain.models import SYSTEM_ACTOR, Actor, LedgerEntry, Location, Source, Urgency
from domain.roles import Role
from domain.whistles import WhistleCommand, WhistleEntry, WhistleStart
from ledger import stats
from tests.api_client import in_process
from tests.conftest import postgres_ledger, sqlite_ledger
from tests.factories import (COMMUNITY, DISPATCHER, HOTLINE, INSPECTOR, MUNICIPAL_OFFICER,
                             OFFICER, SUPERVISOR, bearer, cmd, intake, policy)

HOUSING = "拉萨市住房和城乡建设局"
POWER = "国网拉萨供电公司"
WATER = "拉萨市自来水公司"
URBAN = "拉萨市城市管理和综合执法局"  # every case's category names it
HOUSING_OFFICER = Actor(id="dep-zj-01", name="张工", role=Role.DEPARTMENT, department=HOUSING)
POWER_OFFICER = Actor(id="dep-gd-01", name="李工", role=Role.DEPARTMENT, department=POWER)
WATER_OFFICER = Actor(id="dep-zls-01", name="赵工", role=Role.DEPARTMENT, department=WATER)
FORESTRY_OFFICER = Actor(id="dep-ly-01", name="次旺", role=Role.DEPARTMENT,
                         department="拉萨市林业和草原局")
DUILONG_COMMUNITY = Actor(id="c031", name="拉姆", role=Role.COMMUNITY, district="堆龙德庆区",
                          street="东嘎街道")
REPORTER = Actor(id="grid-017", name="网格员多吉", role=Role.REPORTER)
ADMIN = Actor(id="a001", name="管理员", role=Role.ADMIN)


def lhasa(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LHASA)


NOVEMBER = (lhasa(11, 1), lhasa(12, 1))


# ---- telling cases ------------------------------------------------------------------------------

class Story:
    """One case, step by step, each transition checked and recorded as the workflow would."""

    def __init__(self, ledger, catalog, case_id: str, opened: datetime,
                 category: str | None = "exposed_garbage", district: str = "城关区",
                 street: str = "八廓街道", source: Source = Source.HOTLINE) -> None:
        self.ledger, self.catalog, self.opened = ledger, catalog, opened
        case_policy = policy(catalog, category, Urgency.URGENT) if category else None
        # Grid workers report as reporters; everything else comes through the hotline.
        opener = REPORTER if source == Source.GRID else HOTLINE
        self.state, opened_event = lifecycle.open_case(intake(
            case_policy, case_id=case_id, opened_at=opened, source=source, actor=opener,
            urgency=Urgency.URGENT,
            location=Location(district=district, street=street, address="巷口12号旁")))
        self._record(opened_event)

    def at(self, minutes: int) -> datetime:
        return self.opened + timedelta(minutes=minutes)

    def act(self, minutes: int, kind: str, actor: Actor, **fields) -> "Story":
        return self._apply(minutes, cmd(kind, actor, **fields))

    def system(self, minutes: int, action: Action, **fields) -> "Story":
        return self._apply(minutes, lifecycle.system_command(action, uuid.uuid4().hex, **fields))

    def _apply(self, minutes: int, command) -> "Story":
        when = self.at(minutes)
        lifecycle.check(self.state, command, when)
        self._record(lifecycle.apply(self.state, command, when, self.catalog.calendar))
        return self

    def _record(self, event) -> None:
        self.ledger.record(LedgerEntry(event=event, state=self.state.model_copy(deep=True)))

    # The usual path, for brevity.
    def rectify(self, accept: int, submit: int) -> "Story":
        officer = MUNICIPAL_OFFICER if self.state.team == "市政设施" else OFFICER
        self.act(accept, "accept", officer)
        return self.act(submit, "submit_rectification", officer, report="已整改")

    def verify(self, minutes: int, passed: bool = True) -> "Story":
        return self.act(minutes, "verify", INSPECTOR, passed=passed)

    def rate(self, minutes: int, rating: str) -> "Story":
        return self.act(minutes, "evaluate", HOTLINE, rating=rating)


class Whistle:
    """A whistle blown on a story's case: its own records, and the case's stage around it."""

    def __init__(self, case: Story, minutes: int, blower: Actor, kind: str, limit: str,
                 departments: list[str]) -> None:
        self.case = case
        reason = "需多部门联合处置"
        case.act(minutes, "whistle", blower, whistle_kind=kind, report_in_limit=limit,
                 departments=departments, reason=reason)
        self.no = len(case.state.whistles)
        self.state, event = whistles.start(WhistleStart(
            case_id=case.state.case_id, whistle_no=self.no, request_id=uuid.uuid4().hex,
            kind=kind, reason=reason, departments=departments, report_in_limit=limit,
            blown_by=blower, blown_at=case.at(minutes), calendar=case.catalog.calendar))
        self._record(event)

    def act(self, minutes: int, kind: str, actor: Actor, **fields) -> "Whistle":
        command = WhistleCommand(request_id=uuid.uuid4().hex, actor=actor,
                                 payload={"kind": kind, **fields})
        if actor.role != Role.SYSTEM:  # the workflow's own timers are not checked
            whistles.check(self.state, command)
        self._record(whistles.apply(self.state, command, self.case.at(minutes),
                                    self.case.catalog.calendar))
        return self

    def timer(self, minutes: int, kind: str, department: str) -> "Whistle":
        return self.act(minutes, kind, SYSTEM_ACTOR, department=department)

    def close(self, minutes: int) -> None:
        self.case.system(minutes, Action.WHISTLE_CLOSED, whistle_no=self.no,
                         status=self.state.status, late_departments=self.state.late_departments)

    def _record(self, event) -> None:
        self.case.ledger.record_whistle(WhistleEntry(event=event,
                                                     state=self.state.model_copy(deep=True)))


def tell_stories(ledger, catalog) -> None:
    def story(case_id, opened, **where) -> Story:
        return Story(ledger, catalog, case_id, opened, **where)

    duilong = dict(district="堆龙德庆区", street="东嘎街道")
    lights = dict(category="street_light_out", **duilong)

    e1 = story("hotline-E1", lhasa(11, 2, 10)).rectify(accept=10, submit=130)
    e1.verify(200).rate(260, "satisfied")
    e1.system(20420, Action.RECHECK_DUE)  # 14 days after the rating
    e1.act(20480, "recheck", INSPECTOR, result="consolidated")

    e2 = story("grid-E2", lhasa(11, 3, 10), source=Source.GRID)
    e2.system(60, Action.OVERDUE, step="accept", due_at=e2.at(60))
    e2.rectify(accept=90, submit=300).verify(420).rate(460, "unsatisfied")
    e2.act(1000, "review", COMMUNITY, decision="uphold", note="经复核问题已解决")

    e3 = story("hotline-E3", lhasa(11, 4, 10), street="吉日街道")
    e3.act(20, "accept", OFFICER)  # 整改 due at +500
    e3.act(400, "request_extension", OFFICER, extend_by="4h", reason="需等待清运车辆")
    e3.act(420, "decide_extension", SUPERVISOR, approved=True)  # now due at +740
    e3.act(600, "submit_rectification", OFFICER, report="已整改")
    e3.verify(700).system(10780, Action.NO_RESPONSE)  # 7 days later

    e4 = story("hotline-E4", lhasa(11, 5, 10)).rectify(accept=40, submit=600)  # due +520
    e4.verify(700, passed=False)  # round 2, 整改 due at +1180
    e4.act(800, "submit_rectification", OFFICER, report="已重新整改")
    e4.verify(900).rate(1000, "basically_satisfied")

    e5 = story("hotline-E5", lhasa(11, 6, 10)).rectify(accept=15, submit=100)
    e5.verify(150).rate(200, "satisfied")
    for start, result in ((300, "rebounded"), (600, "rebounded"), (900, "consolidated")):
        e5.act(start, "bring_recheck_forward", SUPERVISOR, note="抽查")
        e5.act(start + 60, "recheck", INSPECTOR, result=result)
        if result == "rebounded":
            e5.act(start + 100, "submit_rectification", OFFICER, report="再次清理")
            e5.verify(start + 150).rate(start + 200, "satisfied")

    e6 = story("hotline-E6", lhasa(11, 9, 10), street="吉日街道")
    e6.act(25, "accept", OFFICER)
    w2 = Whistle(e6, 60, OFFICER, "emergency", "30m", [HOUSING, WATER])
    w2.act(80, "report_in", HOUSING_OFFICER)
    w2.timer(90, "whistle_late", WATER).timer(120, "whistle_remind", WATER)
    w2.act(240, "end_whistle", SUPERVISOR, reason="自来水公司未到场，改由专班处置")
    w2.close(240)
    e6.act(300, "submit_rectification", OFFICER, report="已整改").verify(400)

    story("hotline-E7", lhasa(11, 10, 10)).act(45, "reject", DISPATCHER, reason="重复上报")
    story("hotline-E8", lhasa(11, 30, 23, 30), **duilong).act(20, "accept", OFFICER)

    m1 = story("grid-M1", lhasa(11, 11, 10), source=Source.GRID, **lights)
    m1.rectify(accept=150, submit=1000).verify(1100).rate(1200, "unsatisfied")
    m1.act(1300, "review", DUILONG_COMMUNITY, decision="reopen", note="问题仍存在")

    m2 = story("hotline-M2", lhasa(11, 12, 10), **lights)
    m2.act(50, "accept", MUNICIPAL_OFFICER)  # 整改 due at +1490
    w1 = Whistle(m2, 100, MUNICIPAL_OFFICER, "tough", "2h", [HOUSING, POWER])
    w1.act(110, "report_in", HOUSING_OFFICER).timer(220, "whistle_late", POWER)
    w1.act(220, "report_in", POWER_OFFICER).act(280, "report_done", HOUSING_OFFICER, note="已完成")
    w1.act(300, "report_done", POWER_OFFICER, note="已完成")
    w1.close(300)
    m2.act(2000, "submit_rectification", MUNICIPAL_OFFICER, report="已整改")

    m3 = story("hotline-M3", lhasa(11, 30, 0, 10), **lights)
    m3.act(30, "return", MUNICIPAL_OFFICER, reason="该路段不属本专班")
    m3.act(60, "assign", DISPATCHER, team="市政设施").act(100, "accept", MUNICIPAL_OFFICER)

    story("hotline-N1", lhasa(11, 24, 10), category=None, **duilong)

    x1 = story("hotline-X1", lhasa(10, 31, 23, 50))
    x1.act(5, "accept", OFFICER)
    Whistle(x1, 8, OFFICER, "emergency", "30m", [POWER]).act(13, "report_in", POWER_OFFICER)
    story("hotline-X2", lhasa(12, 1)).act(10, "accept", OFFICER)


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def told(request, tmp_path_factory, catalog):
    """The ledger with every story told, once per backend."""
    if request.param == "postgresql":
        with postgres_ledger() as ledger:
            tell_stories(ledger, catalog)
            yield ledger
        return
    ledger = sqlite_ledger(tmp_path_factory.mktemp("stats"))
    tell_stories(ledger, catalog)
    yield ledger
    ledger.engine.dispose()


@pytest.fixture(scope="module")
async def http(told, catalog):
    """The real app over that ledger; nothing here talks to Temporal."""
    async with in_process(None, told, catalog) as client:
        yield client


# ---- reading the results ------------------------------------------------------------------------

def figures(row: stats.StatsRow) -> dict:
    return dict(
        found=row.found, open=row.open, closed=row.closed, invalid=row.invalid,
        rated=row.rated, unrated=row.unrated, no_response=row.no_response,
        accepted_on_time=_pair(row.accepted_on_time),
        rectified_on_time=_pair(row.rectified_on_time),
        resolved=_pair(row.resolved), satisfaction=_pair(row.satisfaction),
        rebound=_pair(row.rebound))


def _pair(ratio: stats.Ratio) -> tuple[int, int]:
    return ratio.numerator, ratio.denominator


def stage_times(row: stats.StatsRow) -> dict:
    return {t.stage: (t.spans, t.avg_seconds, t.p90_seconds) for t in row.stages}


def case_stats(ledger, group_by=None, interval=None, actor=SUPERVISOR, period=NOVEMBER):
    return stats.case_stats(ledger.engine, *period, group_by, interval, actor)


NOVEMBER_TOTAL = dict(
    found=12,            # E1–E8, M1–M3, N1
    open=9, closed=2,    # closed: E1, E5
    invalid=1,           # E7
    rated=4,             # E1, E2, E4, E5 (M1's rating was cleared by the reopening)
    unrated=7,           # E3, E6, E8, M1, M2, M3, N1
    no_response=1,       # E3
    accepted_on_time=(8, 10),    # late: E2, M1; M3's 退单 and E7's rejection are no signing
    rectified_on_time=(9, 11),   # late: E4 round 1, M2; E3 in time thanks to its extension
    resolved=(6, 7),             # failed first: E4; M2 not verified yet
    satisfaction=(3, 4),         # E2 unsatisfied
    rebound=(2, 4),              # E5: 2 of 3, E1: 0 of 1
)


# ---- the figures --------------------------------------------------------------------------------

def test_november_in_one_row(told):
    [row] = case_stats(told)
    assert row.group is None and row.period == stats.Bucket(None, *NOVEMBER)
    assert figures(row) == NOVEMBER_TOTAL
    assert row.accepted_on_time.value == 0.8 and row.rebound.value == 0.5


def test_time_per_stage_with_nearest_rank_p90(told):
    [row] = case_stats(told)
    assert stage_times(row) == {
        # M3 waited 30 min for re-dispatch after its 退单.
        "reported": (1, 1800.0, 1800.0),
        # 600 900 1200 1200 1500 1800 2400 2400 3000 [5400] 9000: ⌈0.9·11⌉ = 10th;
        # 29400 / 11. E7's 2700 s before its rejection is left out.
        "assigned": (11, 2672.7, 5400.0),
        # 2100 2400 2400 3000 3600 5100 6000 7200 12600 33600 34800 [51000] 102000: 12th of 13;
        # 265800 / 13. A whistle splits E6's and M2's stays in two.
        "rectifying": (13, 20446.2, 51000.0),
        "escalated": (2, 11400.0, 12000.0),       # E6 10800, M2 12000
        # 3000 ×3, 4200, 6000 ×5, 7200: ⌈0.9·10⌉ = 9th, not the 10th; 50400 / 10
        "verifying": (10, 5040.0, 6000.0),
        # 2400, 3000 ×3, 3600, 6000 ×2, 604800 (E3's week without an answer): 8th of 8
        "evaluating": (8, 78975.0, 604800.0),
        "reviewing": (2, 19200.0, 32400.0),       # M1 6000, E2 32400
        "recheck_pending": (4, 306900.0, 1209600.0),  # E5 6000 ×3, E1 14 days
        "rechecking": (4, 3600.0, 3600.0),
    }


def test_by_team(told):
    rows = case_stats(told, "team")
    assert [r.group for r in rows] == ["市政设施", "环境卫生", None]
    municipal, sanitation, no_team = rows
    assert figures(municipal) == dict(
        found=3, open=3, closed=0, invalid=0, rated=0, unrated=3, no_response=0,
        accepted_on_time=(2, 3), rectified_on_time=(1, 2), resolved=(1, 1),
        satisfaction=(0, 0), rebound=(0, 0))
    assert municipal.satisfaction.value is None and municipal.rebound.value is None
    assert figures(sanitation) == dict(
        found=8, open=5, closed=2, invalid=1, rated=4, unrated=3, no_response=1,
        accepted_on_time=(6, 7), rectified_on_time=(8, 9), resolved=(5, 6),
        satisfaction=(3, 4), rebound=(2, 4))
    assert figures(no_team) == dict(
        found=1, open=1, closed=0, invalid=0, rated=0, unrated=1, no_response=0,
        accepted_on_time=(0, 0), rectified_on_time=(0, 0), resolved=(0, 0),
        satisfaction=(0, 0), rebound=(0, 0))
    assert stage_times(municipal) == {
        "reported": (1, 1800.0, 1800.0),
        "assigned": (4, 4050.0, 9000.0),         # 1800 2400 3000 9000: 4th of 4
        "rectifying": (3, 52000.0, 102000.0),    # 3000 51000 102000: 3rd of 3
        "escalated": (1, 12000.0, 12000.0),
        "verifying": (1, 6000.0, 6000.0),
        "evaluating": (1, 6000.0, 6000.0),
        "reviewing": (1, 6000.0, 6000.0),
        "recheck_pending": (0, None, None),
        "rechecking": (0, None, None),
    }


def test_by_district(told):
    chengguan, duilong = case_stats(told, "district")
    assert (chengguan.group, duilong.group) == ("城关区", "堆龙德庆区")
    assert figures(chengguan) == dict(   # E1–E7
        found=7, open=4, closed=2, invalid=1, rated=4, unrated=2, no_response=1,
        accepted_on_time=(5, 6), rectified_on_time=(8, 9), resolved=(5, 6),
        satisfaction=(3, 4), rebound=(2, 4))
    assert figures(duilong) == dict(     # E8, M1–M3, N1
        found=5, open=5, closed=0, invalid=0, rated=0, unrated=5, no_response=0,
        accepted_on_time=(3, 4), rectified_on_time=(1, 2), resolved=(1, 1),
        satisfaction=(0, 0), rebound=(0, 0))


def test_by_street_source_and_category(told):
    assert [(r.group, r.found) for r in case_stats(told, "street")] == [
        ("东嘎街道", 5), ("八廓街道", 5), ("吉日街道", 2)]
    assert [(r.group, r.found) for r in case_stats(told, "source")] == [
        ("grid", 2), ("hotline", 10)]
    assert [(r.group, r.found) for r in case_stats(told, "category")] == [
        ("exposed_garbage", 8), ("street_light_out", 3), (None, 1)]


def test_months_are_cut_in_lhasa_time(told):
    november, december = case_stats(told, interval="month",
                                    period=(lhasa(11, 1), lhasa(1, 1, year=2027)))
    assert november.period == stats.Bucket("2026-11", lhasa(11, 1), lhasa(12, 1))
    assert december.period == stats.Bucket("2026-12", lhasa(12, 1), lhasa(1, 1, year=2027))
    # E8 at 23:30 on 30 November is November's; X2 at midnight on 1 December (still 30
    # November in UTC) is December's.
    assert figures(november) == NOVEMBER_TOTAL
    assert (december.found, _pair(december.accepted_on_time)) == (1, (1, 1))
    assert stage_times(december)["assigned"] == (1, 600.0, 600.0)


def test_weeks_start_on_monday_in_lhasa_time(told):
    w48, w49 = case_stats(told, interval="week", period=(lhasa(11, 23), lhasa(12, 7)))
    assert w48.period == stats.Bucket("2026-W48", lhasa(11, 23), lhasa(11, 30))
    assert w49.period == stats.Bucket("2026-W49", lhasa(11, 30), lhasa(12, 7))
    # M3 at 00:10 on Monday 30 November is Sunday 16:10 in UTC: week 49 all the same.
    assert (w48.found, w49.found) == (1, 3)     # N1 | M3, E8, X2


def test_with_an_interval_every_group_gets_every_bucket(told):
    rows = case_stats(told, "team", "month", period=(lhasa(11, 1), lhasa(1, 1, year=2027)))
    assert [(r.period.key, r.group, r.found) for r in rows] == [
        ("2026-11", "市政设施", 3), ("2026-11", "环境卫生", 8), ("2026-11", None, 1),
        ("2026-12", "市政设施", 0), ("2026-12", "环境卫生", 1), ("2026-12", None, 0)]
    assert rows[3].accepted_on_time.value is None and rows[3].stages[1].p90_seconds is None


def test_a_period_without_cases_has_one_row_of_zeros_or_no_group_rows(told):
    empty = (lhasa(1, 1, year=2027), lhasa(2, 1, year=2027))
    [row] = case_stats(told, period=empty)
    assert row.found == 0 and row.resolved.value is None and row.stages[0].spans == 0
    assert case_stats(told, "team", period=empty) == []
    assert [r.found for r in case_stats(told, interval="month", period=empty)] == [0]


def test_buckets_are_clipped_to_the_period():
    assert stats.buckets(lhasa(11, 25, 12), lhasa(12, 3), "week") == [
        stats.Bucket("2026-W48", lhasa(11, 25, 12), lhasa(11, 30)),
        stats.Bucket("2026-W49", lhasa(11, 30), lhasa(12, 3))]
    # Given in UTC, cut in Lhasa time: 16:00 UTC on 31 December is 1 January in Lhasa.
    start = datetime(2026, 12, 31, 16, tzinfo=timezone.utc)
    assert [b.key for b in stats.buckets(start, lhasa(3, 1, year=2027), "month")] == [
        "2027-01", "2027-02"]
    assert [b.key for b in stats.buckets(lhasa(12, 28), lhasa(1, 5, year=2027), "week")] == [
        "2026-W53", "2027-W01"]


# ---- scope --------------------------------------------------------------------------------------

def test_each_role_counts_only_what_it_may_read(told):
    def found(actor) -> int:
        return case_stats(told, actor=actor)[0].found

    assert found(OFFICER) == 8                      # 环境卫生: E1–E8
    assert found(MUNICIPAL_OFFICER) == 3            # M1–M3
    assert found(WATER_OFFICER) == 1                # summoned to E6 only
    assert found(HOUSING_OFFICER) == 2              # E6, M2
    assert found(POWER_OFFICER) == 3                # 路灯不亮's department: M1–M3
    assert found(Actor(id="u", role=Role.DEPARTMENT, department=URBAN)) == 11  # not N1
    assert found(COMMUNITY) == 5                    # 城关区 八廓街道: E1, E2, E4, E5, E7
    assert found(DUILONG_COMMUNITY) == 5
    assert found(INSPECTOR) == 12                   # no area: everywhere
    assert found(Actor(id="i9", role=Role.INSPECTOR, district="城关区", street="吉日街道")) == 2
    assert found(DISPATCHER) == found(ADMIN) == 12
    assert found(HOTLINE) == 10                     # opened all but the grid's two
    assert found(REPORTER) == 2                     # E2, M1
    [own_team] = case_stats(told, "team", actor=OFFICER)
    assert figures(own_team) == figures(case_stats(told, "team")[1])


# ---- 吹哨报到双考核 ----------------------------------------------------------------------------

def whistle_rows(ledger, actor=SUPERVISOR) -> list[tuple]:
    return [(r.department, r.summoned, r.reported_on_time, r.reported_late, r.not_reported,
             r.parts_done, r.avg_minutes_to_report_in)
            for r in stats.whistle_stats(ledger.engine, *NOVEMBER, actor)]


def test_whistle_punctuality_per_department(told):
    # X1's summons of 供电 at 23:58 on 31 October is outside; W1 and W2 are in.
    assert whistle_rows(told) == [
        (POWER, 1, 0, 1, 0, 1, 120.0),        # W1: marked late, then in at the deadline
        (HOUSING, 2, 2, 0, 0, 1, 15.0),       # W1 in 10 min and done, W2 in 20 min
        (WATER, 1, 0, 0, 1, 0, None),         # W2: never came; the whistle was ended
    ]
    assert whistle_rows(told, ADMIN) == whistle_rows(told)


def test_a_department_sees_its_own_whistle_row_only(told):
    assert whistle_rows(told, WATER_OFFICER) == [(WATER, 1, 0, 0, 1, 0, None)]
    assert whistle_rows(told, FORESTRY_OFFICER) == [("拉萨市林业和草原局", 0, 0, 0, 0, 0, None)]
    for actor in (OFFICER, DISPATCHER, COMMUNITY, INSPECTOR, HOTLINE):
        with pytest.raises(Refusal) as refused:
            stats.whistle_stats(told.engine, *NOVEMBER, actor)
        assert refused.value.code == "role_not_allowed"


# ---- over HTTP ----------------------------------------------------------------------------------

async def get(http, path: str, actor: Actor = SUPERVISOR, **params) -> httpx.Response:
    return await http.get(path, params=params, headers=bearer(actor))


async def test_stats_route_labels_every_figure(http):
    response = await get(http, "/stats", **{"from": "2026-11-01", "to": "2026-12-01"},
                         group_by="team")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["from"], body["to"]) == ("2026-11-01T00:00:00+08:00", "2026-12-01T00:00:00+08:00")
    assert [(r["group"], r["group_label"]) for r in body["rows"]] == [
        ("市政设施", "市政设施"), ("环境卫生", "环境卫生"), (None, "未派单")]
    sanitation = body["rows"][1]
    assert sanitation["accepted_on_time_rate"] == {
        "label": "及时签收率", "value": 0.8571, "numerator": 6, "denominator": 7}
    assert sanitation["satisfaction_rate"]["label"] == "满意率"
    assert sanitation["found"] == {"label": "发现数", "value": 8}
    assert sanitation["unrated"] == {"label": "未评价数", "value": 3}
    assert body["rows"][0]["rebound_rate"] == {
        "label": "反弹率", "value": None, "numerator": 0, "denominator": 0}
    assert sanitation["stage_times"][1] == {
        "stage": "assigned", "label": "待签收", "spans": 7, "avg_seconds": 1885.7,
        "p90_seconds": 5400.0}  # 600 900 1200 1200 1500 2400 [5400]: 13200 / 7


async def test_times_with_an_offset_and_a_plus_sent_unescaped(http):
    for start in ("2026-10-31T16:00:00Z", "2026-11-01T00:00:00+08:00"):
        response = await get(http, "/stats", **{"from": start, "to": "2026-12-01"})
        assert response.json()["rows"][0]["found"]["value"] == 12
    # A + in a query string reads as a space.
    response = await http.get("/stats?from=2026-11-01T00:00:00+08:00&to=2026-12-01",
                              headers=bearer(SUPERVISOR))
    assert response.status_code == 200 and response.json()["rows"][0]["found"]["value"] == 12


async def test_officer_sees_only_their_team_and_the_hotline_is_refused(http):
    response = await get(http, "/stats", OFFICER, **{"from": "2026-11-01", "to": "2026-12-01"},
                         group_by="team", interval="month")
    assert [(r["group"], r["period"], r["found"]["value"]) for r in response.json()["rows"]] == [
        ("环境卫生", "2026-11", 8)]
    for actor in (HOTLINE, REPORTER):
        response = await get(http, "/stats", actor, **{"from": "2026-11-01", "to": "2026-12-01"})
        assert response.status_code == 403
        assert response.json()["code"] == "role_not_allowed"


async def test_whistle_route_scopes_to_the_department(http):
    period = {"from": "2026-11-01", "to": "2026-12-01"}
    everyone = (await get(http, "/stats/whistles", **period)).json()["rows"]
    assert [(r["department"], r["reported_late"]["value"]) for r in everyone] == [
        (POWER, 1), (HOUSING, 0), (WATER, 0)]
    assert everyone[1]["avg_minutes_to_report_in"] == {"label": "平均报到用时（分钟）",
                                                      "value": 15.0}
    own = (await get(http, "/stats/whistles", WATER_OFFICER, **period)).json()["rows"]
    assert [(r["department"], r["not_reported"]) for r in own] == [
        (WATER, {"label": "未报到", "value": 1})]
    for actor in (OFFICER, DISPATCHER, HOTLINE):
        response = await get(http, "/stats/whistles", actor, **period)
        assert response.status_code == 403 and response.json()["code"] == "role_not_allowed"


@pytest.mark.parametrize("params, field, message", [
    ({"to": "2026-12-01"}, "from", "Field required"),
    ({"from": "2026-12-01", "to": "2026-11-01"}, "to", "must be after from"),
    ({"from": "2026-11-01", "to": "2026-11-01"}, "to", "must be after from"),
    ({"from": "2020-01-01", "to": "2023-01-02"}, "to", "at most 3 years after from"),
    ({"from": "2026-11-01T00:00:00", "to": "2026-12-01"}, "from", "timezone"),
    ({"from": "2026-02-30", "to": "2026-12-01"}, "from", "not a valid date"),
    ({"from": "0001-01-01", "to": "2026-12-01"}, "from", "out of range"),
    ({"from": "2026-11-01", "to": "2026-12-01", "group_by": "village"}, "group_by", "'team'"),
    ({"from": "2026-11-01", "to": "2026-12-01", "interval": "day"}, "interval", "'week'"),
])
async def test_bad_periods_and_choices_are_refused_clearly(http, params, field, message):
    response = await get(http, "/stats", **params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_input"
    [error] = body["details"]["errors"]
    assert error["field"] == field and message in error["message"], error


async def test_exactly_three_years_is_allowed(http):
    response = await get(http, "/stats/whistles", **{"from": "2024-02-29", "to": "2027-03-01"})
    assert response.status_code == 200, response.text
    response = await get(http, "/stats", **{"from": "2024-01-01", "to": "2027-01-01"},
                         interval="week")
    assert response.status_code == 200 and len(response.json()["rows"]) == 157


async def test_csv_export_has_chinese_headers(http):
    response = await get(http, "/stats/export", **{"from": "2026-11-01", "to": "2026-12-01"},
                         group_by="district", format="csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "filename*=UTF-8''" in response.headers["content-disposition"]
    header, chengguan, duilong = csv.reader(io.StringIO(response.content.decode("utf-8-sig")))
    assert header[:8] == ["区县", "周期", "开始", "结束", "发现数", "在办数", "办结数", "作废数"]
    at = header.index
    assert chengguan[:5] == ["城关区", "", "2026-11-01 00:00", "2026-12-01 00:00", "7"]
    assert [chengguan[at("及时签收率")], chengguan[at("及时签收率分子")],
            chengguan[at("及时签收率分母")]] == ["0.8333", "5", "6"]
    assert duilong[at("满意率")] == "" and duilong[at("满意率分母")] == "0"
    assert duilong[at("待签收P90用时（小时）")] == "2.5"    # M1's 9000 s


async def test_xlsx_exports(http):
    period = {"from": "2026-11-01", "to": "2026-12-01"}
    response = await get(http, "/stats/export", **period, format="xlsx")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    header, total = list(sheet.iter_rows(values_only=True))
    assert sheet.title == "考核统计" and header[0] == "范围" and total[:5] == (
        "合计", None, "2026-11-01 00:00", "2026-12-01 00:00", 12)
    response = await get(http, "/stats/whistles/export", **period, format="xlsx")
    rows = list(load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))
    assert rows == [
        ("职能部门", "被吹哨次数", "按时报到", "迟到报到", "未报到", "完成任务", "平均报到用时（分钟）"),
        (POWER, 1, 0, 1, 0, 1, 120), (HOUSING, 2, 2, 0, 0, 1, 15), (WATER, 1, 0, 0, 1, 0, None)]
    response = await get(http, "/stats/whistles/export", OFFICER, **period)
    assert response.status_code == 403


async def test_definitions_are_in_the_api_docs(http):
    paths = (await http.get("/openapi.json")).json()["paths"]
    described = paths["/stats"]["get"]["description"]
    for text in ("created", "及时签收率", "按时办结率", "解决率", "满意率", "反弹率", "⌈0.9·n⌉",
                 "Invalid", "null, not 0"):
        assert text in described
    assert "迟到报到" in paths["/stats/whistles"]["get"]["description"]

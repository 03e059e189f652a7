"""The supervisors' case list (整改台账) and its export, on SQLite and PostgreSQL: every filter,
sort and scope rule against a ledger of crafted cases, keyset pages, and streamed CSV/xlsx."""

import base64
import csv
import io
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import insert, select

from api.export import csv_stream, export_response, xlsx_stream
from api.routes import supervision
from api.routes.supervision import EXPORT_HEADERS, ExportQuery, export_cases, export_row
from domain import lifecycle
from domain.access import read_refusal
from domain.actions import Action
from domain.models import Actor, CaseState, LedgerEntry, Location, Source, Urgency
from domain.roles import Role
from ledger.queries import CaseFilter, InvalidCursor, Order, Sort, iter_cases, list_cases
from ledger.repository import Ledger
from ledger.tables import CaseRow
from tests.api_client import in_process
from tests.conftest import postgres_ledger, sqlite_ledger
from tests.factories import (DISPATCHER, HOTLINE, INSPECTOR, MUNICIPAL_OFFICER, OFFICER,
                             SUPERVISOR, bearer, cmd, intake, policy)

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)  # Monday 09:00 in Lhasa
GRID = Actor(id="grid-007", name="次旦", role=Role.REPORTER)
SNAPPER = Actor(id="snap-100", name="随手拍用户", role=Role.REPORTER)
ROAD_OFFICER = Actor(id="o201", name="多吉", role=Role.OFFICER, team="道路交通")
HOUSING = "拉萨市住房和城乡建设局"
URBAN = "拉萨市城市管理和综合执法局"
LONG_TEXT = "八廓街转经道旁" + "垃圾堆积无人清运，" * 40


class Story:
    """One case told as the workflow would record it, without Temporal."""

    def __init__(self, catalog, n: int, category: str | None = "exposed_garbage", *,
                 hour: int | None = None, urgency: Urgency = Urgency.NORMAL,
                 source: Source = Source.HOTLINE, actor: Actor = HOTLINE,
                 district: str = "城关区", street: str | None = "八廓街道",
                 community: str | None = None, address: str = "吉日巷12号旁",
                 description: str = "吉日巷口垃圾堆积三天无人清运") -> None:
        self.calendar = catalog.calendar
        self.now = T0 + timedelta(hours=n if hour is None else hour)
        case_policy = policy(catalog, category, urgency) if category else None
        self.state, event = lifecycle.open_case(intake(
            case_policy, case_id=f"c{n:02d}", opened_at=self.now, source=source, actor=actor,
            urgency=urgency, description=description,
            location=Location(district=district, street=street, community=community,
                              address=address)))
        self.entries = [LedgerEntry(event=event, state=self.state.model_copy(deep=True))]

    def then(self, kind: str, actor: Actor, minutes: int = 10, **fields) -> "Story":
        return self.at(self.now + timedelta(minutes=minutes), cmd(kind, actor, **fields))

    def system(self, action: Action, when: datetime, **fields) -> "Story":
        return self.at(when, lifecycle.system_command(action, f"{action.value}:{when}", **fields))

    def at(self, when: datetime, command) -> "Story":
        self.now = when
        event = lifecycle.apply(self.state, command, when, self.calendar)
        self.entries.append(LedgerEntry(event=event, state=self.state.model_copy(deep=True)))
        return self

    def rectified(self) -> "Story":
        return (self.then("accept", OFFICER)
                .then("submit_rectification", OFFICER, report="已清运并消杀")
                .then("verify", INSPECTOR, passed=True)
                .then("evaluate", HOTLINE, rating="satisfied"))

    def rechecked(self, result: str) -> "Story":
        self.rectified()
        return self.system(Action.RECHECK_DUE, self.state.recheck_due_at).then(
            "recheck", INSPECTOR, result=result)

    def overdue(self) -> "Story":
        clock = self.state.clock
        return self.system(Action.OVERDUE, clock.due_at, step=clock.step, due_at=clock.due_at)


def stories(catalog) -> list[Story]:
    def story(n, category="exposed_garbage", **fields):
        return Story(catalog, n, category, **fields)

    return [
        story(1, community="冲赛康社区"),
        story(2, "street_light_out", source=Source.GRID, actor=GRID, street="吉日街道",
              community="吉日社区", description="LED路灯不亮已一周").then("accept",
                                                                         MUNICIPAL_OFFICER),
        # Signed for two days after its 2-working-hour limit: the accept step was late.
        story(3, district="堆龙德庆区", street="东嘎街道", address="东嘎村5组",
              description="村口垃圾成堆").then("accept", OFFICER, minutes=2 * 24 * 60),
        story(4, urgency=Urgency.URGENT, description="八廓街北侧垃圾桶满溢")
        .then("accept", OFFICER).overdue(),
        story(5, source=Source.SNAPSHOT, actor=SNAPPER,
              description="清理进度100%后仍有异味").rechecked("consolidated"),
        story(6, description="沿河1000米河道垃圾").rechecked("rebounded"),
        story(7, description="老城区拆违垃圾需住建配合").then("accept", OFFICER).then(
            "whistle", OFFICER, whistle_kind="tough", whistle_kind_name="攻坚哨",
            report_in_limit="2h", departments=[HOUSING, "PowerCo"], reason="需住建部门配合"),
        story(8, None, description="A_B栋楼道堆物"),
        story(9, None, description="无效诉求").then("reject", DISPATCHER, reason="无效诉求"),
        story(10, "road_damage", urgency=Urgency.EMERGENCY, street="吉日街道",
              description="AXB路口坑洼").then("accept", ROAD_OFFICER).then(
            "submit_rectification", ROAD_OFFICER, report="已修补"),
        story(11, source=Source.GRID, actor=GRID, community="八廓社区", description=LONG_TEXT),
        # Opened at the same instant: ties on every sort key, broken by case_id.
        story(12, hour=12),
        story(13, hour=12),
    ]


def record(ledger: Ledger, catalog) -> dict[str, CaseState]:
    states = {}
    for story in stories(catalog):
        for entry in story.entries:
            ledger.record(entry)
        states[story.state.case_id] = story.state
    return states


@contextmanager
def a_ledger(backend: str, directory) -> Iterator[Ledger]:
    if backend == "postgresql":
        with postgres_ledger() as ledger:
            yield ledger
        return
    ledger = sqlite_ledger(directory)
    yield ledger
    ledger.engine.dispose()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


class Crafted:
    def __init__(self, ledger: Ledger, states: dict[str, CaseState]) -> None:
        self.ledger, self.engine, self.states = ledger, ledger.engine, states

    def ids(self, actor: Actor = SUPERVISOR, **filters) -> list[str]:
        page = list_cases(self.engine, CaseFilter(**filters), actor, limit=200)
        assert page.total == len(page.items) and page.next_cursor is None
        return [c.case_id for c in page.items]


@pytest.fixture(scope="module", params=BACKENDS)
def crafted(request, tmp_path_factory, catalog) -> Iterator[Crafted]:
    """Read-only: tests that write get `fresh`."""
    with a_ledger(request.param, tmp_path_factory.mktemp("case_list")) as ledger:
        yield Crafted(ledger, record(ledger, catalog))


@pytest.fixture(params=BACKENDS)
def fresh(request, tmp_path, catalog) -> Iterator[Crafted]:
    with a_ledger(request.param, tmp_path) as ledger:
        yield Crafted(ledger, record(ledger, catalog))


# ---- filters ------------------------------------------------------------------------------------

ALL = {f"c{n:02d}" for n in range(1, 14)}
FILTERS = [
    ({}, ALL),
    ({"stage": ["assigned"]}, {"c01", "c11", "c12", "c13"}),
    ({"stage": ["rectifying", "escalated"]}, {"c02", "c03", "c04", "c06", "c07"}),
    ({"stage": ["closed"]}, {"c05"}),
    ({"stage": ["invalid", "reported"]}, {"c08", "c09"}),
    ({"team": ["市政设施", "道路交通"]}, {"c02", "c10"}),
    ({"category": ["street_light_out"]}, {"c02"}),
    ({"source": ["grid", "snapshot"]}, {"c02", "c05", "c11"}),
    ({"urgency": ["urgent", "emergency"]}, {"c04", "c10"}),
    ({"district": "堆龙德庆区"}, {"c03"}),
    ({"street": "吉日街道"}, {"c02", "c10"}),
    ({"district": "城关区", "street": "八廓街道", "community": "冲赛康社区"}, {"c01"}),
    ({"overdue": True}, {"c04"}),
    ({"overdue": False}, ALL - {"c04"}),
    ({"overdue_step": "accept"}, {"c03"}),
    ({"overdue_step": "rectify"}, {"c04"}),
    ({"overdue_step": "verify"}, set()),
    ({"rebounded": True}, {"c06"}),
    ({"rebounded": False}, ALL - {"c06"}),
    ({"whistled": True}, {"c07"}),
    ({"whistled": False, "stage": ["rectifying", "escalated"]}, {"c02", "c03", "c04", "c06"}),
    ({"created_from": T0 + timedelta(hours=2), "created_to": T0 + timedelta(hours=5)},
     {"c02", "c03", "c04"}),
    ({"created_to": T0 + timedelta(hours=1, microseconds=1)}, {"c01"}),
    ({"created_from": T0 + timedelta(hours=12)}, {"c12", "c13"}),
    ({"closed_from": T0, "closed_to": T0 + timedelta(days=60)}, {"c05"}),
    ({"closed_to": T0 + timedelta(days=1)}, set()),
    ({"stage": ["assigned"], "team": ["环境卫生"], "community": "八廓社区"}, {"c11"}),
]


@pytest.mark.parametrize(("filters", "expected"), FILTERS, ids=[str(f) for f, _ in FILTERS])
def test_each_filter_selects_exactly_its_cases(crafted, filters, expected):
    assert set(crafted.ids(**filters)) == expected


@pytest.mark.parametrize(("q", "expected"), [
    ("led", {"c02"}),             # case-insensitive
    ("LeD路灯", {"c02"}),
    ("100%", {"c05"}),            # a literal %: not "100 followed by anything" (c06 has 1000)
    ("A_B", {"c08"}),             # a literal _: not any one character (c10 has AXB)
    ("东嘎村5组", {"c03"}),        # the address is searched too
    ("  1000米 ", {"c06"}),
    ("", ALL),                    # an empty search box asks for nothing
    ("\\", set()),
    ("无此内容", set()),
])
def test_text_search_is_literal_and_case_insensitive(crafted, q, expected):
    assert set(crafted.ids(q=q)) == expected


def test_an_overdue_step_counts_whether_late_at_the_end_or_still_past_its_deadline(crafted):
    accept = crafted.states["c03"].steps[0]
    assert accept.step == "accept" and accept.late and not accept.overdue
    rectify = crafted.states["c04"].clock
    assert rectify.step == "rectify" and rectify.overdue


@pytest.mark.parametrize(("filters", "field"), [
    ({"stage": ["nowhere"]}, "stage"),
    ({"overdue_step": "evaluate"}, "overdue_step"),
    ({"created_from": datetime(2026, 11, 1)}, "created_from"),  # no zone
    ({"created_from": T0, "created_to": T0}, "created_to"),
    ({"closed_from": T0, "closed_to": T0 - timedelta(days=1)}, "closed_to"),
    ({"created_from": "0001-01-01T00:00:00+08:00"}, "created_from"),
    ({"q": "x" * 101}, "q"),
    ({"q": "a\x00b"}, "q"),
    ({"team": ["x"] * 51}, "team"),
    ({"unknown": 1}, "unknown"),
])
def test_bad_filters_are_refused_naming_the_field(filters, field):
    with pytest.raises(ValueError) as refused:
        CaseFilter(**filters)
    assert [e["loc"][0] for e in refused.value.errors()] == [field]


# ---- scope --------------------------------------------------------------------------------------

SCOPED = {
    "supervisor": SUPERVISOR,
    "admin": Actor(id="a001", name="管理员", role=Role.ADMIN),
    "dispatcher": DISPATCHER,
    "officer 环境卫生": OFFICER,
    "officer 市政设施": MUNICIPAL_OFFICER,
    "officer 道路交通": ROAD_OFFICER,
    "officer without a team": Actor(id="o999", role=Role.OFFICER),
    "hotline": HOTLINE,
    "grid reporter": GRID,
    "snapshot reporter": SNAPPER,
    "inspector everywhere": INSPECTOR,
    "inspector of 吉日街道": Actor(id="i010", role=Role.INSPECTOR, district="城关区",
                                   street="吉日街道"),
    "community of 八廓街道": Actor(id="c021", role=Role.COMMUNITY, district="城关区",
                                   street="八廓街道"),
    "community of 冲赛康社区": Actor(id="c022", role=Role.COMMUNITY, district="城关区",
                                      street="八廓街道", community="冲赛康社区"),
    "community of a district": Actor(id="c023", role=Role.COMMUNITY, district="堆龙德庆区"),
    "community without an area": Actor(id="c024", role=Role.COMMUNITY, street="八廓街道"),
    "department 住建局": Actor(id="dp1", role=Role.DEPARTMENT, department=HOUSING),
    "department 城管执法局": Actor(id="dp2", role=Role.DEPARTMENT, department=URBAN),
    "department 供电公司": Actor(id="dp3", role=Role.DEPARTMENT, department="国网拉萨供电公司"),
    "department spanning two names": Actor(id="dp4", role=Role.DEPARTMENT,
                                           department=f"{URBAN}|{HOUSING}"),
    "department PowerCo": Actor(id="dp5", role=Role.DEPARTMENT, department="PowerCo"),
    "department powerco": Actor(id="dp6", role=Role.DEPARTMENT, department="powerco"),
    "system": Actor(id="system", role=Role.SYSTEM),
}


@pytest.mark.parametrize("who", SCOPED)
def test_the_list_scope_is_exactly_who_may_read_each_case(crafted, who):
    actor = SCOPED[who]
    readable = {cid for cid, s in crafted.states.items() if read_refusal(actor, s) is None}
    assert set(crafted.ids(actor)) == readable


@pytest.mark.parametrize(("who", "expected"), [
    ("supervisor", ALL),
    ("officer 环境卫生", {"c01", "c03", "c04", "c05", "c06", "c07", "c11", "c12", "c13"}),
    ("officer 市政设施", {"c02"}),
    ("hotline", ALL - {"c02", "c05", "c11"}),
    ("grid reporter", {"c02", "c11"}),
    ("community of 八廓街道", ALL - {"c02", "c03", "c10"}),
    ("community of 冲赛康社区", {"c01"}),
    ("community of a district", {"c03"}),
    ("community without an area", set()),
    ("inspector of 吉日街道", {"c02", "c10"}),
    ("department 住建局", {"c07", "c10"}),  # summoned by a whistle; named by road_damage
    ("department 供电公司", {"c02"}),
    ("department spanning two names", set()),
    ("department PowerCo", {"c07"}),
    ("department powerco", set()),  # names match exactly, ASCII case too
    ("system", set()),
])
def test_each_role_lists_what_it_should(crafted, who, expected):
    assert set(crafted.ids(SCOPED[who])) == expected


def test_scope_and_filters_narrow_together(crafted):
    assert set(crafted.ids(OFFICER, stage=["rectifying"])) == {"c03", "c04", "c06"}
    assert crafted.ids(MUNICIPAL_OFFICER, stage=["assigned"]) == []


def test_a_department_named_with_like_wildcards_matches_only_itself(crafted):
    for name in ("%", "_", f"%{URBAN[1:]}"):
        actor = Actor(id="dp9", role=Role.DEPARTMENT, department=name)
        assert crafted.ids(actor) == []


# ---- sorting and pages --------------------------------------------------------------------------

SORT_FIELD = {Sort.CREATED: "created_at", Sort.UPDATED: "updated_at", Sort.DEADLINE: "due_at"}
ORDERINGS = [(sort, order) for sort in Sort for order in Order]


def expected_order(engine, sort: Sort, order: Order) -> list[str]:
    """Sorted in Python: by the key then case_id, both in the order asked; no deadline last."""
    field = SORT_FIELD[sort]
    with engine.connect() as conn:
        rows = conn.execute(select(CaseRow.case_id, getattr(CaseRow, field))).all()
    desc = order == Order.DESC
    dated = sorted((r for r in rows if r[1] is not None), key=lambda r: (r[1], r[0]),
                   reverse=desc)
    undated = sorted((r for r in rows if r[1] is None), key=lambda r: r[0], reverse=desc)
    return [r[0] for r in dated + undated]


def walk(engine, sort, order, limit, actor=SUPERVISOR, between=None, **filters) -> list[str]:
    seen, cursor, pages = [], None, 0
    while True:
        page = list_cases(engine, CaseFilter(**filters), actor, sort, order, limit, cursor)
        pages += 1
        seen += [c.case_id for c in page.items]
        assert len(page.items) <= limit
        if page.next_cursor is None:
            return seen
        assert len(page.items) == limit
        cursor = page.next_cursor
        if between:
            between(pages)


def test_the_crafted_data_has_ties_and_missing_deadlines(crafted):
    c12, c13 = crafted.states["c12"], crafted.states["c13"]
    assert (c12.created_at, c12.updated_at, c12.clock.due_at) == \
        (c13.created_at, c13.updated_at, c13.clock.due_at)
    assert {cid for cid, s in crafted.states.items() if s.clock is None} == {"c05", "c08", "c09"}


@pytest.mark.parametrize(("sort", "order"), ORDERINGS)
def test_each_sort_orders_both_ways_with_case_id_breaking_ties(crafted, sort, order):
    page = list_cases(crafted.engine, CaseFilter(), SUPERVISOR, sort, order, limit=200)
    assert [c.case_id for c in page.items] == expected_order(crafted.engine, sort, order)


def test_the_default_is_newest_first(crafted):
    assert crafted.ids()[:3] == ["c13", "c12", "c11"]


@pytest.mark.parametrize(("sort", "order"), ORDERINGS)
@pytest.mark.parametrize("limit", [1, 2, 5])
def test_paging_through_gives_every_case_once_in_order(crafted, sort, order, limit):
    assert walk(crafted.engine, sort, order, limit) == expected_order(crafted.engine, sort, order)


def test_every_page_counts_the_whole_filtered_set(crafted):
    cursor, totals = None, []
    while True:
        page = list_cases(crafted.engine, CaseFilter(team=["环境卫生"]), SUPERVISOR,
                          limit=4, cursor=cursor)
        totals.append(page.total)
        if not (cursor := page.next_cursor):
            break
    assert totals == [9, 9, 9]
    assert walk(crafted.engine, Sort.CREATED, Order.DESC, 4, OFFICER, stage=["rectifying"]) \
        == ["c06", "c04", "c03"]


def test_an_exactly_full_last_page_has_no_next_cursor(crafted):
    page = list_cases(crafted.engine, CaseFilter(), SUPERVISOR, limit=13)
    assert len(page.items) == 13 and page.next_cursor is None and page.total == 13


@pytest.mark.parametrize(("sort", "order"), [(Sort.CREATED, Order.ASC),
                                           (Sort.DEADLINE, Order.ASC), (Sort.UPDATED, Order.DESC)])
def test_pages_stay_stable_when_cases_arrive_between_fetches(fresh, catalog, sort, order):
    """Keyset pages: nothing listed comes again, nothing there before is skipped, and a case
    that arrives is listed exactly when it sorts after where the reader stands."""
    before = expected_order(fresh.engine, sort, order)
    seen, stood_at, cursor = [], {}, None
    while True:
        page = list_cases(fresh.engine, CaseFilter(), SUPERVISOR, sort, order, 3, cursor)
        seen += [c.case_id for c in page.items]
        if not (cursor := page.next_cursor):
            break
        # One case older than every other, one newer, arriving while the reader is mid-list.
        for hour in (-1 - len(seen), 30 + len(seen)):
            story = Story(catalog, 20 + len(stood_at), hour=hour)
            for entry in story.entries:
                fresh.ledger.record(entry)
            stood_at[story.state.case_id] = seen[-1]
    after = expected_order(fresh.engine, sort, order)
    assert len(seen) == len(set(seen))
    assert [cid for cid in seen if cid in before] == before
    for added, position in stood_at.items():
        assert (added in seen) == (after.index(added) > after.index(position)), added
    assert any(added in seen for added in stood_at) and not all(a in seen for a in stood_at)
    assert list_cases(fresh.engine, CaseFilter(), SUPERVISOR).total == 13 + len(stood_at)


def cursor_of(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


def test_a_cursor_that_was_not_handed_out_is_refused(crafted):
    good = list_cases(crafted.engine, CaseFilter(), SUPERVISOR, limit=2).next_cursor
    position = base64.urlsafe_b64decode(good + "==")
    assert b'Z"' in position
    for cursor in ("not a cursor!", "", good[:-6], cursor_of(b"[1, 2]"), cursor_of(b"\xff\xfe"),
                   cursor_of(position.replace(b'"desc"', b'"sideways"')),
                   cursor_of(position.replace(b'Z"', b'"')),             # naive time
                   cursor_of(position.replace(b'"case_id"', b'"id"')),
                   cursor_of(position[:-1] + b', "extra": 1}')):
        with pytest.raises(InvalidCursor):
            list_cases(crafted.engine, CaseFilter(), SUPERVISOR, limit=2, cursor=cursor)
    with pytest.raises(InvalidCursor, match="sorted by created desc, not updated desc"):
        list_cases(crafted.engine, CaseFilter(), SUPERVISOR, Sort.UPDATED, limit=2, cursor=good)
    with pytest.raises(ValueError):
        list_cases(crafted.engine, CaseFilter(), SUPERVISOR, limit=201)


# ---- over HTTP ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def client(crafted, catalog):
    """The real app without Temporal: these routes read only the ledger."""
    async with in_process(None, crafted.ledger, catalog) as http:
        yield http


async def get(client, path: str, who: Actor = SUPERVISOR, **params) -> httpx.Response:
    return await client.get(path, params=params, headers=bearer(who))


async def test_the_list_answers_with_compact_items_and_no_personal_data(client):
    response = await get(client, "/cases", stage=["assigned", "rectifying"], limit=3)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 8 and len(body["items"]) == 3 and body["next_cursor"]
    item = body["items"][0]
    assert set(item) == {"case_id", "stage", "stage_label", "team", "category", "source",
                         "urgency", "district", "street", "community", "address",
                         "description", "round", "rebounds", "overdue", "due_at",
                         "created_at", "updated_at", "closed_at", "rating"}
    assert (item["case_id"], item["stage_label"]) == ("c13", "待签收")
    assert "王女士" not in response.text and "13800000000" not in response.text
    rest = await get(client, "/cases", stage=["assigned", "rectifying"], limit=10,
                     cursor=body["next_cursor"])
    assert [i["case_id"] for i in rest.json()["items"]] == ["c06", "c04", "c03", "c02", "c01"]


async def test_long_descriptions_are_shortened_in_the_list(client):
    item = (await get(client, "/cases", community="八廓社区")).json()["items"][0]
    assert len(item["description"]) == 200 and item["description"].endswith("…")
    assert LONG_TEXT.startswith(item["description"][:-1])


async def test_every_filter_and_the_sort_reach_the_query(client):
    response = await get(client, "/cases", team=["环境卫生"], urgency="urgent", overdue="true",
                         overdue_step="rectify", rebounded="false", whistled="false",
                         district="城关区", street="八廓街道", source="hotline",
                         category="exposed_garbage", q="满溢",
                         created_from=(T0 + timedelta(hours=4)).isoformat(),
                         created_to=(T0 + timedelta(hours=5)).isoformat(),
                         sort="deadline", order="asc")
    assert [i["case_id"] for i in response.json()["items"]] == ["c04"]
    closed = await get(client, "/cases", closed_from=T0.isoformat(),
                       closed_to=(T0 + timedelta(days=60)).isoformat())
    assert [(i["case_id"], i["rating"]) for i in closed.json()["items"]] == [("c05", "satisfied")]


async def test_the_caller_scope_applies_over_http(client):
    officer = await get(client, "/cases", MUNICIPAL_OFFICER)
    assert [i["case_id"] for i in officer.json()["items"]] == ["c02"]
    community = await get(client, "/cases", SCOPED["community of 冲赛康社区"])
    assert community.json()["total"] == 1


@pytest.mark.parametrize(("params", "field"), [
    ({"stage": ["assigned", "nowhere"]}, "stage.1"),
    ({"limit": 0}, "limit"),
    ({"limit": 201}, "limit"),
    ({"sort": "priority"}, "sort"),
    ({"order": "up"}, "order"),
    ({"overdue": "maybe"}, "overdue"),
    ({"created_from": "2026-11-01T00:00:00"}, "created_from"),
    ({"created_from": "2026-11-02T00:00:00+08:00", "created_to": "2026-11-01T00:00:00+08:00"},
     "created_to"),
    ({"stages": "assigned"}, "stages"),
    ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
])
async def test_bad_input_answers_422_naming_the_field(client, params, field):
    response = await get(client, "/cases", **params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_input"
    assert [e["field"] for e in body["details"]["errors"]] == [field]


async def test_a_cursor_for_another_sort_answers_422(client):
    first = (await get(client, "/cases", limit=1)).json()
    response = await get(client, "/cases", limit=1, sort="updated", cursor=first["next_cursor"])
    assert response.status_code == 422
    assert response.json()["details"]["errors"][0]["type"] == "invalid_cursor"


async def test_the_list_and_export_need_a_token(client):
    for path in ("/cases", "/cases/export"):
        response = await client.get(path)
        assert (response.status_code, response.json()["code"]) == (401, "missing_token")


async def test_export_is_not_taken_for_a_case_id(client):
    response = await get(client, "/cases/export")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    # The case routes still answer for real ids.
    case = await get(client, "/cases/c01")
    assert case.status_code == 200 and case.json()["case_id"] == "c01"


def parsed_csv(response: httpx.Response) -> list[list[str]]:
    assert response.content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


async def test_the_csv_export_has_the_list_rows_with_chinese_headers(client):
    params = {"stage": ["assigned", "rectifying", "closed"], "sort": "deadline", "order": "asc"}
    listed = (await get(client, "/cases", limit=200, **params)).json()["items"]
    response = await get(client, "/cases/export", format="csv", **params)
    today = datetime.now(timezone(timedelta(hours=8))).date().isoformat()
    assert response.headers["content-disposition"] == (
        f"attachment; filename=\"cases-{today}.csv\"; filename*=UTF-8''cases-{today}.csv")
    header, *rows = parsed_csv(response)
    assert tuple(header) == EXPORT_HEADERS
    assert [r[0] for r in rows] == [i["case_id"] for i in listed]
    by_id = {r[0]: dict(zip(header, r)) for r in rows}
    assert by_id["c04"] == {
        "案件编号": "c04", "阶段": "整改中", "责任专班": "环境卫生", "问题类别": "暴露垃圾",
        "来源": "12345热线", "紧急程度": "紧急", "区县": "城关区", "街道": "八廓街道", "社区": "",
        "地址": "吉日巷12号旁", "问题描述": "八廓街北侧垃圾桶满溢", "轮次": "1", "反弹次数": "0",
        "是否超时": "是", "当前时限": "2026-11-02 21:10", "立案时间": "2026-11-02 13:00",
        "更新时间": "2026-11-02 21:10", "办结时间": "", "满意度": ""}
    assert by_id["c05"]["满意度"] == "满意" and by_id["c05"]["办结时间"].startswith("2026-11-")
    assert by_id["c11"]["问题描述"] == LONG_TEXT  # the export has the whole text
    assert "王女士" not in response.text and "13800000000" not in response.text


async def test_the_xlsx_export_opens_with_the_same_rows(client):
    csv_rows = parsed_csv(await get(client, "/cases/export", order="asc"))
    response = await get(client, "/cases/export", format="xlsx", order="asc")
    assert response.status_code == 200
    assert response.headers["content-type"] == \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response.headers["content-disposition"].endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(response.content))["整改台账"]
    xlsx_rows = [["" if v is None else str(v) for v in row]
                 for row in sheet.iter_rows(values_only=True)]
    assert xlsx_rows == csv_rows and len(xlsx_rows) == 14


async def test_the_export_is_scoped_and_filtered_like_the_list(client):
    response = await get(client, "/cases/export", OFFICER, stage=["rectifying"])
    assert [r[0] for r in parsed_csv(response)[1:]] == ["c06", "c04", "c03"]
    elsewhere = Actor(id="c030", role=Role.COMMUNITY, district="林周县")
    empty = await get(client, "/cases/export", elsewhere)
    assert parsed_csv(empty) == [list(EXPORT_HEADERS)]
    refused = await get(client, "/cases/export", format="pdf")
    assert refused.status_code == 422 and refused.json()["details"]["errors"][0]["field"] \
        == "format"


# ---- streaming ----------------------------------------------------------------------------------

def bulk(crafted: Crafted, n: int) -> None:
    """n more cases, copies of c01 one minute apart, inserted in one statement."""
    with crafted.engine.connect() as conn:
        template = dict(conn.execute(select(*CaseRow.__table__.columns)
                                     .where(CaseRow.case_id == "c01")).mappings().one())
    rows = [{**template, "case_id": f"bulk-{i:05d}",
             "created_at": T0 + timedelta(days=1, minutes=i)} for i in range(n)]
    with crafted.engine.begin() as conn:
        conn.execute(insert(CaseRow), rows)


class Counted:
    def __init__(self, rows) -> None:
        self.rows, self.taken = rows, 0

    def __iter__(self):
        for row in self.rows:
            self.taken += 1
            yield row


def test_the_csv_stream_sends_before_the_query_is_read_through(fresh, catalog):
    bulk(fresh, 3000)
    counted = Counted(iter_cases(fresh.engine, CaseFilter(), SUPERVISOR))
    chunks = csv_stream(EXPORT_HEADERS, (export_row(s, catalog) for s in counted))
    first = next(chunks)
    assert first.startswith("\ufeff案件编号".encode()) and 0 < counted.taken < 3013
    lines = (first + b"".join(chunks)).decode("utf-8-sig").splitlines()
    assert counted.taken == 3013 and len(lines) == 3014


async def test_a_download_given_up_gives_its_connection_back(fresh, catalog, monkeypatch):
    bulk(fresh, 3000)
    taken = []

    def counted(*args, **kwargs):
        for case in iter_cases(*args, **kwargs):
            taken.append(case.case_id)
            yield case

    monkeypatch.setattr(supervision, "iter_cases", counted)
    response = export_cases(fresh.ledger, catalog, ExportQuery(), SUPERVISOR)
    first = await anext(response.body_iterator)
    assert first.startswith("\ufeff".encode()) and 0 < len(taken) < 3013
    assert fresh.engine.pool.checkedout() == 1
    await response.body_iterator.aclose()
    assert fresh.engine.pool.checkedout() == 0


def peak_bytes(work) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_exports_hold_a_batch_not_the_whole_set(fresh, catalog):
    """Streaming costs a fixed amount (a fetch batch, a chunk buffer; about 1 MB), the whole
    set about 1 kB a case."""
    bulk(fresh, 3000)

    def rows():
        return (export_row(s, catalog)
                for s in iter_cases(fresh.engine, CaseFilter(), SUPERVISOR))

    def drain(chunks):
        for _ in chunks:
            pass

    materialised = peak_bytes(lambda: list(rows()))
    streamed_csv = peak_bytes(lambda: drain(csv_stream(EXPORT_HEADERS, rows())))
    streamed_xlsx = peak_bytes(lambda: drain(xlsx_stream(EXPORT_HEADERS, rows(), "t")))
    assert materialised > 2_500_000
    assert streamed_csv < materialised / 2, (streamed_csv, materialised)
    assert streamed_xlsx < materialised / 2, (streamed_xlsx, materialised)


# ---- the writers on their own -------------------------------------------------------------------

def test_cells_that_spreadsheets_would_run_stay_text():
    rows = [["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "a=b", 3, None]]
    text = b"".join(csv_stream(["a", "b", "c", "d", "e", "f", "g"], rows)).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text)))[1] == [
        "'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)", "a=b", "3", ""]
    book = b"".join(xlsx_stream(["a", "b"], [["=1+1", "bell\x07 and tab\t"]], "表"))
    sheet = load_workbook(io.BytesIO(book))["表"]
    assert sheet["A2"].data_type == "s" and sheet["A2"].value == "=1+1"
    assert sheet["B2"].value == "bell and tab\t"


async def test_the_download_name_may_be_chinese():
    response = export_response("csv", "统计-2026", ["x"], iter([[1]]))
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"__-2026.csv\"; "
        "filename*=UTF-8''%E7%BB%9F%E8%AE%A1-2026.csv")
    assert [chunk async for chunk in response.body_iterator] == ["\ufeffx\r\n1\r\n".encode()]

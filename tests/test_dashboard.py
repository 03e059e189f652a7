"""The 督办看板 without a browser: signing in, the 督办 call's guards, the pages' refusals, the
dashboard's own ledger queries on SQLite and PostgreSQL, and the SVG drawing. The browser tests
(test_dashboard_browser.py) show the pages themselves."""

import asyncio
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from api.auth import mint_token
from api.dashboard import charts
from api.dashboard.labels import limit_text
from api.dashboard.pages import late_text
from config.settings import Settings
from domain.actions import Action
from domain.models import Actor
from ledger.dashboard import open_case_places, overdue_steps
from tests.api_client import HOTLINE, OFFICER, SUPERVISOR, history, open_case
from tests.dashboard_seed import seed
from tests.factories import COMMUNITY, MUNICIPAL_OFFICER
from tests.factories import SUPERVISOR as SUPERVISOR_ACTOR
from tests.test_stats import Story

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PAGE_HEADER = {"X-Bihuan-Dashboard": "1"}


def token(who: dict | Actor, **ttl) -> str:
    actor = who if isinstance(who, Actor) else Actor(**who)
    return mint_token(Settings(), actor, timedelta(**ttl) if ttl else None)


def signed_in(api, who: dict | Actor) -> None:
    api.cookies.clear()
    api.cookies.set("bihuan_dashboard", token(who))


# ---- signing in ---------------------------------------------------------------------------------

async def test_a_page_without_a_token_sends_the_browser_to_sign_in(api):
    api.cookies.clear()
    response = await api.get("/dashboard/cases?team=%E7%8E%AF%E5%A2%83%E5%8D%AB%E7%94%9F")
    assert response.status_code == 303
    assert response.headers["location"] == (
        "/dashboard/login?next=%2Fdashboard%2Fcases%3Fteam%3D%25E7%258E%25AF%25E5%25A2%2583"
        "%25E5%258D%25AB%25E7%2594%259F")
    form = await api.get(response.headers["location"])
    assert form.status_code == 200 and "登录督办看板" in form.text
    assert "script-src 'self'" in form.headers["content-security-policy"]


async def test_signing_in_keeps_the_token_in_a_strict_httponly_cookie(api):
    api.cookies.clear()
    jwt = token(SUPERVISOR)
    response = await api.post("/dashboard/login", content=f"token=Bearer+{jwt}&next=%2Fdashboard"
                              "%2Foverdue", headers=FORM)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/overdue"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"bihuan_dashboard={jwt};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
    max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))
    assert 12 * 3600 - 60 <= max_age <= 12 * 3600  # the token's own lifetime
    overdue = await api.get("/dashboard/overdue")
    assert overdue.status_code == 200 and "超时督办" in overdue.text
    assert "领导小组办公室" not in overdue.text and "督查室" in overdue.text  # who is signed in
    out = await api.post("/dashboard/logout")
    assert out.status_code == 303 and 'bihuan_dashboard=""' in out.headers["set-cookie"]


@pytest.mark.parametrize("typed, shown", [
    ("", "请输入令牌。"),
    ("not-a-jwt", "这不是有效的令牌（JWT）。"),
    (token(SUPERVISOR)[:-4] + "AAAA", "令牌签名无效。"),
    (token(SUPERVISOR, seconds=-5), "登录已过期，请重新输入令牌。"),
])
async def test_a_token_the_api_would_refuse_is_refused_in_words(api, typed, shown):
    api.cookies.clear()
    response = await api.post("/dashboard/login", data={"token": typed, "next": "/dashboard"})
    assert response.status_code == 401
    assert shown in response.text and "set-cookie" not in response.headers


async def test_sign_in_never_sends_the_browser_to_another_site(api):
    for target in ("https://evil.example/", "//evil.example/", "/dashboard\\@evil", "/docs"):
        api.cookies.clear()
        response = await api.post("/dashboard/login",
                                  data={"token": token(SUPERVISOR), "next": target})
        assert response.headers["location"] == "/dashboard", target


async def test_an_expired_cookie_is_dropped_and_the_reason_given(api):
    api.cookies.clear()
    api.cookies.set("bihuan_dashboard", token(SUPERVISOR, seconds=-5))
    response = await api.get("/dashboard/map")
    assert response.status_code == 303
    assert response.headers["location"].endswith("&reason=token_expired")
    assert 'bihuan_dashboard=""' in response.headers["set-cookie"]
    form = await api.get(response.headers["location"])
    assert "登录已过期，请重新输入令牌。" in form.text


# ---- 督办 ----------------------------------------------------------------------------------------

async def test_urge_is_taken_once_by_a_supervisor_from_the_page_only(api):
    case_id = (await open_case(api))["case_id"]
    url, body = f"/dashboard/cases/{case_id}/urge", {"note": "请今日内完成"}

    signed_in(api, SUPERVISOR)
    no_header = await api.post(url, json=body)  # what another site's form could send
    assert no_header.status_code == 403 and no_header.json()["code"] == "csrf_refused"
    empty = await api.post(url, json={"note": ""}, headers=PAGE_HEADER)
    assert empty.status_code == 422 and empty.json()["message"] == "请填写督办意见。"
    signed_in(api, OFFICER)
    officer = await api.post(url, json=body, headers=PAGE_HEADER)
    assert officer.status_code == 403 and officer.json() == {
        "code": "role_not_allowed", "message": "您的角色无权进行此操作或查看此内容。",
        "details": {}}
    api.cookies.clear()
    assert (await api.post(url, json=body, headers=PAGE_HEADER)).json()["code"] == "missing_token"

    signed_in(api, SUPERVISOR)
    key = {"Idempotency-Key": f"urge-{uuid.uuid4().hex}", **PAGE_HEADER}
    for _ in range(2):  # a double click
        sent = await api.post(url, json=body, headers=key)
        assert sent.status_code == 202, sent.text
        assert sent.json()["request_id"] == key["Idempotency-Key"]
    for _ in range(100):
        urges = [e for e in await history(api, case_id) if e["action"] == Action.URGE]
        if urges:
            break
        await asyncio.sleep(0.1)
    assert [(e["actor"]["id"], e["actor"]["role"], e["note"]) for e in urges] == \
        [("s001", "supervisor", "请今日内完成")]
    missing = await api.post("/dashboard/cases/hotline-none/urge", json=body, headers=PAGE_HEADER)
    assert missing.status_code == 404 and missing.json()["message"] == "没有这个案件。"


# ---- refusals on pages --------------------------------------------------------------------------

async def test_pages_say_in_words_what_the_api_refuses(api):
    signed_in(api, HOTLINE)
    overview = await api.get("/dashboard")  # the hotline is not assessed: no statistics
    assert overview.status_code == 403
    assert "您的角色无权进行此操作或查看此内容。" in overview.text
    signed_in(api, SUPERVISOR)
    bad = await api.get("/dashboard/cases?created_from=2026-02-30&overdue=maybe")
    assert bad.status_code == 422
    assert "筛选条件有误：当前超时、立案日期从。" in bad.text
    missing = await api.get("/dashboard/cases/hotline-none")
    assert missing.status_code == 404 and "没有这个案件。" in missing.text
    case_id = (await open_case(api))["case_id"]  # 暴露垃圾: 环境卫生's
    signed_in(api, MUNICIPAL_OFFICER)
    other_team = await api.get(f"/dashboard/cases/{case_id}")
    assert other_team.status_code == 403 and "该案件不属于您所在的专班。" in other_team.text
    signed_in(api, SUPERVISOR)
    dates = await api.get("/dashboard/whistles?from=2026-12-01&to=2026-11-01")
    assert dates.status_code == 422 and "结束在开始之后" in dates.text


# ---- the dashboard's own queries ----------------------------------------------------------------

def test_overdue_steps_oldest_first_and_places_within_scope(any_ledger, catalog):
    now = datetime.now(timezone.utc)
    seed(any_ledger, catalog, now, ["https://img.example.cn/a.jpg"])
    placed = Story(any_ledger, catalog, "hotline-P1", now - timedelta(hours=1), street="吉日街道")
    placed.state.location = placed.state.location.model_copy(update={"lat": 29.65, "lng": 91.13})
    placed.act(5, "accept", OFFICER_ACTOR)

    board = overdue_steps(any_ledger.engine, SUPERVISOR_ACTOR)
    assert [(s.case_id, s.step) for s in board.items] == [
        ("hotline-D9", "rectify"), ("hotline-D1", "accept"), ("hotline-D2", "rectify")]
    assert board.total == 3 and board.items[0].due_at < board.items[1].due_at
    assert [s.case_id for s in overdue_steps(any_ledger.engine, MUNICIPAL_OFFICER).items] == \
        ["hotline-D9", "hotline-D2"]  # a team head: their team's only
    shortened = overdue_steps(any_ledger.engine, SUPERVISOR_ACTOR, limit=1)
    assert shortened.total == 3 and [s.case_id for s in shortened.items] == ["hotline-D9"]

    places = {p.case_id: p for p in open_case_places(any_ledger.engine, SUPERVISOR_ACTOR)}
    assert "hotline-D6" not in places and "hotline-D4" not in places  # closed, invalid
    assert (places["hotline-P1"].lat, places["hotline-P1"].lng) == (29.65, 91.13)
    assert places["hotline-D1"].lat is None and places["hotline-D2"].overdue
    # Community staff of 八廓街道: only their street's cases.
    assert {p.street for p in open_case_places(any_ledger.engine, COMMUNITY)} == {"八廓街道"}


OFFICER_ACTOR = Actor(**OFFICER)


# ---- drawing ------------------------------------------------------------------------------------

def test_the_map_fits_the_points_and_keeps_them_inside_the_picture():
    points = [charts.MapPoint(case_id=f"c{i}", lat=lat, lng=lng, label=f"c{i}", overdue=i == 0,
                              href=f"/dashboard/cases/c{i}")
              for i, (lat, lng) in enumerate([(29.65, 91.13), (29.66, 91.17), (29.64, 90.99)])]
    svg = str(charts.case_map(points, width=900, height=560))
    circles = [(float(x), float(y)) for x, y in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"',
                                                          svg)]
    assert len(circles) == 3
    assert all(30 <= x <= 870 and 30 <= y <= 530 for x, y in circles)
    by_id = dict(zip(re.findall(r'data-case-id="(c\d)"', svg), circles))
    assert by_id["c2"][0] < by_id["c0"][0] < by_id["c1"][0]  # west to east
    assert by_id["c1"][1] < by_id["c0"][1] < by_id["c2"][1]  # north is up
    assert svg.index('data-case-id="c0"') > svg.index('data-case-id="c2"')  # overdue on top
    assert 'class="pin overdue"' in svg
    one = str(charts.case_map(points[:1]))  # a single point still gets a view around it
    assert "°N" in one and "°E" in one
    assert charts.in_lhasa(29.65, 91.13) and not charts.in_lhasa(39.9, 116.4)


def test_the_trend_line_breaks_where_a_week_has_nothing_to_rate():
    weeks = [charts.WeekPoint("11/02", 3, 1, 0.5), charts.WeekPoint("11/09", 2, 2, 1.0),
             charts.WeekPoint("11/16", 0, 0, None), charts.WeekPoint("11/23", 4, 1, 0.25)]
    svg = str(charts.trend_chart(weeks))
    assert svg.count('class="rate-line"') == 1 and svg.count('class="rate-dot"') == 3
    assert svg.count('class="bar-found"') == 4 and "11/23 按时办结率 25.0%" in svg


def test_lateness_reads_in_days_hours_and_minutes():
    assert late_text(timedelta(days=2, hours=3, minutes=5)) == "2天3小时"
    assert late_text(timedelta(hours=5, minutes=31)) == "5小时31分"
    assert late_text(timedelta(seconds=59)) == "0分钟"
    assert late_text(timedelta(seconds=-30)) == "0分钟"
    assert [limit_text(x) for x in ("4wh", "3wd", "2h", "30d", "30m")] == [
        "4个工作小时", "3个工作日", "2小时", "30天", "30分钟"]


def test_workflow_links_follow_the_configured_temporal_ui():
    assert Settings(temporal_ui_base_url="https://temporal.lasa.example/").temporal_ui_url == \
        "https://temporal.lasa.example/namespaces/bihuan/workflows"
    assert Settings(temporal_address="10.0.0.5:7233", temporal_ui_port=8300).temporal_ui_url == \
        "http://10.0.0.5:8300/namespaces/bihuan/workflows"


async def test_what_people_typed_is_shown_as_text_never_run(api):
    typed = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    case_id = (await open_case(api, description=typed))["case_id"]
    signed_in(api, SUPERVISOR)
    for page in (f"/dashboard/cases/{case_id}", "/dashboard/cases?q=onerror"):
        shown = (await api.get(page)).text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in shown, page
        assert "<script>alert" not in shown and "<img src=x" not in shown

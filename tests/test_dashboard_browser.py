"""The 督办看板 in a real browser: Debian's chromium driven by Playwright, against the real API
served by uvicorn over the Temporal dev server and a worker, on a seeded SQLite ledger.

Every page is screenshotted into test-artifacts/dashboard/ and must log no console error."""

import asyncio
import re
import shutil
import threading
import uuid
import zlib
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from struct import pack

import httpx
import pytest

from api.auth import mint_token
from api.main import create_app
from api.service import CaseService
from config.catalog import DEFAULT_CONFIG_DIR, load_catalog
from config.settings import Settings
from domain.calendar import LHASA
from domain.models import Actor
from domain.roles import Role
from runtime.worker import build_worker
from tests.api_client import HOTLINE, free_port, new_case, served
from tests.browser import ARTIFACTS, chromium_path, playwright_api
from tests.conftest import sqlite_ledger
from tests.dashboard_seed import seed
from tests.factories import SUPERVISOR, bearer

DISTRICT_LEADER = Actor(id="c100", name="堆龙区领导", role=Role.COMMUNITY, district="堆龙德庆区")
TEAM_HEAD = Actor(id="o100", name="市政专班负责人", role=Role.OFFICER, team="市政设施")
# Live cases, opened through the API: each with coordinates in Lhasa.
LIVE = {
    # 特急 井盖: signing for it is due in one minute in this test's configuration.
    "late": dict(category="manhole_cover", urgency="emergency",
                 location={"district": "城关区", "street": "八廓街道", "address": "八廓北街3号",
                           "lat": 29.6531, "lng": 91.1330}),
    "garbage": dict(location={"district": "城关区", "street": "吉日街道", "address": "吉日巷8号",
                              "lat": 29.6562, "lng": 91.1248}),
    "light": dict(category="路灯不亮",
                  location={"district": "堆龙德庆区", "street": "东嘎街道",
                            "address": "东嘎路口", "lat": 29.6472, "lng": 90.9931}),
}


def _png(width: int = 8, height: int = 6) -> bytes:
    """A small solid PNG: the photo every piece of evidence points at."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return pack(">I", len(data)) + kind + data + pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes((60, 140, 90)) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class _Photos(BaseHTTPRequestHandler):
    body = _png()

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture(scope="module")
def photo_server():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Photos)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def fast_config(tmp_path_factory):
    """The shipped configuration, but an emergency 井盖 case must be signed for in a minute."""
    directory = tmp_path_factory.mktemp("config")
    shutil.copytree(DEFAULT_CONFIG_DIR, directory, dirs_exist_ok=True)
    categories = directory / "categories.yaml"
    text = categories.read_text()
    manhole = text.index("code: manhole_cover")
    emergency = text.index("emergency: {accept: 1h", manhole)
    categories.write_text(text[:emergency] + "emergency: {accept: 1m" +
                          text[emergency + len("emergency: {accept: 1h"):])
    return directory


@pytest.fixture(scope="module")
async def site(dev_env, executor, fast_config, photo_server, tmp_path_factory):
    """The API on a real port; returns its URL, the settings and the seeded case ids."""
    catalog = load_catalog(fast_config)
    ledger = sqlite_ledger(tmp_path_factory.mktemp("dashboard"))
    seeded = seed(ledger, catalog, datetime.now(timezone.utc),
                  [f"{photo_server}/before.png", f"{photo_server}/after.png"])
    settings = Settings(task_queue=f"dashboard-{uuid.uuid4().hex[:8]}", config_dir=fast_config,
                        action_timeout_seconds=10)
    app = create_app(settings, CaseService(dev_env.client, ledger, catalog, settings))
    async with build_worker(dev_env.client, settings.task_queue, ledger, executor):
        async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=20) as api:
            live = {}
            for name, fields in LIVE.items():
                response = await api.post("/cases", json=new_case(**fields),
                                          headers=bearer(HOTLINE))
                assert response.status_code == 201, response.text
                live[name] = response.json()["case_id"]
            yield {"base": base, "settings": settings, "api": api, "live": live,
                   "live_opened": datetime.now(timezone.utc), **seeded}


@pytest.fixture(scope="module")
async def browser():
    async_playwright = playwright_api()
    executable = chromium_path()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable)
        yield browser
        await browser.close()


class Visit:
    """One signed-in browser context, noting every console error, page error and failed load."""

    def __init__(self, context, page) -> None:
        self.context, self.page, self.errors = context, page, []
        page.on("console", lambda m: self.errors.append(f"console: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        # A load cut short by leaving the page (ERR_ABORTED) is the browser's business.
        page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url} {r.failure}")
                if "ERR_ABORTED" not in (r.failure or "") else None)

    async def shot(self, name: str) -> None:
        await self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        assert not self.errors, self.errors


async def visit(browser, site, who: Actor | None = SUPERVISOR, width=1366, height=768) -> Visit:
    context = await browser.new_context(viewport={"width": width, "height": height},
                                        locale="zh-CN", base_url=site["base"])
    v = Visit(context, await context.new_page())
    if who is not None:
        await sign_in(v.page, token(site, who))
    return v


def token(site, who: Actor) -> str:
    return mint_token(site["settings"], who)


async def sign_in(page, jwt: str, target: str = "/dashboard") -> None:
    await page.goto(target)
    await page.wait_for_url(re.compile(r"/dashboard/login"))
    await page.fill("#token", jwt)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url(re.compile(re.escape(target) + r"$"))


async def api_json(site, path: str, who: Actor = SUPERVISOR, **params) -> dict:
    response = await site["api"].get(path, params=params, headers=bearer(who, site["settings"]))
    assert response.status_code == 200, response.text
    return response.json()


def lhasa_day(offset: int = 0) -> str:
    return (datetime.now(LHASA).date() + timedelta(days=offset)).isoformat()


def percent(rate: dict) -> str:
    return "—" if rate["value"] is None else f"{rate['value']:.1%}"


# ---- the tests ----------------------------------------------------------------------------------

async def test_signing_in_with_a_bad_token_says_why_and_a_good_one_opens_the_overview(
        browser, site):
    v = await visit(browser, site, who=None)
    page = v.page
    await page.goto("/dashboard/overdue")
    await page.wait_for_url(re.compile(r"/dashboard/login\?next=%2Fdashboard%2Foverdue"))
    await page.fill("#token", "not-a-token")
    await page.click("#login-form button[type=submit]")
    assert await page.text_content("#login-error") == "这不是有效的令牌（JWT）。"
    # Chromium reports the page's 401 as a console error; that one is the point of this step.
    v.errors.clear()
    await v.shot("login-refused")
    await page.fill("#token", token(site, SUPERVISOR))
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url(re.compile(r"/dashboard/overdue$"))
    cookie = next(c for c in await v.context.cookies() if c["name"] == "bihuan_dashboard")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert await page.evaluate("document.cookie") == ""  # out of reach of scripts
    await page.click("header form button")  # 退出
    await page.wait_for_url(re.compile(r"/dashboard/login$"))
    await page.goto("/dashboard")
    await page.wait_for_url(re.compile(r"/dashboard/login"))
    await v.shot("login")
    await v.context.close()


async def test_overview_figures_are_those_of_the_stats_api(browser, site):
    for width, height in ((1366, 768), (1920, 1080)):
        v = await visit(browser, site, width=width, height=height)
        page = v.page
        spans = {"today": (lhasa_day(), lhasa_day(1))}
        today = datetime.now(LHASA).date()
        first = today.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        spans["month"] = (first.isoformat(), following.isoformat())
        for key, (start, end) in spans.items():
            row = (await api_json(site, "/stats", **{"from": start, "to": end}))["rows"][0]
            box = page.locator(f"[data-period={key}]")
            for name in ("found", "open", "closed"):
                shown = await box.locator(f"[data-figure={name}] .count-value").text_content()
                assert int(shown) == row[name]["value"], (key, name)
            created = {"created_from": f"{start}T00:00:00+08:00",
                       "created_to": f"{end}T00:00:00+08:00"}
            for name, flag in (("overdue", "overdue"), ("rebounded", "rebounded")):
                total = (await api_json(site, "/cases", limit=1, **{flag: "true"},
                                        **created))["total"]
                shown = await box.locator(f"[data-figure={name}] .count-value").text_content()
                assert int(shown) == total, (key, name)
            for name in ("accepted_on_time_rate", "resolved_rate", "satisfaction_rate",
                         "rectified_on_time_rate", "rebound_rate"):
                rate = row[name]
                cell = box.locator(f"[data-rate={name}] td").first
                assert (await cell.text_content()).split() == [
                    percent(rate), f"({rate['numerator']}/{rate['denominator']})"], (key, name)
        # The seeded month has cases, so these are not all zeros by construction.
        assert int(await page.locator("[data-period=month] [data-figure=found] .count-value")
                   .text_content()) >= 0
        # Every figure carries its definition for the hover.
        hint = page.locator("[data-period=month] [data-rate=resolved_rate] .hint")
        assert await hint.get_attribute("title") == "首次现场核查即通过的案件 ÷ 至少核查过一次的案件"
        await hint.hover()
        tip = await page.evaluate(
            "getComputedStyle(document.querySelector('[data-period=month] "
            "[data-rate=resolved_rate] .hint'), '::after').content")
        assert "首次现场核查" in tip
        # Twelve weeks of trend, a ranking of teams and one of streets, as /stats gives them.
        assert await page.locator("#trend svg text.axis").count() >= 12
        recent = {"from": lhasa_day(-29), "to": lhasa_day(1)}
        for group_by in ("team", "street"):
            rows = (await api_json(site, "/stats", group_by=group_by, **recent))["rows"]
            ranked = page.locator(f"[data-ranking={group_by}] tbody tr")
            shown = [((await r.locator("td").nth(1).text_content()),
                      (await r.locator(".rate-value").text_content()))
                     for r in await ranked.all()]
            assert sorted(shown) == sorted((r["group_label"], percent(r["rectified_on_time_rate"]))
                                           for r in rows)
            # Best 按时办结率 first; groups with nothing to rate last.
            values = [r["rectified_on_time_rate"]["value"] for r in rows]
            by_label = {r["group_label"]: r["rectified_on_time_rate"]["value"] for r in rows}
            order = [by_label[label] for label, _ in shown]
            rated = [v for v in order if v is not None]
            assert rated == sorted(rated, reverse=True) and len(rated) == len(
                [v for v in values if v is not None])
            assert order[len(rated):] == [None] * (len(order) - len(rated))
        await v.shot(f"overview-{width}")
        await v.context.close()


async def test_case_list_filters_as_the_api_does(browser, site):
    v = await visit(browser, site)
    page = v.page
    await page.goto("/dashboard/cases")
    everything = (await api_json(site, "/cases", limit=1))["total"]
    assert await page.text_content("#total") == f"共 {everything} 件"
    await page.select_option("select[name=team]", "市政设施")
    await page.check("input[name=stage][value=rectifying]")
    await page.check("input[name=stage][value=assigned]")
    await page.click("#filters button[type=submit]")
    await page.wait_for_url(re.compile(r"team=%E5%B8%82%E6%94%BF%E8%AE%BE%E6%96%BD"))
    wanted = await api_json(site, "/cases", team="市政设施", stage=["rectifying", "assigned"])
    assert wanted["total"] >= 2  # the seeded 堆龙 light and the live 井盖 at least
    assert await page.text_content("#total") == f"共 {wanted['total']} 件"
    rows = page.locator("#case-table tbody tr")
    assert [await r.get_attribute("data-case-id") for r in await rows.all()] == \
        [c["case_id"] for c in wanted["items"]]
    for cell in await page.locator("#case-table tbody tr td:nth-child(3)").all_text_contents():
        assert cell == "市政设施"
    assert await page.is_checked("input[name=stage][value=rectifying]")  # the form remembers
    # A text search and an overdue filter together.
    await page.goto("/dashboard/cases?overdue=true&sort=deadline&order=asc")
    overdue = await api_json(site, "/cases", overdue="true", sort="deadline", order="asc")
    assert [await r.get_attribute("data-case-id")
            for r in await page.locator("#case-table tbody tr").all()] == \
        [c["case_id"] for c in overdue["items"]]
    await page.goto("/dashboard/cases?team=%E5%B8%82%E6%94%BF%E8%AE%BE%E6%96%BD&stage=rectifying"
                    "&stage=assigned")
    await v.shot("cases")
    # A filter the API refuses is shown as such, not as an empty list.
    await page.goto("/dashboard/cases?created_from=2026-13-40")
    assert await page.text_content("[role=alert]") == "筛选条件有误：立案日期从。"
    v.errors.clear()  # the 422 itself
    await v.context.close()


async def test_case_page_shows_every_step_photos_deadline_and_whistles(browser, site):
    v = await visit(browser, site)
    page = v.page
    await page.goto("/dashboard/cases?q=%E5%90%89%E6%97%A5%E5%B7%B7")  # 吉日巷
    await page.click(f"a[href='/dashboard/cases/{site['photos']}']")
    await page.wait_for_url(re.compile(re.escape(site["photos"]) + "$"))
    history = (await api_json(site, f"/cases/{site['photos']}/history"))["events"]
    items = page.locator("#timeline li")
    assert await items.count() == len(history)
    assert [await i.get_attribute("data-action") for i in await items.all()] == \
        [e["action"] for e in history]
    submitted = page.locator("#timeline li[data-action=submit_rectification]")
    assert "扎西（专班人员 · 环境卫生）" in await submitted.text_content()
    assert await page.text_content("#timeline li[data-action=verify] [data-outcome]") == "核查通过"
    assert await page.text_content("#timeline li[data-action=evaluate] [data-outcome]") == \
        "评价：满意"
    assert "整改中 → 待核查" in await submitted.text_content()
    assert "已清运垃圾约2吨并消杀" in await submitted.text_content()
    thumbs = submitted.locator("img.thumb")
    assert await thumbs.count() == 2
    for thumb in await thumbs.all():
        assert await thumb.evaluate("img => img.complete && img.naturalWidth") == 8
    assert "回头看" in await page.text_content("#deadline")
    link = await page.get_attribute("#temporal-link", "href")
    assert link == f"{site['settings'].temporal_ui_url}/{site['photos']}"
    await v.shot("case-timeline")

    await page.goto(f"/dashboard/cases/{site['whistled']}")
    whistle = (await api_json(site, f"/cases/{site['whistled']}/whistles"))["whistles"][0]
    for summons in whistle["summons"]:
        row = page.locator(f"#whistles tr[data-department='{summons['department']}']")
        reported = datetime.fromisoformat(summons["reported_at"]).astimezone(LHASA)
        assert await row.locator("[data-reported]").text_content() == \
            reported.strftime("%Y-%m-%d %H:%M")
    assert "迟到" in await page.locator("#whistles tr[data-department='国网拉萨供电公司']") \
        .text_content()
    assert "整改：" in await page.text_content("#deadline")
    assert "时限 1天" in await page.text_content("#deadline")  # 路灯不亮, 紧急
    assert "已超时" in await page.text_content("#deadline")
    await v.shot("case-whistle")
    await v.context.close()


async def test_whistle_board_and_map(browser, site):
    v = await visit(browser, site)
    page = v.page
    await page.goto("/dashboard/whistles")
    rows = (await api_json(site, "/stats/whistles", **{"from": lhasa_day(-29),
                                                        "to": lhasa_day(1)}))["rows"]
    assert rows
    shown = page.locator("#whistle-table tbody tr")
    assert await shown.count() == len(rows)
    for row in rows:
        cells = await page.locator(f"#whistle-table tr[data-department='{row['department']}'] td") \
            .all_text_contents()
        assert [int(c) for c in cells[4:9]] == [row[n]["value"] for n in (
            "summoned", "reported_on_time", "reported_late", "not_reported", "parts_done")]
    # 住建 reported in on time, 供电 late: the punctual one ranks first.
    departments = [await r.get_attribute("data-department") for r in await shown.all()]
    assert departments.index("拉萨市住房和城乡建设局") < departments.index("国网拉萨供电公司")
    await v.shot("whistles")

    await page.goto("/dashboard/map")
    pins = {await p.get_attribute("data-case-id") for p in await page.locator("#map a").all()}
    assert pins == set(site["live"].values())
    # The seeded cases have no coordinates: grouped by district, the closed one left out.
    grouped = await page.text_content("#without-coordinates")
    assert site["oldest_overdue"] in grouped and site["whistled"] in grouped
    assert site["closed"] not in grouped
    await page.click(f"#map a[data-case-id='{site['live']['light']}']")
    await page.wait_for_url(re.compile(re.escape(site["live"]["light"]) + "$"))
    await page.go_back()
    await v.shot("map")
    await v.context.close()


async def test_each_leader_sees_what_the_api_lets_them_see(browser, site):
    for who, column, value in ((DISTRICT_LEADER, 5, "堆龙德庆区"), (TEAM_HEAD, 3, "市政设施")):
        v = await visit(browser, site, who=who)
        page = v.page
        await page.goto("/dashboard/cases")
        theirs = await api_json(site, "/cases", who=who)
        assert await page.text_content("#total") == f"共 {theirs['total']} 件"
        cells = await page.locator(f"#case-table tbody td:nth-child({column})").all_text_contents()
        assert cells and all(c.startswith(value) for c in cells)
        found = (await api_json(site, "/stats", who=who, **{"from": lhasa_day(-29),
                                                            "to": lhasa_day(1)}))["rows"][0]
        assert found["found"]["value"] < (await api_json(
            site, "/stats", **{"from": lhasa_day(-29), "to": lhasa_day(1)}))["rows"][0][
                "found"]["value"]
        await v.shot(f"cases-{who.role.value}")
        # Whistle punctuality is for supervisors and departments: said, not shown empty.
        await page.goto("/dashboard/whistles")
        assert await page.text_content("[role=alert]") == "您的角色无权进行此操作或查看此内容。"
        v.errors.clear()  # the 403 itself
        await v.shot(f"whistles-refused-{who.role.value}")
        await page.goto("/dashboard/overdue")
        assert await page.locator("[data-urge-open]").count() == 0  # only supervisors urge
        await v.context.close()


async def test_urging_an_overdue_step_is_recorded_with_its_supervisor(browser, site):
    late = site["live"]["late"]
    v = await visit(browser, site)
    page = v.page
    # The live 井盖 case's one-minute 签收 limit runs out on the real server's clock.
    deadline = site["live_opened"] + timedelta(seconds=150)
    while True:
        await page.goto("/dashboard/overdue")
        if await page.locator(f"#overdue-table tr[data-case-id='{late}']").count():
            break
        assert datetime.now(timezone.utc) < deadline, "the live case never became overdue"
        await asyncio.sleep(3)
    board = (await api_json(site, "/cases", overdue="true", limit=200))["items"]
    rows = page.locator("#overdue-table tbody tr")
    ids = [await r.get_attribute("data-case-id") for r in await rows.all()]
    assert set(ids) == {c["case_id"] for c in board}
    assert ids[0] == site["oldest_overdue"] and ids[-1] == late  # oldest first
    dues = [await r.get_attribute("data-due") for r in await rows.all()]
    assert dues == sorted(dues)
    row = page.locator(f"#overdue-table tr[data-case-id='{late}']")
    assert "签收" in await row.text_content() and "市政设施" in await row.text_content()
    assert "八廓街道" in await row.text_content()
    assert re.fullmatch(r"\d+分钟", await row.locator("[data-late]").text_content())
    await row.locator("[data-urge-open]").click()
    await row.locator("input[name=note]").fill("请立即签收并处置井盖")
    await row.locator("[data-urge-form] button[type=submit]").click()
    await row.locator(".urge-status.done").wait_for()
    assert await row.locator(".urge-status").text_content() == "督办已发送，将记入案件办理过程。"
    await v.shot("overdue")

    await page.goto(f"/dashboard/cases/{late}")
    urge = page.locator("#timeline li[data-action=urge]")
    for _ in range(50):
        if await urge.count():
            break
        await asyncio.sleep(0.2)
        await page.reload()
    assert await urge.count() == 1
    assert "领导小组办公室（督办）" in await urge.text_content()
    assert "请立即签收并处置井盖" in await urge.text_content()
    events = (await api_json(site, f"/cases/{late}/history"))["events"]
    urges = [e for e in events if e["action"] == "urge"]
    assert [(e["actor"]["id"], e["note"]) for e in urges] == [("s001", "请立即签收并处置井盖")]
    # 督办 from the case page too, and the page shows it once the workflow has it.
    await page.locator("#deadline [data-urge-open]").click()
    await page.locator("#deadline [data-urge-form] button[type=submit]").click()
    await page.locator("#deadline .urge-status.done").wait_for()
    for _ in range(50):
        await page.wait_for_load_state()
        if await urge.count() == 2:
            break
        await asyncio.sleep(0.3)
    assert await urge.count() == 2
    await v.shot("case-urged")
    await v.context.close()

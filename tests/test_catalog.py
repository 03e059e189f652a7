import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from config.catalog import (
    DEFAULT_CONFIG_DIR,
    URGENCIES,
    URGENCY_LABELS,
    Catalog,
    ConfigError,
    Limit,
    StepLimits,
    load_catalog,
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(DEFAULT_CONFIG_DIR)


# ── the shipped data ─────────────────────────────────────────────────────────────────────────


def test_shipped_data_has_the_eight_teams(catalog):
    assert len(catalog.teams) == 8
    assert set(catalog.teams) == {"市政设施", "道路交通", "环境卫生", "安全生产", "城乡绿化", "规范市场", "遗留问题", "城乡风貌"}


def test_shipped_data_has_enough_categories_for_every_team(catalog):
    assert len(catalog.categories) >= 24
    for team in catalog.teams:
        assert any(c.team == team for c in catalog.categories.values()), team


def test_every_reference_resolves(catalog):
    for team in catalog.teams.values():
        assert team.lead_department in catalog.departments
        assert all(d in catalog.departments for d in team.departments)
    for c in catalog.categories.values():
        assert c.team in catalog.teams
        assert c.departments and all(d in catalog.departments for d in c.departments)
        assert set(c.time_limits) == set(URGENCIES)
        assert 1 <= c.recheck_interval_days <= 365


def test_urgencies_have_chinese_labels():
    assert URGENCIES == ("normal", "urgent", "emergency")
    assert URGENCY_LABELS == {"normal": "一般", "urgent": "紧急", "emergency": "特急"}


def test_shipped_limits_match_the_documented_exposed_garbage_example(catalog):
    limits = catalog.category("exposed_garbage").time_limits
    assert {k: str(v) for k, v in limits["normal"]} == {
        "accept": "2wh", "rectify": "1wd", "verify": "1wd", "review": "2wd", "recheck": "3wd"
    }
    assert str(limits["urgent"].accept) == "1h" and str(limits["urgent"].rectify) == "8h"
    assert catalog.category("exposed_garbage").recheck_interval_days == 14
    assert catalog.category("illegal_construction").recheck_interval_days == 60
    assert catalog.category("street_light_out").recheck_interval_days == 30


def test_general_settings(catalog):
    assert catalog.evaluation_window_days == 7
    assert catalog.reminder_share == 0.8


def test_whistle_kinds(catalog):
    assert {code: (k.name, str(k.report_in)) for code, k in catalog.whistle_kinds.items()} == {
        "emergency": ("应急哨", "30m"), "tough": ("攻坚哨", "2h"), "routine": ("日常哨", "24h")
    }
    assert not any(k.report_in.working for k in catalog.whistle_kinds.values())


def test_shipped_calendar_covers_2026_and_2027(catalog):
    calendar = catalog.calendar
    assert (calendar.first_year, calendar.last_year) == (2026, 2027)
    for year in (2026, 2027):
        assert not calendar.is_working_day(date(year, 10, 1)) and not calendar.is_working_day(date(year, 1, 1))
    assert not calendar.is_working_day(date(2026, 2, 16))  # 春节
    assert not calendar.is_working_day(date(2026, 2, 25))  # Lhasa's 藏历新年 days after it
    assert calendar.is_working_day(date(2026, 10, 10))  # 调休 Saturday
    assert not calendar.is_working_day(date(2026, 8, 12))  # 雪顿节 (provisional)
    shipped = yaml.safe_load((DEFAULT_CONFIG_DIR / "calendar.yaml").read_text(encoding="utf-8"))
    assert shipped["years"][2026]["provisional"] is True and shipped["years"][2027]["provisional"] is True
    names = {h["name"] for y in shipped["years"].values() for h in y["holidays"]}
    assert {"元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节", "藏历新年", "西藏百万农奴解放纪念日",
            "雪顿节"} == names


def test_category_lookup_by_code_and_by_chinese_name(catalog):
    by_code = catalog.category("exposed_garbage")
    assert by_code is not None and by_code.name == "暴露垃圾" and by_code.team == "环境卫生"
    assert catalog.category("暴露垃圾") == by_code
    assert catalog.category("飞线乱拉").team == "城乡风貌"
    assert catalog.category("no_such_thing") is None


def test_team_lookup(catalog):
    assert catalog.team("城乡风貌").lead_department == "拉萨市城市管理和综合执法局"
    assert catalog.team("环卫") is None


def test_teams_of_department_by_full_or_short_name(catalog):
    teams = catalog.teams_of_department("拉萨市林业和草原局")
    assert "城乡绿化" in teams
    assert catalog.teams_of_department("市林草局") == teams
    assert "环境卫生" in catalog.teams_of_department("拉萨市城市管理和综合执法局")
    assert catalog.teams_of_department("不存在的局") == []


def test_catalog_survives_a_dump_and_reload(catalog):
    dumped = catalog.model_dump()
    assert dumped["categories"]["exposed_garbage"]["time_limits"]["normal"]["accept"] == "2wh"
    assert Catalog.model_validate(dumped) == catalog
    assert Catalog.model_validate_json(catalog.model_dump_json()) == catalog


# ── places ───────────────────────────────────────────────────────────────────────────────────


def test_location_known_places(catalog):
    assert catalog.location_problem("城关区", None, None) is None
    assert catalog.location_problem("城关区", "八廓街道", None) is None
    assert catalog.location_problem("城关区", "八廓街道", "冲赛康社区") is None
    assert catalog.location_problem("当雄县", "羊八井镇", None) is None


def test_location_unknown_district_street_and_community(catalog):
    assert catalog.location_problem("朝阳区", None, None) == "unknown district '朝阳区'"
    assert catalog.location_problem("堆龙德庆区", "八廓街道", None) == "unknown street '八廓街道' in district '堆龙德庆区'"
    problem = catalog.location_problem("城关区", "八廓街道", "仙足岛社区")
    assert problem == "unknown community '仙足岛社区' in street '八廓街道' of district '城关区'"


def test_location_lists_that_are_not_enumerated_accept_any_name(catalog):
    assert catalog.location_problem("城关区", "扎细街道", "任意社区") is None
    assert catalog.location_problem("拉萨经济技术开发区", "任意街道", None) is None
    assert catalog.location_problem("城关区", None, "冲赛康社区") is None


# ── time limits ──────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "text,amount,unit",
    [("30m", 30, "m"), ("2h", 2, "h"), ("30d", 30, "d"), ("4wh", 4, "wh"), ("3wd", 3, "wd"), ("60wd", 60, "wd")],
)
def test_limit_parse_and_str_round_trip(text, amount, unit):
    limit = Limit.parse(text)
    assert (limit.amount, limit.unit) == (amount, unit)
    assert str(limit) == text
    assert Limit.parse(str(limit)) == limit
    assert limit.working == unit.startswith("w")


@pytest.mark.parametrize("text", ["3x", "0h", "-1d", "", "h", "2.5h", "4 weeks", "0m", "30min"])
def test_limit_rejects_bad_text(text):
    with pytest.raises(ValueError):
        Limit.parse(text)


def test_limit_in_a_model_reads_and_writes_the_text_form():
    class Holder(BaseModel):
        limit: Limit

    held = Holder.model_validate({"limit": "4wh"})
    assert held.limit == Limit(amount=4, unit="wh")
    assert held.model_dump() == {"limit": "4wh"}
    assert held.model_dump_json() == '{"limit":"4wh"}'
    assert Holder.model_validate({"limit": {"amount": 4, "unit": "wh"}}) == held
    for bad in ("3x", "0h", 4, None):
        with pytest.raises(ValidationError):
            Holder.model_validate({"limit": bad})


def test_limits_are_immutable_and_hashable():
    limit = Limit.parse("2h")
    with pytest.raises(ValidationError):
        limit.amount = 3
    assert len({limit, Limit.parse("2h"), Limit.parse("2wh")}) == 2


def test_step_limits_need_every_step():
    with pytest.raises(ValidationError):
        StepLimits.model_validate({"accept": "1h", "rectify": "1d", "verify": "1d", "review": "1wd"})


# ── broken configurations ────────────────────────────────────────────────────────────────────


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DEFAULT_CONFIG_DIR, target)
    return target


def _edit(tmp_path: Path, file: str, change) -> Path:
    """Copies the shipped data and lets `change` alter one file's parsed content."""
    directory = _copy(tmp_path)
    path = directory / file
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return directory


def _error(directory: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_catalog(directory)
    return str(caught.value)


def test_unknown_team_in_a_category(tmp_path):
    def change(data):
        data["categories"][3]["team"] = "环卫"

    message = _error(_edit(tmp_path, "categories.yaml", change))
    assert message.startswith(str(tmp_path / "data" / "categories.yaml") + ": ")
    assert "categories[3].team" in message and "'环卫'" in message
    assert "unknown team" in message and "城乡风貌" in message


def test_missing_urgency(tmp_path):
    def change(data):
        del data["categories"][7]["time_limits"]["emergency"]

    message = _error(_edit(tmp_path, "categories.yaml", change))
    assert "categories.yaml: categories[7].time_limits: " in message
    assert "missing urgency 'emergency'" in message


def test_unknown_urgency(tmp_path):
    def change(data):
        limits = data["categories"][0]["time_limits"]
        limits["urgant"] = limits.pop("urgent")

    message = _error(_edit(tmp_path, "categories.yaml", change))
    assert "categories.yaml: categories[0].time_limits.urgant: " in message and "'urgant'" in message


@pytest.mark.parametrize("bad", ["3x", "0h", "-1d"])
def test_bad_limit_string(tmp_path, bad):
    def change(data):
        data["categories"][3]["time_limits"]["urgent"]["accept"] = bad

    message = _error(_edit(tmp_path, "categories.yaml", change))
    assert "categories.yaml: categories[3].time_limits.urgent.accept: " in message
    assert repr(bad) in message


def test_yaml_syntax_error(tmp_path):
    directory = _copy(tmp_path)
    path = directory / "teams.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.append("  - name: [破损的列表")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = _error(directory)
    assert message.startswith(str(path) + ": line ")
    assert "YAML syntax error" in message


def test_missing_file(tmp_path):
    directory = _copy(tmp_path)
    (directory / "districts.yaml").unlink()
    message = _error(directory)
    assert message == f"{directory / 'districts.yaml'}: file not found"


def test_missing_directory(tmp_path):
    message = _error(tmp_path / "nowhere")
    assert "nowhere" in message and "not found" in message


def test_duplicate_category_code(tmp_path):
    def change(data):
        data["categories"][5]["code"] = data["categories"][2]["code"]

    directory = _edit(tmp_path, "categories.yaml", change)
    duplicated = yaml.safe_load((directory / "categories.yaml").read_text(encoding="utf-8"))["categories"][2]["code"]
    message = _error(directory)
    assert "categories.yaml: categories[5].code: " in message
    assert f"duplicate category code {duplicated!r}" in message and "categories[2]" in message


def test_duplicate_category_name(tmp_path):
    def change(data):
        data["categories"][9]["name"] = "暴露垃圾"

    message = _error(_edit(tmp_path, "categories.yaml", change))
    assert "categories[" in message and ".name: duplicate category name '暴露垃圾'" in message


def test_unknown_department_in_a_team_hints_at_the_full_name(tmp_path):
    def change(data):
        data["teams"][2]["departments"][1] = "市卫健委"

    message = _error(_edit(tmp_path, "teams.yaml", change))
    assert "teams.yaml: teams[2].departments[1]: unknown department '市卫健委'" in message
    assert "拉萨市卫生健康委员会" in message


def test_unknown_department_in_a_category(tmp_path):
    def change(data):
        data["categories"][4]["departments"] = ["拉萨市城市管理和综合执法局", "环卫处"]

    message = _error(_edit(tmp_path, "categories.yaml", change))
    assert "categories.yaml: categories[4].departments[1]: unknown department '环卫处'" in message


@pytest.mark.parametrize(
    "field,value,expected",
    [
        ("recheck_interval_days", "abc", "categories[6].recheck_interval_days: "),
        ("recheck_interval_days", 400, "categories[6].recheck_interval_days: "),
        ("code", "Bad-Code", "categories[6].code: "),
        ("departments", [], "categories[6].departments: "),
        ("colour", "red", "categories[6].colour: unknown field"),
    ],
)
def test_wrong_types_and_values_in_a_category(tmp_path, field, value, expected):
    def change(data):
        data["categories"][6][field] = value

    message = _error(_edit(tmp_path, "categories.yaml", change))
    assert "categories.yaml: " + expected in message
    if value not in ([], "red"):
        assert repr(value) in message


def test_missing_field(tmp_path):
    def change(data):
        del data["categories"][1]["description"]

    message = _error(_edit(tmp_path, "categories.yaml", change))
    assert message.endswith("categories.yaml: categories[1].description: required field is missing")


def test_bad_department_kind_and_district_kind(tmp_path):
    message = _error(_edit(tmp_path, "departments.yaml", lambda d: d["departments"][0].update(kind="bureau")))
    assert "departments.yaml: departments[0].kind: " in message and "'bureau'" in message
    message = _error(_edit(tmp_path / "b", "districts.yaml", lambda d: d["districts"][1].update(kind="city")))
    assert "districts.yaml: districts[1].kind: " in message and "'city'" in message


def test_duplicate_street_in_a_district(tmp_path):
    def change(data):
        data["districts"][0]["streets"].append("八廓街道")

    message = _error(_edit(tmp_path, "districts.yaml", change))
    assert "districts.yaml: districts[0].streets[" in message
    assert "duplicate street name '八廓街道' (also at districts[0].streets[0])" in message


def test_bad_general_setting(tmp_path):
    directory = _copy(tmp_path)
    (directory / "general.yaml").write_text("evaluation_window_days: 0\n", encoding="utf-8")
    message = _error(directory)
    assert "general.yaml: evaluation_window_days: " in message and "0" in message


def test_top_level_must_be_a_mapping(tmp_path):
    directory = _copy(tmp_path)
    (directory / "teams.yaml").write_text("- 市政设施\n", encoding="utf-8")
    message = _error(directory)
    assert message == f"{directory / 'teams.yaml'}: expected a mapping at the top level, got list"


def test_empty_file_reports_the_missing_section(tmp_path):
    directory = _copy(tmp_path)
    (directory / "teams.yaml").write_text("", encoding="utf-8")
    assert _error(directory).endswith("teams.yaml: teams: required field is missing")


def test_error_carries_its_parts(tmp_path):
    directory = _edit(tmp_path, "categories.yaml", lambda d: d["categories"][3].update(team="环卫"))
    with pytest.raises(ConfigError) as caught:
        load_catalog(str(directory))
    assert caught.value.file.endswith("categories.yaml")
    assert caught.value.path == "categories[3].team"
    assert caught.value.problem.startswith("unknown team '环卫'")


# ── broken calendars and whistle kinds ───────────────────────────────────────────────────────


def _calendar_error(tmp_path: Path, change) -> str:
    message = _error(_edit(tmp_path, "calendar.yaml", change))
    assert message.startswith(str(tmp_path / "data" / "calendar.yaml") + ": ")
    return message


def _holiday(data, year: int, name: str) -> dict:
    return next(h for h in data["years"][year]["holidays"] if h["name"] == name)


def test_holiday_that_ends_before_it_starts(tmp_path):
    message = _calendar_error(tmp_path, lambda d: _holiday(d, 2026, "国庆节").update({"to": date(2026, 9, 30)}))
    assert "calendar.yaml: years[2026].holidays[" in message and "].to: " in message
    assert "holiday '国庆节' ends on 2026-09-30, before it starts on 2026-10-01" in message


def test_overlapping_holidays(tmp_path):
    message = _calendar_error(tmp_path, lambda d: _holiday(d, 2026, "春节").update({"to": date(2026, 2, 25)}))
    assert "holiday '藏历新年' overlaps '春节' (years[2026].holidays[" in message and "on 2026-02-24" in message


def test_holiday_outside_its_year(tmp_path):
    message = _calendar_error(tmp_path, lambda d: _holiday(d, 2027, "元旦").update({"from": date(2026, 12, 31)}))
    assert "years[2027].holidays[0].from: 2026-12-31 is outside its year 2027" in message


def test_make_up_day_outside_its_year(tmp_path):
    def change(data):
        data["years"][2026]["workdays"].append({"date": date(2027, 1, 9), "name": "调休上班"})

    assert "years[2026].workdays[6].date: 2027-01-09 is outside its year 2026" in _calendar_error(tmp_path, change)


def test_make_up_day_that_is_a_holiday(tmp_path):
    def change(data):
        data["years"][2026]["workdays"].append({"date": date(2026, 10, 3), "name": "国庆节调休上班"})

    message = _calendar_error(tmp_path, change)
    assert "years[2026].workdays[6].date: make-up working day 2026-10-03 is also the holiday '国庆节'" in message


def test_make_up_day_that_is_not_a_weekend_day(tmp_path):
    def change(data):
        data["years"][2026]["workdays"][0]["date"] = date(2026, 1, 5)

    message = _calendar_error(tmp_path, change)
    assert "years[2026].workdays[0].date: make-up working day 2026-01-05 is a Monday, not a weekend day" in message


def test_duplicate_make_up_day(tmp_path):
    def change(data):
        data["years"][2026]["workdays"].append(dict(data["years"][2026]["workdays"][1]))

    message = _calendar_error(tmp_path, change)
    assert "years[2026].workdays[6].date: duplicate make-up working day 2026-02-14" in message
    assert "(also at years[2026].workdays[1].date)" in message


def test_years_must_be_consecutive(tmp_path):
    def change(data):
        data["years"][2028] = data["years"].pop(2027)

    assert _calendar_error(tmp_path, change).endswith("calendar.yaml: years: years must be consecutive, 2027 is missing")


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["years"][2026]["holidays"][0].update(region="lhasa"), "years[2026].holidays[0].region: "),
    (lambda d: d["years"][2026]["holidays"][0].pop("name"), "years[2026].holidays[0].name: required field is missing"),
    (lambda d: d["years"][2026]["holidays"][0].update({"from": "2026-13-01"}), "years[2026].holidays[0].from: "),
    (lambda d: d["years"][2027].pop("provisional"), "years[2027].provisional: required field is missing"),
    (lambda d: d.update(years={}), "years: "),
    (lambda d: d.update(weekend=["sat"]), "weekend[0]: "),
    (lambda d: d.update(weekend=["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]),
     "weekend: a week needs at least one working day"),
    (lambda d: d["windows"].__setitem__(1, 930), "windows[1]: expected a working window such as '09:30-13:00'"),
    (lambda d: d["windows"].__setitem__(1, "25:00-26:00"), "windows[1][0]: "),
    (lambda d: d["windows"].__setitem__(1, "12:00-14:00"), "windows: working window 12:00-14:00 overlaps"),
    (lambda d: d["windows"].__setitem__(0, "13:00-09:30"), "windows: working window 13:00-09:30 closes before"),
])
def test_wrong_values_in_the_calendar(tmp_path, change, expected):
    assert "calendar.yaml: " + expected in _calendar_error(tmp_path, change)


def test_missing_calendar(tmp_path):
    directory = _copy(tmp_path)
    (directory / "calendar.yaml").unlink()
    assert _error(directory) == f"{directory / 'calendar.yaml'}: file not found"


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["whistle_kinds"][2].update(code="emergency"),
     "whistle_kinds[2].code: duplicate whistle kind code 'emergency' (also at whistle_kinds[0])"),
    (lambda d: d["whistle_kinds"][2].update(name="应急哨"), "whistle_kinds[2].name: duplicate whistle kind name '应急哨'"),
    (lambda d: d["whistle_kinds"][1].update(report_in="30x"), "whistle_kinds[1].report_in: invalid time limit '30x'"),
    (lambda d: d["whistle_kinds"][1].update(code="Tough"), "whistle_kinds[1].code: "),
    (lambda d: d["whistle_kinds"][0].pop("report_in"), "whistle_kinds[0].report_in: required field is missing"),
    (lambda d: d.pop("whistle_kinds"), "whistle_kinds: required field is missing"),
    (lambda d: d.update(whistle_kinds=[]), "whistle_kinds: "),
    (lambda d: d.update(reminder_share=0), "reminder_share: "),
    (lambda d: d.update(reminder_share=1), "reminder_share: "),
    (lambda d: d.update(reminder_share="soon"), "reminder_share: "),
])
def test_wrong_whistle_kinds_and_reminder_share(tmp_path, change, expected):
    assert "general.yaml: " + expected in _error(_edit(tmp_path, "general.yaml", change))

"""The domain data of a deployment: departments, the action teams, case categories with their time
limits, the places cases happen in, the kinds of whistle, and the business calendar that working
time limits follow.

It is data, not code, so that a city can rename a team or retune a limit without a release. It is
validated completely on load: a mistake in a YAML file should stop the service at start-up with a
message naming the file and field, not surface weeks later inside a running case.
"""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model
from pydantic import field_validator, model_serializer, model_validator

from domain.calendar import BusinessCalendar
from domain.models import CasePolicy

DEFAULT_CONFIG_DIR = Path(__file__).parent / "data"

Urgency = Literal["normal", "urgent", "emergency"]
URGENCIES: tuple[Urgency, ...] = ("normal", "urgent", "emergency")
URGENCY_LABELS: dict[str, str] = {"normal": "一般", "urgent": "紧急", "emergency": "特急"}


class ConfigError(Exception):
    """A deployment's configuration is unusable; the message reads `file: field.path: problem`."""

    def __init__(self, file: str | Path, path: str, problem: str) -> None:
        self.file, self.path, self.problem = str(file), path, problem
        super().__init__(f"{self.file}: {path}: {problem}" if path else f"{self.file}: {problem}")


_LIMIT_TEXT = re.compile(r"(\d+)(wh|wd|h|d|m)")


def _split_limit(text: str) -> dict[str, Any]:
    match = _LIMIT_TEXT.fullmatch(text.strip())
    if not match:
        raise ValueError(
            f"invalid time limit {text!r}: expected a whole number followed by m (minutes), "
            "h (hours), d (days), wh (working hours) or wd (working days), e.g. '4wh'"
        )
    if int(match[1]) == 0:
        raise ValueError(f"invalid time limit {text!r}: must be greater than zero")
    return {"amount": int(match[1]), "unit": match[2]}


class Limit(BaseModel, frozen=True, extra="forbid"):
    """A step's time limit. Calendar units (m, h, d) run around the clock, which is what urgent work
    needs; working units (wh, wd) follow the business calendar with its regional holidays."""

    amount: int = Field(gt=0)
    unit: Literal["m", "h", "d", "wh", "wd"]

    @classmethod
    def parse(cls, text: str) -> Limit:
        return cls(**_split_limit(text))

    @property
    def working(self) -> bool:
        return self.unit in ("wh", "wd")

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            return _split_limit(data)
        if isinstance(data, (dict, Limit)):
            return data
        raise ValueError(f"expected a time limit such as '30m', '2h', '30d', '4wh' or '3wd', got {data!r}")

    @model_serializer
    def _to_text(self) -> str:
        return str(self)


class StepLimits(BaseModel, frozen=True, extra="forbid"):
    accept: Limit  # 签收
    rectify: Limit  # 整改
    verify: Limit  # 核查
    review: Limit  # 社区复核
    recheck: Limit  # carrying out the 回头看 once it is due


class Department(BaseModel, frozen=True, extra="forbid"):
    name: str = Field(min_length=1)
    short_name: str = Field(min_length=1)
    kind: Literal["government", "utility", "district", "other"]


class Team(BaseModel, frozen=True, extra="forbid"):
    name: str = Field(min_length=1)
    lead_department: str
    departments: list[str]
    description: str


class Category(BaseModel, frozen=True, extra="forbid"):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    team: str
    departments: list[str] = Field(min_length=1)
    time_limits: dict[Urgency, StepLimits]
    recheck_interval_days: int = Field(default=30, ge=1, le=365)
    description: str

    @field_validator("time_limits")
    @classmethod
    def _every_urgency(cls, limits: dict[str, StepLimits]) -> dict[str, StepLimits]:
        missing = [u for u in URGENCIES if u not in limits]
        if missing:
            raise ValueError(f"missing urgency {missing[0]!r} (every category needs {', '.join(URGENCIES)})")
        return limits


class _Named(BaseModel, frozen=True, extra="forbid"):
    """Lets a place with nothing but a name be written as a bare string in YAML."""

    name: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data


class Community(_Named, frozen=True):
    pass


class Street(_Named, frozen=True):
    """A 街道, 镇 or 乡. An empty community list means "not enumerated", not "has none"."""

    communities: list[Community] = []


class District(BaseModel, frozen=True, extra="forbid"):
    """A 区, 县 or 园区. An empty street list means "not enumerated", not "has none"."""

    name: str = Field(min_length=1)
    kind: Literal["district", "county", "park"]
    streets: list[Street]


class WhistleKind(BaseModel, frozen=True, extra="forbid"):
    """A kind of 吹哨 and how soon each summoned department must report in (报到)."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    report_in: Limit


class Catalog(BaseModel, frozen=True):
    teams: dict[str, Team]
    departments: dict[str, Department]
    categories: dict[str, Category]
    districts: dict[str, District]
    evaluation_window_days: int = Field(default=7, ge=1)
    reminder_share: float = Field(default=0.8, gt=0, lt=1)
    whistle_kinds: dict[str, WhistleKind]
    calendar: BusinessCalendar

    def category(self, code_or_name: str) -> Category | None:
        found = self.categories.get(code_or_name)
        return found or next((c for c in self.categories.values() if c.name == code_or_name), None)

    def team(self, name: str) -> Team | None:
        return self.teams.get(name)

    def location_problem(self, district: str, street: str | None, community: str | None) -> str | None:
        d = self.districts.get(district)
        if d is None:
            return f"unknown district {district!r}"
        if not d.streets:
            return None
        if street is None:
            # Without a street the community can only be checked against the whole district.
            if community is None or any(not s.communities for s in d.streets):
                return None
            if any(community == c.name for s in d.streets for c in s.communities):
                return None
            return f"unknown community {community!r} in district {district!r}"
        s = next((s for s in d.streets if s.name == street), None)
        if s is None:
            return f"unknown street {street!r} in district {district!r}"
        if community is None or not s.communities or any(c.name == community for c in s.communities):
            return None
        return f"unknown community {community!r} in street {street!r} of district {district!r}"

    def department(self, name: str) -> Department | None:
        """By full or short name."""
        return self.departments.get(name) or next(
            (d for d in self.departments.values() if d.short_name == name), None)

    def case_policy(self, category: Category, urgency: str) -> CasePolicy:
        """The rules a case of `category` and `urgency` runs under, frozen into its workflow."""
        limits = category.time_limits[urgency]
        return CasePolicy(category=category.code, category_name=category.name,
                          team=category.team, departments=list(category.departments),
                          limits={step: str(getattr(limits, step))
                                  for step in StepLimits.model_fields},
                          recheck_interval_days=category.recheck_interval_days,
                          evaluation_window_days=self.evaluation_window_days,
                          reminder_share=self.reminder_share)

    def teams_of_department(self, department: str) -> list[str]:
        """Teams the department leads or belongs to; accepts its full or short name."""
        dept = self.department(department)
        if dept is None:
            return []
        return [t.name for t in self.teams.values() if dept.name == t.lead_department or dept.name in t.departments]


class _General(BaseModel, extra="forbid"):
    evaluation_window_days: int = Field(default=7, ge=1, le=90)
    reminder_share: float = Field(default=0.8, gt=0, lt=1)
    whistle_kinds: list[WhistleKind] = Field(min_length=1)


_Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_WEEKDAYS: tuple[str, ...] = get_args(_Weekday)
_WINDOW_TEXT = re.compile(r"(\d\d:\d\d)-(\d\d:\d\d)")


def _split_window(text: Any) -> Any:
    # Written as one "HH:MM-HH:MM" string because YAML 1.1 reads an unquoted 15:30 as the number 930.
    match = _WINDOW_TEXT.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"expected a working window such as '09:30-13:00', got {text!r}")
    return match.groups()


class _Holiday(BaseModel, frozen=True, extra="forbid"):
    name: str = Field(min_length=1)
    first: date = Field(alias="from")
    last: date = Field(alias="to")
    region: Literal["national", "tibet"]


class _Workday(BaseModel, frozen=True, extra="forbid"):
    day: date = Field(alias="date")
    name: str = Field(min_length=1)


class _CalendarYear(BaseModel, extra="forbid"):
    # True while some of the year's dates are estimates awaiting the official notices.
    provisional: bool
    holidays: list[_Holiday]
    workdays: list[_Workday] = []


class _CalendarFile(BaseModel, extra="forbid"):
    windows: list[Annotated[tuple[time, time], BeforeValidator(_split_window)]]
    weekend: list[_Weekday]
    years: dict[int, _CalendarYear] = Field(min_length=1)


def _file_model(section: str, item: type[BaseModel]) -> type[BaseModel]:
    """The shape of a data file: one top-level key holding a list of items."""
    return create_model(f"{section}_file", __config__=ConfigDict(extra="forbid"), **{section: (list[item], ...)})


def _loc_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "[key]":  # pydantic's marker for a bad dict key; the key itself precedes it
            path += f".{part}" if path else str(part)
    return path


def _problem(error: dict[str, Any]) -> str:
    if error["type"] == "missing":
        return "required field is missing"
    if error["type"] == "extra_forbidden":
        return "unknown field"
    msg = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, (str, int, float)) and repr(value) not in msg:
        msg += f", got {value!r}"
    return msg[:1].lower() + msg[1:]


def _load(path: Path, model: type[BaseModel]) -> Any:
    if not path.is_file():
        raise ConfigError(path, "", "file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(path, where, f"YAML syntax error: {getattr(exc, 'problem', None) or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "", "not UTF-8 text") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, "", f"expected a mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ConfigError(path, _loc_path(errors[0]["loc"]), _problem(errors[0]) + more) from None


def _unique(file: Path, section: str, items: list[Any], field: str, what: str) -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        key = getattr(item, field)
        if key in seen:
            problem = f"duplicate {what} {key!r} (also at {section}[{seen[key]}])"
            raise ConfigError(file, f"{section}[{i}].{field}", problem)
        seen[key] = i


def _check_department(file: Path, path: str, name: str, departments: dict[str, Department]) -> None:
    if name in departments:
        return
    full = next((d.name for d in departments.values() if d.short_name == name), None)
    if full:
        hint = f"departments are referred to by full name, did you mean {full!r}?"
    else:
        hint = f"known: {', '.join(departments)}"
    raise ConfigError(file, path, f"unknown department {name!r} ({hint})")


def _calendar(file: Path, data: _CalendarFile) -> BusinessCalendar:
    years = sorted(data.years)
    missing = sorted(set(range(years[0], years[-1] + 1)) - set(years))
    if missing:
        # A gap would silently turn that year's holidays into working days.
        raise ConfigError(file, "years", f"years must be consecutive, {missing[0]} is missing")
    weekend = {_WEEKDAYS.index(d) for d in data.weekend}
    holidays: dict[date, str] = {}  # each day off -> the entry that gives it, for messages
    workdays: dict[date, str] = {}
    for year in years:
        _days_off(file, year, data.years[year].holidays, holidays)
        _make_up_days(file, year, data.years[year].workdays, weekend, holidays, workdays)
    try:
        # Holidays on weekend days change nothing; leaving them out keeps workflow inputs small.
        days_off = tuple(d for d in holidays if d.weekday() not in weekend)
        return BusinessCalendar(windows=tuple(data.windows), weekend=tuple(weekend), holidays=days_off,
                                workdays=tuple(workdays), first_year=years[0], last_year=years[-1])
    except ValidationError as exc:  # the windows' order or a week without working days
        error = exc.errors()[0]
        raise ConfigError(file, _loc_path(error["loc"]), _problem(error)) from None


def _days_off(file: Path, year: int, entries: list[_Holiday], holidays: dict[date, str]) -> None:
    for i, h in enumerate(entries):
        path = f"years[{year}].holidays[{i}]"
        for field, day in (("from", h.first), ("to", h.last)):
            if day.year != year:
                raise ConfigError(file, f"{path}.{field}", f"{day} is outside its year {year}")
        if h.first > h.last:
            problem = f"holiday {h.name!r} ends on {h.last}, before it starts on {h.first}"
            raise ConfigError(file, f"{path}.to", problem)
        day = h.first
        while day <= h.last:
            if day in holidays:
                raise ConfigError(file, path, f"holiday {h.name!r} overlaps {holidays[day]} on {day}")
            holidays[day] = f"{h.name!r} ({path})"
            day += timedelta(days=1)


def _make_up_days(file: Path, year: int, entries: list[_Workday], weekend: set[int],
                  holidays: dict[date, str], workdays: dict[date, str]) -> None:
    for i, w in enumerate(entries):
        path, day = f"years[{year}].workdays[{i}].date", w.day
        if day.year != year:
            problem = f"{day} is outside its year {year}"
        elif day in workdays:
            problem = f"duplicate make-up working day {day} (also at {workdays[day]})"
        elif day in holidays:
            problem = f"make-up working day {day} is also the holiday {holidays[day]}"
        elif day.weekday() not in weekend:
            problem = f"make-up working day {day} is a {_WEEKDAYS[day.weekday()].capitalize()}, not a weekend day"
        else:
            workdays[day] = path
            continue
        raise ConfigError(file, path, problem)


def load_catalog(directory: str | Path = DEFAULT_CONFIG_DIR) -> Catalog:
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(root, "", "configuration directory not found")
    names = ("general", "departments", "teams", "categories", "districts", "calendar")
    files = {n: root / f"{n}.yaml" for n in names}
    general = _load(files["general"], _General)
    departments = _load(files["departments"], _file_model("departments", Department)).departments
    teams = _load(files["teams"], _file_model("teams", Team)).teams
    categories = _load(files["categories"], _file_model("categories", Category)).categories
    districts = _load(files["districts"], _file_model("districts", District)).districts
    calendar = _calendar(files["calendar"], _load(files["calendar"], _CalendarFile))

    _unique(files["departments"], "departments", departments, "name", "department name")
    _unique(files["departments"], "departments", departments, "short_name", "department short name")
    _unique(files["teams"], "teams", teams, "name", "team name")
    _unique(files["categories"], "categories", categories, "code", "category code")
    _unique(files["categories"], "categories", categories, "name", "category name")
    _unique(files["districts"], "districts", districts, "name", "district name")
    _unique(files["general"], "whistle_kinds", general.whistle_kinds, "code", "whistle kind code")
    _unique(files["general"], "whistle_kinds", general.whistle_kinds, "name", "whistle kind name")
    for i, d in enumerate(districts):
        _unique(files["districts"], f"districts[{i}].streets", d.streets, "name", "street name")
        for j, s in enumerate(d.streets):
            section = f"districts[{i}].streets[{j}].communities"
            _unique(files["districts"], section, s.communities, "name", "community name")

    by_dept = {d.name: d for d in departments}
    for i, t in enumerate(teams):
        _check_department(files["teams"], f"teams[{i}].lead_department", t.lead_department, by_dept)
        for j, name in enumerate(t.departments):
            _check_department(files["teams"], f"teams[{i}].departments[{j}]", name, by_dept)
    by_team = {t.name: t for t in teams}
    for i, c in enumerate(categories):
        if c.team not in by_team:
            problem = f"unknown team {c.team!r} (known: {', '.join(by_team)})"
            raise ConfigError(files["categories"], f"categories[{i}].team", problem)
        for j, name in enumerate(c.departments):
            _check_department(files["categories"], f"categories[{i}].departments[{j}]", name, by_dept)

    return Catalog(
        teams=by_team,
        departments=by_dept,
        categories={c.code: c for c in categories},
        districts={d.name: d for d in districts},
        evaluation_window_days=general.evaluation_window_days,
        reminder_share=general.reminder_share,
        whistle_kinds={k.code: k for k in general.whistle_kinds},
        calendar=calendar,
    )

"""The domain data of a deployment: departments, the action teams, case categories with their time
limits, and the places cases happen in.

It is data, not code, so that a city can rename a team or retune a limit without a release. It is
validated completely on load: a mistake in a YAML file should stop the service at start-up with a
message naming the file and field, not surface weeks later inside a running case.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator
from pydantic import model_serializer, model_validator

DEFAULT_CONFIG_DIR = Path(__file__).parent / "data"

Urgency = Literal["normal", "urgent", "emergency"]
URGENCIES: tuple[Urgency, ...] = ("normal", "urgent", "emergency")
URGENCY_LABELS: dict[str, str] = {"normal": "一般", "urgent": "紧急", "emergency": "特急"}


class ConfigError(Exception):
    """A deployment's configuration is unusable; the message reads `file: field.path: problem`."""

    def __init__(self, file: str | Path, path: str, problem: str) -> None:
        self.file, self.path, self.problem = str(file), path, problem
        super().__init__(f"{self.file}: {path}: {problem}" if path else f"{self.file}: {problem}")


_LIMIT_TEXT = re.compile(r"(\d+)(wh|wd|h|d)")


def _split_limit(text: str) -> dict[str, Any]:
    match = _LIMIT_TEXT.fullmatch(text.strip())
    if not match:
        raise ValueError(
            f"invalid time limit {text!r}: expected a whole number followed by h (hours), "
            "d (days), wh (working hours) or wd (working days), e.g. '4wh'"
        )
    if int(match[1]) == 0:
        raise ValueError(f"invalid time limit {text!r}: must be greater than zero")
    return {"amount": int(match[1]), "unit": match[2]}


class Limit(BaseModel, frozen=True, extra="forbid"):
    """A step's time limit. Calendar units (h, d) run around the clock, which is what urgent work
    needs; working units (wh, wd) follow the business calendar with its regional holidays."""

    amount: int = Field(gt=0)
    unit: Literal["h", "d", "wh", "wd"]

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
        raise ValueError(f"expected a time limit such as '2h', '30d', '4wh' or '3wd', got {data!r}")

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


class Catalog(BaseModel, frozen=True):
    teams: dict[str, Team]
    departments: dict[str, Department]
    categories: dict[str, Category]
    districts: dict[str, District]
    evaluation_window_days: int = Field(default=7, ge=1)

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

    def teams_of_department(self, department: str) -> list[str]:
        """Teams the department leads or belongs to; accepts its full or short name."""
        dept = self.departments.get(department) or next(
            (d for d in self.departments.values() if d.short_name == department), None
        )
        if dept is None:
            return []
        return [t.name for t in self.teams.values() if dept.name == t.lead_department or dept.name in t.departments]


class _General(BaseModel, extra="forbid"):
    evaluation_window_days: int = Field(default=7, ge=1, le=90)


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


def load_catalog(directory: str | Path = DEFAULT_CONFIG_DIR) -> Catalog:
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(root, "", "configuration directory not found")
    files = {n: root / f"{n}.yaml" for n in ("general", "departments", "teams", "categories", "districts")}
    general = _load(files["general"], _General)
    departments = _load(files["departments"], _file_model("departments", Department)).departments
    teams = _load(files["teams"], _file_model("teams", Team)).teams
    categories = _load(files["categories"], _file_model("categories", Category)).categories
    districts = _load(files["districts"], _file_model("districts", District)).districts

    _unique(files["departments"], "departments", departments, "name", "department name")
    _unique(files["departments"], "departments", departments, "short_name", "department short name")
    _unique(files["teams"], "teams", teams, "name", "team name")
    _unique(files["categories"], "categories", categories, "code", "category code")
    _unique(files["categories"], "categories", categories, "name", "category name")
    _unique(files["districts"], "districts", districts, "name", "district name")
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
    )

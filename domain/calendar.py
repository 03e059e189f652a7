"""The business calendar (工作日历) that working-time limits such as "4wh" or "3wd" follow.

A `BusinessCalendar` is plain data (office hours, weekend, holidays, make-up working days) with
pure methods, so it can travel inside workflow inputs and give the same deadlines on every
replay: no I/O and no clock reads here. The data comes from config/data/calendar.yaml.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

from pydantic import BaseModel, PrivateAttr, field_validator, model_validator

LHASA = timezone(timedelta(hours=8), "CST")  # China keeps one zone and no daylight saving
WORKING_WINDOWS = ((time(9, 30), time(13, 0)), (time(15, 30), time(18, 30)))
_LIMIT = re.compile(r"([1-9][0-9]*)(wh|wd|h|d|m)")
_CALENDAR_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_DAY = timedelta(days=1)


def parse_limit(limit: str) -> tuple[int, str]:
    match = _LIMIT.fullmatch(limit)
    if not match:
        raise ValueError(f"time limit {limit!r} is not like '4wh', '3wd', '2h', '30d' or '30m'")
    return int(match.group(1)), match.group(2)


class BusinessCalendar(BaseModel, frozen=True, extra="forbid"):
    """Working windows are Lhasa local times. Outside first_year..last_year nobody has published
    the holidays yet, so those days follow the weekday rule alone."""

    windows: tuple[tuple[time, time], ...] = WORKING_WINDOWS
    weekend: tuple[int, ...] = (5, 6)  # date.weekday() numbers: Saturday, Sunday
    holidays: tuple[date, ...] = ()  # days off that would otherwise be working days
    workdays: tuple[date, ...] = ()  # 调休: weekend days that are worked
    first_year: int | None = None
    last_year: int | None = None

    _holidays: frozenset[date] = PrivateAttr(default=frozenset())
    _workdays: frozenset[date] = PrivateAttr(default=frozenset())

    @field_validator("windows")
    @classmethod
    def _windows_in_order(cls, windows: tuple[tuple[time, time], ...]) -> tuple[tuple[time, time], ...]:
        if not windows:
            raise ValueError("at least one working window is needed")
        previous_close = None
        for opens, closes in windows:
            window = f"{opens:%H:%M}-{closes:%H:%M}"
            if opens >= closes:
                raise ValueError(f"working window {window} closes before it opens")
            if previous_close is not None and opens < previous_close:
                raise ValueError(f"working window {window} overlaps or precedes the one before")
            previous_close = closes
        return windows

    @field_validator("weekend")
    @classmethod
    def _weekend_days(cls, weekend: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 <= d <= 6 for d in weekend):
            raise ValueError("weekend days are numbered 0 (Monday) to 6 (Sunday)")
        if len(set(weekend)) == 7:
            # Beyond the covered years no day would ever be worked and a deadline never reached.
            raise ValueError("a week needs at least one working day")
        return tuple(sorted(set(weekend)))

    @field_validator("holidays", "workdays")
    @classmethod
    def _sorted_dates(cls, days: tuple[date, ...]) -> tuple[date, ...]:
        return tuple(sorted(set(days)))

    @model_validator(mode="after")
    def _consistent(self) -> BusinessCalendar:
        both = set(self.holidays) & set(self.workdays)
        if both:
            raise ValueError(f"{min(both)} is both a holiday and a make-up working day")
        if (self.first_year is None) != (self.last_year is None):
            raise ValueError("first_year and last_year go together")
        if self.first_year is not None and self.first_year > self.last_year:
            raise ValueError("first_year is after last_year")
        return self

    def model_post_init(self, context: object) -> None:
        # Sets for the day lookups; derived from the fields, so equality and JSON are unaffected.
        self._holidays = frozenset(self.holidays)
        self._workdays = frozenset(self.workdays)

    def is_working_day(self, day: date) -> bool:
        if day in self._workdays:
            return True
        return day not in self._holidays and day.weekday() not in self.weekend

    def add_limit(self, start: datetime, limit: str) -> datetime:
        """The moment a step started at `start` becomes overdue under `limit`: m/h/d run around
        the clock, wh counts working time from `start`, and Nwd ends at the close of the Nth
        working day after the day of `start`."""
        _require_aware(start)
        amount, unit = parse_limit(limit)
        if unit in _CALENDAR_UNITS:
            return start + timedelta(**{_CALENDAR_UNITS[unit]: amount})
        local = start.astimezone(LHASA)
        if unit == "wh":
            return self._after_working_time(local, timedelta(hours=amount)).astimezone(start.tzinfo)
        day = local.date()
        for _ in range(amount):
            day += _DAY
            while not self.is_working_day(day):
                day += _DAY
        return datetime.combine(day, self.windows[-1][1], LHASA).astimezone(start.tzinfo)

    def extend(self, due: datetime, limit: str) -> datetime:
        """An approved extension (延期) adds its limit to the current deadline, not to the start."""
        return self.add_limit(due, limit)

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        _require_aware(start)
        _require_aware(end)
        total = timedelta()
        if end <= start:
            return total
        start, end = start.astimezone(LHASA), end.astimezone(LHASA)
        day = start.date()
        while day <= end.date():
            for opens, closes in self._intervals(day):
                total += max(timedelta(), min(closes, end) - max(opens, start))
            day += _DAY
        return total

    def share_point(self, start: datetime, limit: str, share: float) -> datetime:
        """When `share` of the limit has elapsed (e.g. 0.8 for the 催办 reminder). Working limits
        share out working time, so the point never falls on a night, weekend or holiday."""
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share!r}")
        due = self.add_limit(start, limit)
        if share == 1:
            return due
        if parse_limit(limit)[1] in _CALENDAR_UNITS:
            return start + (due - start) * share
        elapsed = self.working_time_between(start, due) * share
        return self._after_working_time(start.astimezone(LHASA), elapsed).astimezone(start.tzinfo)

    def _intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        if not self.is_working_day(day):
            return []
        return [(datetime.combine(day, o, LHASA), datetime.combine(day, c, LHASA)) for o, c in self.windows]

    def _after_working_time(self, local: datetime, amount: timedelta) -> datetime:
        """The moment `amount` of working time after `local`. A limit used up exactly at a window's
        close ends there, not at the next opening."""
        day = local.date()
        while True:
            for opens, closes in self._intervals(day):
                begin = max(opens, local)
                if begin >= closes:
                    continue
                if closes - begin >= amount:
                    return begin + amount
                amount -= closes - begin
            day += _DAY


def local_text(moment: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A moment as people in Lhasa read it."""
    return moment.astimezone(LHASA).strftime(fmt)


def _require_aware(moment: datetime) -> None:
    # A naive time would be read in the worker's local zone, which differs between machines.
    if moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone")

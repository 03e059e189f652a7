"""Deadline arithmetic for time limits such as "4wh" (working hours) or "3wd" (working days).

Deterministic and free of I/O so workflow code can call it. The working week here is Monday to
Friday with Lhasa's office hours; public holidays and make-up days come with the business
calendar.
"""

import re
from datetime import date, datetime, time, timedelta, timezone

LHASA = timezone(timedelta(hours=8), "CST")  # China keeps one zone and no daylight saving
WORKING_WINDOWS = ((time(9, 30), time(13, 0)), (time(15, 30), time(18, 30)))
_LIMIT = re.compile(r"^([1-9][0-9]*)(wh|wd|h|d)$")


def parse_limit(limit: str) -> tuple[int, str]:
    match = _LIMIT.match(limit)
    if not match:
        raise ValueError(f"time limit {limit!r} is not like '4wh', '3wd', '2h' or '30d'")
    return int(match.group(1)), match.group(2)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5


def add_limit(start: datetime, limit: str) -> datetime:
    """The moment a step started at `start` becomes overdue under `limit`."""
    amount, unit = parse_limit(limit)
    if unit == "h":
        return start + timedelta(hours=amount)
    if unit == "d":
        return start + timedelta(days=amount)
    local = start.astimezone(LHASA)
    if unit == "wd":
        # N working days: the close of the Nth working day after the day the step started.
        day = local.date()
        while amount:
            day += timedelta(days=1)
            amount -= is_working_day(day)
        return datetime.combine(day, WORKING_WINDOWS[-1][1], LHASA).astimezone(start.tzinfo)
    remaining = timedelta(hours=amount)
    day = local.date()
    while True:
        if is_working_day(day):
            for opens, closes in WORKING_WINDOWS:
                window_start = max(datetime.combine(day, opens, LHASA), local)
                window_end = datetime.combine(day, closes, LHASA)
                if window_start >= window_end:
                    continue
                if window_end - window_start >= remaining:
                    return (window_start + remaining).astimezone(start.tzinfo)
                remaining -= window_end - window_start
        day += timedelta(days=1)

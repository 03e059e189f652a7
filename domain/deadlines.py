"""Deadline arithmetic for time limits such as "4wh" (working hours) or "3wd" (working days).

Kept for callers that predate the business calendar: without a `calendar` the week is Monday to
Friday with Lhasa's office hours and no holidays. Code that knows the deployment's calendar
should pass it, or call `BusinessCalendar.add_limit` directly.
"""

from datetime import datetime

from domain.calendar import LHASA, WORKING_WINDOWS, BusinessCalendar, parse_limit

__all__ = ["LHASA", "WORKING_WINDOWS", "parse_limit", "add_limit"]

_WEEKDAYS_ONLY = BusinessCalendar()


def add_limit(start: datetime, limit: str, calendar: BusinessCalendar | None = None) -> datetime:
    """The moment a step started at `start` becomes overdue under `limit`."""
    return (calendar or _WEEKDAYS_ONLY).add_limit(start, limit)

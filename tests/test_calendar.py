"""The business calendar: deadline arithmetic over office hours, weekends, holidays and 调休."""

import json
from datetime import date, datetime, time, timedelta, timezone

import pytest
from pydantic import ValidationError

from config.catalog import DEFAULT_CONFIG_DIR, load_catalog
from domain.calendar import LHASA, WORKING_WINDOWS, BusinessCalendar


def lhasa(*args) -> datetime:
    return datetime(*args, tzinfo=LHASA)


def days(first: str, last: str) -> list[date]:
    day, end = date.fromisoformat(first), date.fromisoformat(last)
    return [day + timedelta(n) for n in range((end - day).days + 1)]


# The State Council's published 2026 arrangement, without Lhasa's own days.
NATIONAL_2026 = BusinessCalendar(
    holidays=[*days("2026-01-01", "2026-01-03"), *days("2026-02-15", "2026-02-23"),
              *days("2026-04-04", "2026-04-06"), *days("2026-05-01", "2026-05-05"),
              *days("2026-06-19", "2026-06-21"), *days("2026-09-25", "2026-09-27"),
              *days("2026-10-01", "2026-10-07")],
    workdays=[date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9),
              date(2026, 9, 20), date(2026, 10, 10)],
    first_year=2026, last_year=2026,
)


@pytest.fixture(scope="module")
def lhasa_calendar() -> BusinessCalendar:
    return load_catalog(DEFAULT_CONFIG_DIR).calendar


# ── working days ─────────────────────────────────────────────────────────────────────────────


def test_working_days_follow_weekends_holidays_and_make_up_days():
    assert NATIONAL_2026.is_working_day(date(2026, 11, 20))          # an ordinary Friday
    assert not NATIONAL_2026.is_working_day(date(2026, 11, 21))      # Saturday
    assert not NATIONAL_2026.is_working_day(date(2026, 10, 5))       # 国庆, a Monday
    assert NATIONAL_2026.is_working_day(date(2026, 10, 10))          # Saturday worked for 国庆
    assert NATIONAL_2026.is_working_day(date(2026, 2, 14))           # Saturday worked for 春节
    assert BusinessCalendar().is_working_day(date(2026, 10, 5))      # no holidays by default


def test_shipped_calendar_has_lhasas_own_days(lhasa_calendar):
    assert (lhasa_calendar.first_year, lhasa_calendar.last_year) == (2026, 2027)
    assert lhasa_calendar.windows == WORKING_WINDOWS and lhasa_calendar.weekend == (5, 6)
    # Lhasa joined 藏历新年 to 春节: the break runs to 2/26 where the national one ends 2/23.
    assert not lhasa_calendar.is_working_day(date(2026, 2, 24))
    assert not lhasa_calendar.is_working_day(date(2026, 2, 26))
    assert lhasa_calendar.is_working_day(date(2026, 2, 27))
    assert lhasa_calendar.is_working_day(date(2026, 2, 28))
    assert NATIONAL_2026.is_working_day(date(2026, 2, 24))


def test_days_past_the_last_covered_year_follow_the_weekday_rule(lhasa_calendar):
    assert lhasa_calendar.is_working_day(date(2028, 10, 2))          # a Monday, 国庆 not yet known
    assert not lhasa_calendar.is_working_day(date(2028, 10, 7))      # a Saturday
    start = lhasa(2028, 9, 29, 17, 0)
    for limit in ("4wh", "3wd", "200wd", "2000wh"):
        assert lhasa_calendar.add_limit(start, limit) == BusinessCalendar().add_limit(start, limit)


def test_long_limits_end_on_a_working_day_after_that_many_working_days(lhasa_calendar):
    start = lhasa(2026, 1, 5, 10, 0)
    due = lhasa_calendar.add_limit(start, "200wd")
    assert due.time() == time(18, 30) and lhasa_calendar.is_working_day(due.date())
    counted = [start.date() + timedelta(n) for n in range(1, (due.date() - start.date()).days + 1)]
    assert sum(map(lhasa_calendar.is_working_day, counted)) == 200


# ── add_limit ────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("start, limit, expected", [
    # Friday 17:00: 1.5h to the close, then Monday 09:30 + 2.5h.
    (lhasa(2026, 11, 20, 17, 0), "4wh", lhasa(2026, 11, 23, 12, 0)),
    # The day before 国庆: 1.5h that evening, the rest after the whole break.
    (lhasa(2026, 9, 30, 17, 0), "4wh", lhasa(2026, 10, 8, 12, 0)),
    (lhasa(2026, 9, 30, 10, 0), "1wd", lhasa(2026, 10, 8, 18, 30)),
    # 10/10 is a Saturday worked in exchange for 国庆.
    (lhasa(2026, 10, 9, 17, 0), "4wh", lhasa(2026, 10, 10, 12, 0)),
    (lhasa(2026, 10, 9, 10, 0), "2wd", lhasa(2026, 10, 12, 18, 30)),
    # The Friday before 春节: Saturday 2/14 is worked, then nothing until 2/24.
    (lhasa(2026, 2, 13, 10, 0), "3wd", lhasa(2026, 2, 25, 18, 30)),
    # Starting outside working time: lunch break, night, early morning, a holiday.
    (lhasa(2026, 11, 23, 13, 30), "1wh", lhasa(2026, 11, 23, 16, 30)),
    (lhasa(2026, 11, 23, 22, 0), "1wh", lhasa(2026, 11, 24, 10, 30)),
    (lhasa(2026, 11, 24, 7, 0), "2wh", lhasa(2026, 11, 24, 11, 30)),
    (lhasa(2026, 10, 5, 10, 0), "2wh", lhasa(2026, 10, 8, 11, 30)),
    (lhasa(2026, 10, 5, 10, 0), "1wd", lhasa(2026, 10, 8, 18, 30)),
    # A limit used up exactly at a window's close ends there.
    (lhasa(2026, 11, 23, 9, 30), "3wh", lhasa(2026, 11, 23, 12, 30)),
    (lhasa(2026, 11, 23, 12, 0), "1wh", lhasa(2026, 11, 23, 13, 0)),
])
def test_working_limits_skip_nights_weekends_and_holidays(start, limit, expected):
    assert NATIONAL_2026.add_limit(start, limit) == expected


def test_lhasas_longer_new_year_break_moves_working_day_limits(lhasa_calendar):
    # 2/14 (make-up Saturday), then 2/27 and the make-up Saturday 2/28.
    assert lhasa_calendar.add_limit(lhasa(2026, 2, 13, 10, 0), "3wd") == lhasa(2026, 2, 28, 18, 30)


@pytest.mark.parametrize("limit, expected", [
    ("30m", lhasa(2026, 10, 1, 22, 30)),
    ("2h", lhasa(2026, 10, 2, 0, 0)),
    ("3d", lhasa(2026, 10, 4, 22, 0)),
])
def test_calendar_units_ignore_the_calendar(limit, expected):
    assert NATIONAL_2026.add_limit(lhasa(2026, 10, 1, 22, 0), limit) == expected


def test_results_keep_the_start_time_zone():
    start = lhasa(2026, 11, 20, 17, 0)
    for zone in (timezone.utc, timezone(timedelta(hours=-5)), LHASA):
        for limit in ("4wh", "2wd", "30m", "1d"):
            due = NATIONAL_2026.add_limit(start.astimezone(zone), limit)
            assert due.tzinfo is zone and due == NATIONAL_2026.add_limit(start, limit)
            assert NATIONAL_2026.share_point(start.astimezone(zone), limit, 0.8).tzinfo is zone
    assert NATIONAL_2026.add_limit(start.astimezone(timezone.utc), "4wh") == lhasa(2026, 11, 23, 12, 0)


def test_naive_times_and_bad_limits_are_refused():
    with pytest.raises(ValueError, match="time zone"):
        NATIONAL_2026.add_limit(datetime(2026, 11, 20, 17, 0), "4wh")
    for bad in ("", "4", "0h", "3x", "1.5h", "wd", "4wh\n", "30M"):
        with pytest.raises(ValueError):
            NATIONAL_2026.add_limit(lhasa(2026, 11, 20, 17, 0), bad)


def test_extend_counts_from_the_current_deadline():
    due = lhasa(2026, 9, 30, 18, 30)
    assert NATIONAL_2026.extend(due, "1wd") == lhasa(2026, 10, 8, 18, 30)
    assert NATIONAL_2026.extend(due, "2wh") == lhasa(2026, 10, 8, 11, 30)


def test_working_time_between():
    between = NATIONAL_2026.working_time_between
    assert between(lhasa(2026, 11, 20, 17, 0), lhasa(2026, 11, 23, 12, 0)) == timedelta(hours=4)
    assert between(lhasa(2026, 11, 23, 12, 0), lhasa(2026, 11, 23, 16, 0)) == timedelta(hours=1.5)
    # The working day before 国庆 and the one after it, nothing in between.
    assert between(lhasa(2026, 9, 30, 9, 30), lhasa(2026, 10, 8, 18, 30)) == timedelta(hours=13)
    assert between(lhasa(2026, 10, 3, 9, 0), lhasa(2026, 10, 4, 18, 0)) == timedelta()
    assert between(lhasa(2026, 11, 23, 12, 0), lhasa(2026, 11, 23, 11, 0)) == timedelta()
    utc = lhasa(2026, 11, 20, 17, 0).astimezone(timezone.utc)
    assert between(utc, lhasa(2026, 11, 23, 12, 0)) == timedelta(hours=4)


def test_reminder_point_of_working_hours_counts_working_time():
    # 80% of 4wh is 3h12m: 1.5h on Friday evening, 1h42m on Monday morning.
    start = lhasa(2026, 11, 20, 17, 0)
    assert NATIONAL_2026.share_point(start, "4wh", 0.8) == lhasa(2026, 11, 23, 11, 12)


def test_reminder_point_of_working_days_counts_working_time():
    # 3wd from Monday 10:00 closes Thursday 18:30: 6h + 3 × 6.5h = 25.5h; 80% is 20h24m,
    # reached 1h24m into Thursday.
    start = lhasa(2026, 11, 23, 10, 0)
    assert NATIONAL_2026.share_point(start, "3wd", 0.8) == lhasa(2026, 11, 26, 10, 54)


def test_reminder_point_never_falls_in_a_holiday():
    # 1wd from 9/30 10:00 is due 10/8 18:30 with 12.5h of working time; 80% is 10h.
    point = NATIONAL_2026.share_point(lhasa(2026, 9, 30, 10, 0), "1wd", 0.8)
    assert point == lhasa(2026, 10, 8, 16, 0)


def test_reminder_point_of_calendar_units_is_a_share_of_the_duration():
    start = lhasa(2026, 10, 1, 22, 0)
    assert NATIONAL_2026.share_point(start, "30m", 0.8) == lhasa(2026, 10, 1, 22, 24)
    assert NATIONAL_2026.share_point(start, "2h", 0.5) == lhasa(2026, 10, 1, 23, 0)
    assert NATIONAL_2026.share_point(start, "1d", 0.75) == lhasa(2026, 10, 2, 16, 0)


@pytest.mark.parametrize("limit", ["4wh", "3wd", "1wd", "200wd", "30m", "2h", "30d"])
@pytest.mark.parametrize("start", [lhasa(2026, 11, 20, 17, 0), lhasa(2026, 9, 30, 22, 0),
                                   lhasa(2026, 2, 13, 12, 0), lhasa(2026, 10, 4, 10, 0)])
def test_the_whole_share_is_the_deadline_and_points_are_in_order(start, limit):
    due = NATIONAL_2026.add_limit(start, limit)
    assert NATIONAL_2026.share_point(start, limit, 1.0) == due
    assert start < NATIONAL_2026.share_point(start, limit, 0.5) < NATIONAL_2026.share_point(start, limit, 0.8) < due


@pytest.mark.parametrize("share", [0, -0.1, 1.01])
def test_share_must_be_a_fraction(share):
    with pytest.raises(ValueError, match="share"):
        NATIONAL_2026.share_point(lhasa(2026, 11, 20, 17, 0), "4wh", share)


# ── the model ────────────────────────────────────────────────────────────────────────────────


def test_json_round_trip_keeps_dates_as_iso_strings(lhasa_calendar):
    for calendar in (BusinessCalendar(), NATIONAL_2026, lhasa_calendar):
        text = calendar.model_dump_json()
        again = BusinessCalendar.model_validate_json(text)
        assert again == calendar and hash(again) == hash(calendar)
        start = lhasa(2026, 2, 13, 10, 0)
        assert again.add_limit(start, "3wd") == calendar.add_limit(start, "3wd")
    data = json.loads(NATIONAL_2026.model_dump_json())
    assert data["holidays"][0] == "2026-01-01" and data["workdays"] == [
        "2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"]


def test_dates_are_kept_sorted_and_unique():
    calendar = BusinessCalendar(holidays=[date(2026, 10, 2), date(2026, 10, 1), date(2026, 10, 2)])
    assert calendar.holidays == (date(2026, 10, 1), date(2026, 10, 2))


def test_calendar_is_immutable():
    with pytest.raises(ValidationError):
        NATIONAL_2026.holidays = ()


@pytest.mark.parametrize("fields, problem", [
    ({"holidays": [date(2026, 10, 10)], "workdays": [date(2026, 10, 10)]}, "both a holiday"),
    ({"weekend": [0, 1, 2, 3, 4, 5, 6]}, "at least one working day"),
    ({"weekend": [7]}, "0 \\(Monday\\) to 6"),
    ({"windows": []}, "at least one working window"),
    ({"windows": [(time(13, 0), time(9, 30))]}, "closes before it opens"),
    ({"windows": [(time(9, 30), time(13, 0)), (time(12, 0), time(18, 0))]}, "overlaps"),
    ({"first_year": 2026}, "go together"),
    ({"first_year": 2027, "last_year": 2026}, "after last_year"),
    ({"holiday": [date(2026, 10, 1)]}, "Extra inputs"),
])
def test_inconsistent_calendars_are_refused(fields, problem):
    with pytest.raises(ValidationError, match=problem):
        BusinessCalendar(**fields)

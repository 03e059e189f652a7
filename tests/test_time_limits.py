"""Time limits on the business calendar: 催办 before a deadline, 超时 and 督办 when it passes,
extensions, all on the time-skipping server with the ledger and its outbox written for real."""

from datetime import date, datetime, time, timedelta

import pytest
from temporalio.client import WorkflowHandle

from domain.calendar import LHASA, BusinessCalendar
from domain.models import Urgency
from domain.stages import Stage
from tests.factories import (COMMUNITY, HOTLINE, INSPECTOR, MUNICIPAL_OFFICER, OFFICER,
                             SUPERVISOR)
from tests.workflow_steps import act, refused, sent_to, worker_fixtures
from workflows import search_attributes as sa
from workflows.case import CaseWorkflow

TASK_QUEUE = "time-limit-tests"


@pytest.fixture(scope="module")
def time_env(own_time_env):
    return own_time_env  # its clock must stay within the calendar's years


started, start = worker_fixtures(TASK_QUEUE)


async def skip_to(env, moment: datetime) -> datetime:
    now = await env.get_current_time()
    assert moment > now
    await env.sleep(moment - now)
    return await env.get_current_time()


def next_friday_before_a_normal_monday(cal: BusinessCalendar, after: datetime) -> datetime:
    """17:00 Lhasa time on the next Friday that is a working day with the next Monday one too
    and a working-free weekend between, so the expected answer is the textbook one."""
    day = after.astimezone(LHASA).date() + timedelta(days=1)
    assert day.year <= cal.last_year, "the test server's clock ran past the shipped calendar"
    while not (day.weekday() == 4 and cal.is_working_day(day)
               and cal.is_working_day(day + timedelta(days=3))
               and not any(cal.is_working_day(day + timedelta(days=d)) for d in (1, 2))):
        day += timedelta(days=1)
    return datetime.combine(day, time(17, 0), LHASA)


def at(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm), LHASA)


def near(actual: datetime, expected: datetime, within: timedelta = timedelta(seconds=1)) -> bool:
    # Skipping time lands a few milliseconds past the moment asked for.
    return abs(actual - expected) < within


def actions(ledger, handle: WorkflowHandle) -> list[str]:
    return [e.action.value for e in ledger.history(handle.id)]


async def state(handle: WorkflowHandle):
    return await handle.query(CaseWorkflow.state)


async def overdue_attribute(handle: WorkflowHandle) -> bool:
    described = await handle.describe()
    return described.typed_search_attributes.get(sa.CASE_OVERDUE)


async def test_accept_limit_set_friday_evening_reminds_and_expires_on_monday(
        start, time_env, ledger, catalog):
    friday = next_friday_before_a_normal_monday(catalog.calendar,
                                                await time_env.get_current_time())
    await skip_to(time_env, friday)
    handle = await start("street_light_out")  # 签收 4 working hours
    monday = friday.date() + timedelta(days=3)
    case = await state(handle)
    clock = case.clock
    assert (clock.step, clock.limit) == ("accept", "4wh")
    # Friday 17:00–18:30 is 1.5 h; the other 2.5 h run from Monday 09:30.
    assert near(clock.due_at, at(monday, 12, 0))
    # 80 % of 4 h = 3 h 12 min of working time: Monday 09:30 + 1 h 42 min.
    assert near(clock.remind_at, at(monday, 11, 12))

    await skip_to(time_env, at(monday, 11, 11))
    assert actions(ledger, handle) == ["open"]
    await skip_to(time_env, at(monday, 11, 13))
    assert actions(ledger, handle) == ["open", "remind"]
    reminder = ledger.history(handle.id)[-1]
    # Once seen 1.04 s late in a full run: an alarm that rings a hair before its moment finds
    # nothing due yet and is set again, for its 1 s minimum (workflows.shared.Alarm).
    assert near(reminder.occurred_at, at(monday, 11, 12), within=timedelta(seconds=2))
    assert not (await state(handle)).overdue and not await overdue_attribute(handle)

    await skip_to(time_env, at(monday, 12, 1))
    case = await state(handle)
    assert actions(ledger, handle) == ["open", "remind", "overdue"]
    assert case.overdue and case.stage == Stage.ASSIGNED
    assert await overdue_attribute(handle)
    assert ledger.case(handle.id).overdue

    # Told: the team at the reminder and at the deadline, the supervisors (督办) at the deadline.
    sent = {(n.kind, n.audience.value, n.recipient) for n in sent_to(ledger, handle)}
    assert {("reminder", "team", "市政设施"), ("overdue", "team", "市政设施"),
            ("supervision", "supervisors", None)} <= sent

    # Late, the step still completes; its lateness stays on record and the next clock is fresh.
    await act(handle, "accept", MUNICIPAL_OFFICER)
    case = await state(handle)
    accept, rectify_clock = case.steps
    assert accept.late and accept.overdue_at is not None and accept.completed_at is not None
    assert rectify_clock.step == "rectify" and not rectify_clock.overdue
    assert not case.overdue and not await overdue_attribute(handle)


async def test_rectify_limit_in_working_days_skips_a_holiday(start, time_env, ledger, catalog):
    cal = catalog.calendar
    now = (await time_env.get_current_time()).astimezone(LHASA)
    # A working day right before a day off that is not a weekend: a holiday.
    day = now.date() + timedelta(days=1)
    assert day.year <= cal.last_year, "the test server's clock ran past the shipped calendar"
    while not (cal.is_working_day(day) and not cal.is_working_day(day + timedelta(days=1))
               and (day + timedelta(days=1)).weekday() < 5):
        day += timedelta(days=1)
    await skip_to(time_env, at(day, 10, 0))
    handle = await start("street_light_out")
    await act(handle, "accept", MUNICIPAL_OFFICER)
    clock = (await state(handle)).clock
    assert (clock.step, clock.limit) == ("rectify", "3wd")
    expected, left = day, 3
    while left:
        expected += timedelta(days=1)
        left -= cal.is_working_day(expected)
    assert clock.due_at == at(expected, 18, 30)  # working days end at closing time
    assert clock.due_at == cal.add_limit(clock.started_at, "3wd")


async def test_extension_approved_moves_the_deadline(start, time_env, ledger):
    handle = await start("exposed_garbage", urgency=Urgency.URGENT)  # 签收 1h, 整改 8h
    await act(handle, "accept", OFFICER)
    clock = (await state(handle)).clock
    old_due = clock.due_at
    assert clock.limit == "8h"

    officer = OFFICER
    result = await act(handle, "request_extension", officer, extend_by="4h",
                       reason="需等待渣土车调度")
    assert result.state.extension.requested_due_at == old_due + timedelta(hours=4)
    assert result.state.clock.due_at == old_due  # not before a supervisor agrees
    assert (await refused(handle, "request_extension", officer, extend_by="1h",
                          reason="再延")).type == "extension_pending"
    assert (await refused(handle, "decide_extension", officer, approved=True)).type \
        == "role_not_allowed"

    result = await act(handle, "decide_extension", SUPERVISOR, approved=True, note="同意")
    clock = result.state.clock
    assert clock.due_at == old_due + timedelta(hours=4) and clock.extensions == 1
    assert result.state.extension is None

    # The old deadline passes quietly; the new one does not.
    await time_env.sleep(old_due - await time_env.get_current_time() + timedelta(minutes=5))
    assert "overdue" not in actions(ledger, handle)
    await time_env.sleep(timedelta(hours=4))
    assert actions(ledger, handle)[-1] == "overdue"
    history = actions(ledger, handle)
    assert history.index("request_extension") < history.index("decide_extension")
    decided = [e for e in ledger.history(handle.id) if e.action.value == "decide_extension"][0]
    assert decided.payload["approved"] is True


async def test_extension_denied_leaves_the_deadline_and_late_requests_are_refused(
        start, time_env, ledger):
    officer = OFFICER
    handle = await start("exposed_garbage", urgency=Urgency.URGENT)
    await act(handle, "accept", officer)
    old_due = (await state(handle)).clock.due_at
    await act(handle, "request_extension", officer, extend_by="2h", reason="人手不足")
    result = await act(handle, "decide_extension", SUPERVISOR, approved=False,
                       note="不同意，请增派人手")
    assert result.state.clock.due_at == old_due and result.state.clock.extensions == 0
    assert (await refused(handle, "decide_extension", SUPERVISOR, approved=True)).type \
        == "no_extension_pending"

    await time_env.sleep(old_due - await time_env.get_current_time() + timedelta(minutes=1))
    assert actions(ledger, handle)[-1] == "overdue"
    late = await refused(handle, "request_extension", officer, extend_by="2h", reason="补申请")
    assert late.type == "extension_too_late"
    assert actions(ledger, handle).count("request_extension") == 1
    # The team heard the refusal.
    kinds = [n.kind for n in sent_to(ledger, handle)]
    assert "extension_decided" in kinds and "extension_requested" in kinds


async def test_verify_limit_reminds_the_inspectors(start, time_env, ledger):
    officer = OFFICER
    handle = await start("exposed_garbage", urgency=Urgency.URGENT)  # 核查 4h
    await act(handle, "accept", officer)
    await act(handle, "submit_rectification", officer, report="已清运")
    clock = (await state(handle)).clock
    assert clock.step == "verify" and clock.due_at - clock.started_at == timedelta(hours=4)
    await time_env.sleep(timedelta(hours=4, minutes=1))
    assert actions(ledger, handle)[-2:] == ["remind", "overdue"]
    sent = {(n.kind, n.audience.value) for n in sent_to(ledger, handle)}
    assert ("reminder", "inspectors") in sent and ("supervision", "supervisors") in sent
    await act(handle, "verify", INSPECTOR, passed=True)
    assert not (await state(handle)).overdue


async def test_review_and_recheck_limits_fire_for_community_and_inspectors(
        start, time_env, ledger, catalog):
    handle = await start("exposed_garbage")
    await act(handle, "accept", OFFICER)
    await act(handle, "submit_rectification", OFFICER, report="已清运")
    await act(handle, "verify", INSPECTOR, passed=True)
    await act(handle, "evaluate", HOTLINE, rating="不满意")
    clock = (await state(handle)).clock
    assert clock.step == "review"
    assert clock.due_at == catalog.calendar.add_limit(clock.started_at, clock.limit)
    await skip_to(time_env, clock.due_at + timedelta(minutes=1))
    assert actions(ledger, handle)[-2:] == ["remind", "overdue"]
    sent = {(n.kind, n.audience.value, n.recipient) for n in sent_to(ledger, handle)}
    assert ("overdue", "community", "八廓街道") in sent

    await act(handle, "review", COMMUNITY, decision="uphold", note="经复核已解决")
    await act(handle, "bring_recheck_forward", SUPERVISOR)
    clock = (await state(handle)).clock
    assert clock.step == "recheck"
    assert clock.due_at == catalog.calendar.add_limit(clock.started_at, clock.limit)
    await skip_to(time_env, clock.due_at + timedelta(minutes=1))
    assert actions(ledger, handle)[-2:] == ["remind", "overdue"]
    assert (await state(handle)).overdue
    result = await act(handle, "recheck", INSPECTOR, result="consolidated")
    assert result.to_stage == Stage.CLOSED
    review, recheck = result.state.steps[-2:]
    assert review.late and recheck.late and recheck.completed_at is not None

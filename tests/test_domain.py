"""The pure domain: the action table, deadline arithmetic and the state machine without Temporal."""

from datetime import datetime, timedelta, timezone

import pytest

from domain import lifecycle
from domain.actions import ALLOWED_ROLES, ALLOWED_STAGES, Action, actions_allowed_in
from domain.calendar import LHASA, BusinessCalendar, parse_limit
from domain.errors import REFUSAL_STATUS, Refusal
from domain.roles import Role
from domain.stages import TERMINAL_STAGES, Stage
from tests.factories import DISPATCHER, INSPECTOR, OFFICER, cmd, intake, policy

# Monday to Friday office hours, no holidays.
add_limit = BusinessCalendar().add_limit


def lhasa(*args) -> datetime:
    return datetime(*args, tzinfo=LHASA)


def test_every_action_has_stages_and_roles_and_terminal_stages_allow_nothing():
    for action in Action:
        assert action == Action.OPEN or ALLOWED_STAGES[action], action
        assert ALLOWED_ROLES[action], action
    for stage in TERMINAL_STAGES:
        assert actions_allowed_in(stage) == []
    # What the system does by itself, no request can do, and the system does nothing else.
    for action in Action:
        if Role.SYSTEM in ALLOWED_ROLES[action]:
            assert ALLOWED_ROLES[action] == {Role.SYSTEM}, action


@pytest.mark.parametrize("start, limit, expected", [
    (lhasa(2026, 11, 20, 17, 0), "4wh", lhasa(2026, 11, 23, 12, 0)),    # Friday 17:00 -> Monday
    (lhasa(2026, 11, 23, 10, 0), "2wh", lhasa(2026, 11, 23, 12, 0)),    # within the morning
    (lhasa(2026, 11, 23, 12, 0), "2wh", lhasa(2026, 11, 23, 16, 30)),   # over the midday break
    (lhasa(2026, 11, 22, 8, 0), "1wh", lhasa(2026, 11, 23, 10, 30)),    # Sunday -> Monday
    (lhasa(2026, 11, 20, 10, 0), "1wd", lhasa(2026, 11, 23, 18, 30)),   # Friday -> Monday close
    (lhasa(2026, 11, 23, 10, 0), "5wd", lhasa(2026, 11, 30, 18, 30)),
    (lhasa(2026, 11, 21, 10, 0), "2h", lhasa(2026, 11, 21, 12, 0)),     # calendar hours
    (lhasa(2026, 11, 21, 10, 0), "30d", lhasa(2026, 12, 21, 10, 0)),
])
def test_deadlines_count_working_time(start, limit, expected):
    assert add_limit(start.astimezone(timezone.utc), limit) == expected


@pytest.mark.parametrize("bad", ["", "4", "0h", "-1d", "3x", "1.5h", "wd"])
def test_malformed_limits_are_rejected(bad):
    with pytest.raises(ValueError):
        parse_limit(bad)


def test_refusals_change_nothing(catalog):
    state, _ = lifecycle.open_case(intake(policy(catalog)))
    now = state.created_at
    before = state.model_copy(deep=True)
    for command, code in ((cmd("verify", INSPECTOR, passed=True), "stage_conflict"),
                          (cmd("accept", DISPATCHER), "role_not_allowed"),
                          (cmd("accept", OFFICER.model_copy(update={"team": "道路交通"})),
                           "not_your_team")):
        with pytest.raises(Refusal) as info:
            lifecycle.check(state, command, now)
        assert info.value.code == code and code in REFUSAL_STATUS
    assert state == before


def test_each_stage_has_its_deadline(catalog):
    now = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Lhasa
    state, _ = lifecycle.open_case(intake(policy(catalog), opened_at=now))
    assert state.stage == Stage.ASSIGNED and set(state.deadlines) == {"accept"}
    lifecycle.apply(state, cmd("accept", OFFICER), now + timedelta(hours=1), catalog.calendar)
    assert set(state.deadlines) == {"rectify"}
    limit = catalog.category("exposed_garbage").time_limits["normal"].rectify
    assert state.deadlines["rectify"] == add_limit(now + timedelta(hours=1), str(limit))


def test_a_step_record_says_what_ended_it(catalog):
    now = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
    state, _ = lifecycle.open_case(intake(policy(catalog), opened_at=now))
    lifecycle.apply(state, cmd("assign", DISPATCHER, team="环境卫生"), now + timedelta(minutes=5),
                    catalog.calendar)
    lifecycle.apply(state, cmd("accept", OFFICER), now + timedelta(minutes=9), catalog.calendar)
    first, second, rectify = state.steps
    assert (first.step, first.completed_by) == ("accept", Action.ASSIGN)
    assert (second.step, second.completed_by) == ("accept", Action.ACCEPT)
    assert rectify.open and rectify.completed_by is None

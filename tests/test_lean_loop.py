"""The lean case loop: one alarm kept across stage changes, no CaseStage upserts, no patch
asked for by cases whose intake says they are lean, and the opening recorded in the ledger
before the workflow starts."""

import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType

from config.settings import Settings
from runtime.cases import record_and_start, start_case
from tests.api_client import get, in_process, new_case, post_case
from tests.factories import INSPECTOR, MUNICIPAL_OFFICER, SUPERVISOR, intake, policy
from tests.test_time_limits import actions, at, near, next_friday_before_a_normal_monday, skip_to
from tests.workflow_steps import act, case_worker, settled, starter, to_recheck_pending
from workflows import search_attributes as sa
from workflows.case import CaseWorkflow

TASK_QUEUE = "lean-loop-tests"


def event_counts(history) -> Counter:
    return Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")
                   for e in history.events)


def markers(history) -> list[str]:
    return [e.marker_recorded_event_attributes.marker_name for e in history.events
            if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]


async def ordinary_case(handle) -> None:
    # Acting only once the first task is done, as officers do minutes after intake: an action
    # arriving sooner shares that task and saves three events, which would blur the count.
    await settled(handle)
    await to_recheck_pending(handle)
    await act(handle, "bring_recheck_forward", SUPERVISOR, note="抽查")
    await act(handle, "recheck", INSPECTOR, result="consolidated", note="未反弹")
    assert (await handle.result()).stage.value == "closed"


async def test_an_ordinary_case_opened_as_the_api_opens_it_costs_seven_events_an_action(
        dev_env, ledger, executor, catalog):
    case = intake(policy(catalog), calendar=catalog.calendar)
    async with case_worker(dev_env, ledger, executor, TASK_QUEUE) as started:
        await record_and_start(dev_env.client, ledger, case, TASK_QUEUE)
        handle = dev_env.client.get_workflow_handle_for(CaseWorkflow.run, case.case_id)
        started.append(handle)
        await ordinary_case(handle)
        history = await handle.fetch_history()
        described = await handle.describe()
    counts = event_counts(history)
    # Six stage changes, yet one timer started and none cancelled.
    assert counts["TIMER_STARTED"] == 1 and counts["TIMER_CANCELED"] == 0
    # No upsert at all: the attributes came with the start, the stage is not kept there, and
    # no patch is asked for (its TemporalChangeVersion would be one).
    assert counts["UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"] == 0
    # One ledger write per action and none for the opening, which the ledger had already.
    assert markers(history) == ["core_local_activity"] * 6
    assert described.typed_search_attributes.get(sa.CASE_STAGE) is None
    assert described.typed_search_attributes.get(sa.CASE_TEAM) == "环境卫生"
    # Was 60 before the lean loop, 45 with the patch and the workflow writing the opening.
    assert sum(counts.values()) == 42
    assert [e.action.value for e in ledger.history(case.case_id)] == [
        "open", "accept", "submit_rectification", "verify", "evaluate",
        "bring_recheck_forward", "recheck"]
    assert ledger.case(case.case_id).stage.value == "closed"
    assert not ledger.start_pending(case.case_id)


async def test_a_case_started_without_the_intakes_say_asks_for_the_patch(
        dev_env, ledger, executor, catalog):
    """As a case started by an API from before the intake said so: the lean loop still, at the
    price of the patch's marker and its TemporalChangeVersion upsert, and the workflow writes
    the opening itself."""
    async with case_worker(dev_env, ledger, executor, TASK_QUEUE) as started:
        handle = await start_case(dev_env.client, intake(policy(catalog),
                                                          calendar=catalog.calendar),
                                  TASK_QUEUE)
        started.append(handle)
        await ordinary_case(handle)
        history = await handle.fetch_history()
    counts = event_counts(history)
    assert counts["TIMER_STARTED"] == 1 and counts["TIMER_CANCELED"] == 0
    assert counts["UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"] == 1
    assert markers(history) == ["core_patch"] + ["core_local_activity"] * 7
    assert sum(counts.values()) == 45
    assert ledger.history(handle.id)[0].action.value == "open"


@pytest.fixture(scope="module")
def time_env(own_time_env):
    return own_time_env  # its clock must stay within the calendar's years


async def test_an_alarm_that_rings_early_is_set_again_for_the_next_deadline(
        time_env, ledger, executor, catalog):
    async with case_worker(time_env, ledger, executor, TASK_QUEUE) as started:
        start = starter(time_env, catalog, TASK_QUEUE, started)
        friday = next_friday_before_a_normal_monday(catalog.calendar,
                                                    await time_env.get_current_time())
        await skip_to(time_env, friday)
        handle = await start("street_light_out")  # 签收 4 working hours: 催办 Monday 11:12
        monday = friday.date() + timedelta(days=3)
        accepted = await act(handle, "accept", MUNICIPAL_OFFICER)
        rectify = accepted.state.clock
        assert rectify.step == "rectify" and rectify.remind_at > at(monday, 11, 12)

        # The alarm set for the accept reminder rings; nothing is due, so nothing happens.
        await skip_to(time_env, at(monday, 11, 13))
        assert actions(ledger, handle) == ["open", "accept"]
        # The rectification's own reminder still comes, on time.
        await skip_to(time_env, rectify.remind_at + timedelta(minutes=1))
        assert actions(ledger, handle) == ["open", "accept", "remind"]
        reminder = ledger.history(handle.id)[-1]
        assert near(reminder.occurred_at, rectify.remind_at)
        assert reminder.payload["step"] == "rectify"
        counts = event_counts(await handle.fetch_history())
    assert counts["TIMER_FIRED"] == 2 and counts["TIMER_CANCELED"] == 0


async def test_an_opened_case_is_in_the_ledger_before_any_worker_runs_it(
        dev_env, ledger, catalog):
    # No worker polls this task queue: only the API can have written the row.
    settings = Settings(task_queue=f"nobody-{uuid.uuid4().hex[:8]}")
    async with in_process(dev_env.client, ledger, catalog, settings) as api:
        response = await post_case(api, new_case())
        assert response.status_code == 201, response.text
        case_id = response.json()["case_id"]
        row = ledger.case(case_id)
        assert row is not None and row.stage.value == "assigned" and row.team == "环境卫生"
        assert [e.action.value for e in ledger.history(case_id)] == ["open"]
        # The team's notice of the new case waits in the outbox, once.
        assert [n.notification.kind for n in ledger.outbox.for_case(case_id)] == ["assigned"]
        again = await post_case(api, {**new_case(), "external_id": response.json()["external_id"]})
        assert again.status_code == 200 and again.json()["case_id"] == case_id
    await dev_env.client.get_workflow_handle(case_id).terminate(reason="end of test")


async def test_a_case_no_one_can_read_yet_answers_503_soon(dev_env, ledger, catalog):
    # Started around the API, as an older API did, on a task queue no worker polls: no ledger
    # row, and the query that stands in for it cannot be answered.
    settings = Settings(task_queue=f"nobody-{uuid.uuid4().hex[:8]}", query_timeout_seconds=1)
    handle = await start_case(dev_env.client, intake(policy(catalog), calendar=catalog.calendar),
                               settings.task_queue)
    async with in_process(dev_env.client, ledger, catalog, settings) as api:
        started = time.monotonic()
        response = await get(api, f"/cases/{handle.id}")
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "case_not_ready"
    assert time.monotonic() - started < 10
    await handle.terminate(reason="end of test")

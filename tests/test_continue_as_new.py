"""Long cases continue as new before their history grows large, carrying their state and the
recent request ids: a request repeated after the case continued is answered, not applied again.
Run on the time-skipping server with a small history limit and a real SQLite ledger."""

import asyncio
import uuid
from datetime import timedelta

import pytest

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from domain.stages import Stage
from ledger.rebuild import rebuild
from tests.conftest import sqlite_ledger
from tests.factories import HOTLINE, INSPECTOR, OFFICER, OTHER_OFFICER, SUPERVISOR, cmd
from tests.test_whistle import HOUSING_OFFICER, blow, on_whistle
from tests.workflow_steps import act, rectify, stage, worker_fixtures
from workflows import search_attributes as sa
from workflows.case import CaseWorkflow

TASK_QUEUE = "continue-as-new-tests"
LIMIT = 60


@pytest.fixture(scope="module")
def time_env(own_time_env):
    return own_time_env  # child workflows: see own_time_env


started, start = worker_fixtures(TASK_QUEUE)


def run_handle(handle: WorkflowHandle, run_id: str) -> WorkflowHandle:
    return handle._client.get_workflow_handle(handle.id, run_id=run_id)


async def runs(handle: WorkflowHandle) -> list[str]:
    """Run ids of the case's workflow, oldest first, following continue-as-new."""
    ids = [handle.first_execution_run_id]
    while True:
        events = (await run_handle(handle, ids[-1]).fetch_history()).events
        last = events[-1]
        if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            return ids
        ids.append(last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id)


async def failed_rounds_until_continued(handle: WorkflowHandle) -> list[str]:
    """Rectify and fail verification until the case has continued as new once."""
    for _ in range(20):
        await rectify(handle, OTHER_OFFICER)
        await act(handle, "verify", INSPECTOR, passed=False, note="仍有残留")
        found = await runs(handle)
        if len(found) > 1:
            return found
    raise AssertionError("the case never continued as new")


async def test_a_long_case_continues_as_new_and_keeps_its_state_and_request_ids(
        start, time_env, ledger, tmp_path):
    handle = await start(history_event_limit=LIMIT)
    accept_id = f"accept-{uuid.uuid4().hex[:8]}"
    accepted = await act(handle, "accept", OFFICER, request_id=accept_id)
    supplement = cmd("supplement", HOTLINE, f"sup-{uuid.uuid4().hex[:8]}", content="补充：旁边还有")
    await handle.signal(CaseWorkflow.note, supplement)

    first_run, second_run = await failed_rounds_until_continued(handle)
    first = run_handle(handle, first_run)
    assert (await first.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    first_length = len((await first.fetch_history()).events)
    assert LIMIT <= first_length < LIMIT + 30

    # The new run holds the case as it was, and the stage attribute stays filterable.
    state = await handle.query(CaseWorkflow.state)
    assert state.stage == Stage.RECTIFYING and state.round > 2 and state.supplements == 1
    described = await handle.describe()
    assert described.run_id == second_run
    assert described.typed_search_attributes.get(sa.CASE_STAGE) == "rectifying"
    events_before = [e.seq for e in ledger.history(handle.id)]

    # The first run's accept, retried with its id: its first outcome, nothing applied.
    again = await act(handle, "accept", OFFICER, request_id=accept_id)
    assert (again.seq, again.from_stage, again.to_stage) == (
        accepted.seq, accepted.from_stage, accepted.to_stage)
    assert again.state.stage == Stage.RECTIFYING
    # The first run's supplement, redelivered: recorded once.
    await handle.signal(CaseWorkflow.note, supplement)
    assert (await handle.query(CaseWorkflow.state)).supplements == 1
    assert [e.seq for e in ledger.history(handle.id)] == events_before

    # The case goes on to its end across runs; the ledger holds every step once, in order.
    await rectify(handle)
    await act(handle, "verify", INSPECTOR, passed=True)
    await act(handle, "evaluate", HOTLINE, rating="满意")
    await act(handle, "bring_recheck_forward", SUPERVISOR, note="抽查")
    await act(handle, "recheck", INSPECTOR, result="consolidated")
    final = await handle.result()
    assert final.stage == Stage.CLOSED
    history = ledger.history(handle.id)
    assert [e.seq for e in history] == list(range(1, final.seq + 1))
    assert [e.action.value for e in history].count("accept") == 1
    assert [e.action.value for e in history].count("supplement") == 1
    assert ledger.case(handle.id).stage == Stage.CLOSED

    # A brand-new ledger rebuilt from Temporal for this case gets the events of both runs.
    fresh = sqlite_ledger(tmp_path)
    report = await rebuild(time_env.client, fresh, case_id=handle.id)
    assert report.cases == 2 and report.exit_code == 0, report.summary()
    assert [(e.seq, e.action) for e in fresh.history(handle.id)] == [
        (e.seq, e.action) for e in history]
    fresh.engine.dispose()


async def test_a_case_under_the_limit_never_continues(start):
    handle = await start()
    await act(handle, "accept", OFFICER)
    for _ in range(3):
        await rectify(handle, OTHER_OFFICER)
        await act(handle, "verify", INSPECTOR, passed=False)
    assert len(await runs(handle)) == 1
    events = (await handle.fetch_history()).events
    # Not even the patch marker: cases that do not continue pay nothing for it.
    assert not any(b"case-continue-as-new" in e.SerializeToString() for e in events)
    assert await stage(handle) == Stage.RECTIFYING


async def test_a_whistle_out_holds_the_continue_as_new_until_it_is_over(start, time_env, ledger):
    """The whistle's child workflow and the task following it belong to the run that blew it:
    the case continues only after the whistle has closed."""
    handle = await start(history_event_limit=LIMIT)
    await act(handle, "accept", OFFICER)
    # Signals lengthen the history without a transition: nothing continues on them.
    sent = 0
    while len((await handle.fetch_history()).events) < LIMIT:
        await handle.signal(CaseWorkflow.note, cmd("supplement", HOTLINE, f"pad-{sent}",
                                                   content=f"补充{sent}"))
        sent += 1
        await eventually_supplements(handle, sent)
    assert len(await runs(handle)) == 1
    await blow(handle, departments=[HOUSING_OFFICER.department])
    assert len(await runs(handle)) == 1 and await stage(handle) == Stage.ESCALATED

    await on_whistle(time_env, handle, 1, "report_in", HOUSING_OFFICER)
    await on_whistle(time_env, handle, 1, "report_done", HOUSING_OFFICER, note="已处理")
    whistle = time_env.client.get_workflow_handle(f"{handle.id}/whistle-1")
    assert (await whistle.result())["status"] == "completed"
    await time_env.sleep(timedelta(seconds=5))
    assert await stage(handle) == Stage.RECTIFYING

    await rectify(handle)
    found = await runs(handle)
    assert len(found) == 2
    state = await handle.query(CaseWorkflow.state)
    assert state.stage == Stage.VERIFYING and state.whistles[0].status == "completed"
    actions = [e.action.value for e in ledger.history(handle.id)]
    assert actions.count("whistle_closed") == 1 and actions[-1] == "submit_rectification"


async def eventually_supplements(handle: WorkflowHandle, count: int) -> None:
    for _ in range(100):
        if (await handle.query(CaseWorkflow.state)).supplements == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} supplements were not recorded")

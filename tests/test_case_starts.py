"""A case is recorded in the ledger before its workflow starts, and started later if the start
did not happen: nothing the API took in is lost when Temporal is away or the API stops between
the two, and nothing is started twice."""

import uuid
from datetime import timedelta

import httpx
from temporalio.service import RPCError, RPCStatusCode

from config.settings import Settings
from domain.notices import opening_entry
from ledger.db import make_engine
from ledger.repository import Ledger
from runtime.cases import StartedCases, record_and_start, start_pending
from tests.api_client import HOTLINE, OFFICER, act, bearer, in_process, new_case, post_case
from tests.factories import intake, policy
from tests.processes import eventually
from tests.workflow_steps import case_worker

NOW = timedelta(0)


def queue() -> str:
    return f"starts-{uuid.uuid4().hex[:8]}"


def app(client, ledger: Ledger, catalog, task_queue: str) -> httpx.AsyncClient:
    return in_process(client, ledger, catalog,
                      Settings(task_queue=task_queue, action_timeout_seconds=10))


async def exists(client, case_id: str) -> bool:
    try:
        await client.get_workflow_handle(case_id).describe()
        return True
    except RPCError as err:
        assert err.status == RPCStatusCode.NOT_FOUND
        return False


def recorded_not_started(ledger: Ledger, catalog):
    """What an API that stopped right after recording a case leaves behind."""
    case = intake(policy(catalog), calendar=catalog.calendar).model_copy(
        update={"lean_loop": True, "opening_recorded": True})
    ledger.record(opening_entry(case), case)
    return case


async def test_a_case_recorded_but_never_started_is_started_by_the_sweep_once(
        dev_env, ledger, executor, catalog):
    task_queue = queue()
    case = recorded_not_started(ledger, catalog)
    async with app(dev_env.client, ledger, catalog, task_queue) as api, \
            case_worker(dev_env, ledger, executor, task_queue) as started:
        # Readable at once, but not yet able to act: said so, and nothing changes.
        body = await act(api, case.case_id, "accept", {}, OFFICER, expect=503)
        assert body["code"] == "case_not_ready"
        assert [e.action.value for e in ledger.history(case.case_id)] == ["open"]

        # Too recent for the sweep: the API that recorded it may still be starting it.
        assert await start_pending(dev_env.client, ledger, task_queue) == 0
        assert not await exists(dev_env.client, case.case_id)

        assert await start_pending(dev_env.client, ledger, task_queue, grace=NOW) == 1
        started.append(dev_env.client.get_workflow_handle(case.case_id))
        assert not ledger.start_pending(case.case_id)
        assert await start_pending(dev_env.client, ledger, task_queue, grace=NOW) == 0

        body = await act(api, case.case_id, "accept", {}, OFFICER)
        assert body["to_stage"] == "rectifying"
    # The workflow did not write the opening again: one event each, in order.
    assert [(e.seq, e.action.value) for e in ledger.history(case.case_id)] == [
        (1, "open"), (2, "accept")]


async def test_a_start_the_api_made_before_stopping_is_not_made_again(
        dev_env, ledger, executor, catalog):
    # Started, but the API stopped before it could say so: the sweep finds the workflow there.
    task_queue = queue()
    case = recorded_not_started(ledger, catalog)
    async with case_worker(dev_env, ledger, executor, task_queue) as started:
        opening, created = await record_and_start(dev_env.client, ledger, case, task_queue)
        started.append(dev_env.client.get_workflow_handle(case.case_id))
        assert created is True
        ledger.record(opening, case)  # the note as it was before the start
        assert ledger.start_pending(case.case_id)
        assert await start_pending(dev_env.client, ledger, task_queue, grace=NOW) == 0
        assert not ledger.start_pending(case.case_id)
        history = await dev_env.client.get_workflow_handle(case.case_id).fetch_history()
    assert sum(e.HasField("workflow_execution_started_event_attributes")
               for e in history.events) == 1


async def test_a_repeated_request_opens_nothing_twice(dev_env, ledger, executor, catalog):
    task_queue = queue()
    async with app(dev_env.client, ledger, catalog, task_queue) as api, \
            case_worker(dev_env, ledger, executor, task_queue) as started:
        headers = {"Idempotency-Key": uuid.uuid4().hex, **bearer(HOTLINE)}
        body = new_case(external_id=None)
        first = await api.post("/cases", json=body, headers=headers)
        assert first.status_code == 201, first.text
        case_id = first.json()["case_id"]
        started.append(dev_env.client.get_workflow_handle(case_id))
        again = await api.post("/cases", json=body, headers=headers)
        assert again.status_code == 200 and again.json()["case_id"] == case_id
    assert [e.action.value for e in ledger.history(case_id)] == ["open"]
    await eventually(lambda: not ledger.start_pending(case_id), seconds=10,
                     what="the start note cleared")


async def test_the_start_notes_of_cases_started_together_are_cleared_together(ledger, catalog):
    cases = [recorded_not_started(ledger, catalog) for _ in range(3)]
    started = StartedCases(ledger, every=0.2)
    for case in cases:
        started.add(case.case_id)
    # Not at each start: a moment later, all at once.
    assert all(ledger.start_pending(case.case_id) for case in cases)
    await eventually(lambda: not any(ledger.start_pending(case.case_id) for case in cases),
                     seconds=10, what="the start notes cleared")
    # An API stopping clears what is waiting before it goes.
    last = recorded_not_started(ledger, catalog)
    started.add(last.case_id)
    await started.close()
    assert not ledger.start_pending(last.case_id)


async def test_with_the_ledger_away_nothing_is_opened(dev_env, catalog, tmp_path):
    # A ledger that was never migrated: every read and write of it fails.
    gone = Ledger(make_engine(f"sqlite:///{tmp_path / 'missing' / 'ledger.db'}"))
    async with app(dev_env.client, gone, catalog, queue()) as api:
        body = new_case()
        response = await post_case(api, body)
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "ledger_unavailable"
    assert "Send the same request again" in response.json()["message"]
    assert not await exists(dev_env.client, f"hotline-{body['external_id']}")

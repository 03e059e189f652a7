"""Driving case workflows directly on the time-skipping server: start, act, look."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from config.catalog import Catalog
from domain.stages import Stage
from ledger.repository import Ledger
from runtime.cases import record_and_start, start_case
from runtime.worker import build_worker
from tests.factories import HOTLINE, INSPECTOR, OFFICER, cmd, intake, policy
from workflows.case import CaseWorkflow


@asynccontextmanager
async def case_worker(env: WorkflowEnvironment, ledger: Ledger, executor,
                      task_queue: str) -> AsyncIterator[list[WorkflowHandle]]:
    """A worker for a test module, yielding the list its cases are kept in. Cases still open at
    the end are terminated while the worker runs: their timers would otherwise fire for a worker
    that is gone, and the time-skipping server stops skipping time while a task waits."""
    started: list[WorkflowHandle] = []
    async with build_worker(env.client, task_queue, ledger, executor):
        yield started
        for handle in started:
            try:
                await handle.terminate(reason="end of test module")
            except RPCError:
                pass  # already closed


def starter(env: WorkflowEnvironment, catalog: Catalog, task_queue: str,
            started: list[WorkflowHandle], recorded_in: Ledger | None = None):
    """Starts cases as older APIs did, the workflow writing its opening; with `recorded_in`, as
    the API does now, the opening recorded there first."""
    async def _start(category: str | None = "exposed_garbage", urgency=None,
                     **overrides) -> WorkflowHandle:
        # The test server's clock runs ahead of the wall clock once a test has skipped time.
        overrides.setdefault("opened_at", await env.get_current_time())
        overrides.setdefault("calendar", catalog.calendar)
        case_policy = None
        if category:
            case_policy = policy(catalog, category, urgency) if urgency else policy(catalog, category)
        case = intake(case_policy, **overrides)
        if recorded_in is None:
            handle = await start_case(env.client, case, task_queue)
        else:
            await record_and_start(env.client, recorded_in, case, task_queue)
            handle = env.client.get_workflow_handle_for(CaseWorkflow.run, case.case_id)
        started.append(handle)
        return handle
    return _start


async def settled(handle: WorkflowHandle, seconds: float = 10.0) -> WorkflowHistory:
    """Wait until no workflow task is pending (what was asked has been recorded); the history
    then."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        history = await handle.fetch_history()
        kinds = [e.event_type for e in history.events]
        scheduled = [i for i, k in enumerate(kinds)
                     if k == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED]
        if scheduled and EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED in kinds[scheduled[-1]:]:
            return history
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{handle.id}: a workflow task still pending after {seconds} s")


async def act(handle: WorkflowHandle, kind: str, actor, request_id: str | None = None, **fields):
    return await handle.execute_update(CaseWorkflow.act, cmd(kind, actor, request_id, **fields),
                                       id=request_id or uuid.uuid4().hex)


async def stage(handle: WorkflowHandle) -> Stage:
    return (await handle.query(CaseWorkflow.state)).stage


async def refused(handle: WorkflowHandle, kind: str, actor, **fields) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await act(handle, kind, actor, **fields)
    assert isinstance(info.value.cause, ApplicationError)
    return info.value.cause


async def rectify(handle: WorkflowHandle, officer=OFFICER) -> None:
    await act(handle, "submit_rectification", officer, report="已清运垃圾并消杀",
              evidence=["https://img.example.cn/after.jpg"])


async def to_recheck_pending(handle: WorkflowHandle) -> None:
    await act(handle, "accept", OFFICER)
    await rectify(handle)
    await act(handle, "verify", INSPECTOR, passed=True, note="现场已清理")
    await act(handle, "evaluate", HOTLINE, rating="满意")




def sent_to(ledger: Ledger, handle: WorkflowHandle):
    """The notifications the case's events put in the outbox."""
    return [entry.notification for entry in ledger.outbox.for_case(handle.id)]


def worker_fixtures(task_queue: str):
    """The `started` (module worker, its cases) and `start` (open a case) fixtures of a test
    module driving cases on `time_env`: `started, start = worker_fixtures(TASK_QUEUE)`."""
    @pytest.fixture(scope="module")
    async def started(time_env, ledger, executor):
        async with case_worker(time_env, ledger, executor, task_queue) as handles:
            yield handles

    @pytest.fixture
    def start(time_env, started, catalog):
        return starter(time_env, catalog, task_queue, started)

    return started, start

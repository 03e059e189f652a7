"""The sandbox: the tests' workers run in it, with its snippets compiled once, and it refuses
what it always refused; deployed workers run without it (Settings.workflow_sandbox), and a
case begun in it goes on without it."""

import uuid

from temporalio.worker import Worker

from runtime import sandbox
from runtime.cases import record_and_start
from runtime.worker import build_worker
from tests.factories import HOTLINE, INSPECTOR, OFFICER, SUPERVISOR, intake, policy
from tests.sandbox_probe import ReadsTheClock
from tests.workflow_steps import act, rectify, stage
from workflows.case import CaseWorkflow


async def test_the_workers_sandbox_still_refuses_the_wall_clock(dev_env):
    task_queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    compiled_before = sandbox._compiled.cache_info()
    async with Worker(dev_env.client, task_queue=task_queue, workflows=[ReadsTheClock],
                      workflow_runner=sandbox.workflow_runner()):
        answer = await dev_env.client.execute_workflow(
            ReadsTheClock.run, id=f"probe-{uuid.uuid4().hex}", task_queue=task_queue)
    assert answer == "RestrictedWorkflowAccessError"
    # The snippets came from the cache: the hook is in place, not the fallback.
    compiled_after = sandbox._compiled.cache_info()
    assert compiled_after.hits > compiled_before.hits


async def test_a_case_begun_in_the_sandbox_is_finished_by_a_worker_without_it(
        dev_env, ledger, executor, catalog):
    # Deploying the sandbox setting's default: cases begun by sandboxed workers replay, from
    # their whole history, on a worker without it, and go on to the end.
    task_queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    case = intake(policy(catalog), calendar=catalog.calendar)
    handle = dev_env.client.get_workflow_handle_for(CaseWorkflow.run, case.case_id)
    async with build_worker(dev_env.client, task_queue, ledger, executor, sandboxed=True):
        await record_and_start(dev_env.client, ledger, case, task_queue)
        await act(handle, "accept", OFFICER)
        await rectify(handle)
    async with build_worker(dev_env.client, task_queue, ledger, executor, sandboxed=False):
        assert (await stage(handle)).value == "verifying"
        await act(handle, "verify", INSPECTOR, passed=True, note="现场已清理")
        await act(handle, "evaluate", HOTLINE, rating="满意")
        await act(handle, "bring_recheck_forward", SUPERVISOR, note="抽查")
        await act(handle, "recheck", INSPECTOR, result="consolidated", note="未反弹")
        assert (await handle.result()).stage.value == "closed"
    assert [e.action.value for e in ledger.history(case.case_id)] == [
        "open", "accept", "submit_rectification", "verify", "evaluate",
        "bring_recheck_forward", "recheck"]
    assert ledger.case(case.case_id).stage.value == "closed"

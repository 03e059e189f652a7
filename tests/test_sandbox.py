"""The worker's sandbox compiles the snippets it runs once, and refuses what it always refused."""

import uuid

from temporalio.worker import Worker

from runtime import sandbox
from tests.sandbox_probe import ReadsTheClock


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

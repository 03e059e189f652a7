"""A worker process killed mid-case: a new one carries the case on and nothing is lost."""

import asyncio
import signal
import subprocess
import uuid

from domain.stages import Stage
from tests.conftest import sqlite_ledger
from tests.factories import HOTLINE, INSPECTOR, OFFICER, SUPERVISOR, cmd, intake, policy
from tests.processes import bihuan_env, start_bihuan
from runtime.cases import start_case
from workflows.case import CaseWorkflow


def start_worker(dev_env, task_queue: str, ledger_url: str) -> subprocess.Popen:
    return start_bihuan("worker", bihuan_env(dev_env.client.service_client.config.target_host,
                                             task_queue, ledger_url))


async def test_a_killed_worker_is_replaced_and_the_case_goes_on(dev_env, catalog, tmp_path):
    ledger = sqlite_ledger(tmp_path)
    ledger_url = str(ledger.engine.url)
    task_queue = f"restart-{uuid.uuid4().hex[:8]}"
    worker = start_worker(dev_env, task_queue, ledger_url)
    try:
        case = intake(policy(catalog))
        handle = await start_case(dev_env.client, case, task_queue)
        await handle.execute_update(CaseWorkflow.act, cmd("accept", OFFICER, "r1"), id="r1")
        await handle.execute_update(
            CaseWorkflow.act, cmd("submit_rectification", OFFICER, "r2", report="已清运"), id="r2")

        worker.send_signal(signal.SIGKILL)
        worker.wait()
        # Sent while no worker runs: the update waits for one instead of being lost.
        verify = asyncio.create_task(handle.execute_update(
            CaseWorkflow.act, cmd("verify", INSPECTOR, "r3", passed=True), id="r3"))
        await asyncio.sleep(1.0)
        assert not verify.done()

        worker = start_worker(dev_env, task_queue, ledger_url)
        result = await asyncio.wait_for(verify, timeout=60)
        assert result.to_stage == Stage.EVALUATING

        # A client that retries across the outage gets the first answer, applied once.
        again = await handle.execute_update(
            CaseWorkflow.act, cmd("verify", INSPECTOR, "r3", passed=True), id="r3")
        assert again.seq == result.seq
        for request_id, kind, actor, fields in (
                ("r4", "evaluate", HOTLINE, {"rating": "满意"}),
                ("r5", "bring_recheck_forward", SUPERVISOR, {}),
                ("r6", "recheck", INSPECTOR, {"result": "consolidated"})):
            await handle.execute_update(CaseWorkflow.act, cmd(kind, actor, request_id, **fields),
                                        id=request_id)
        final = await handle.result()
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    assert final.stage == Stage.CLOSED
    events = ledger.history(case.case_id)
    assert [e.seq for e in events] == list(range(1, 8))
    assert [e.request_id for e in events[1:]] == ["r1", "r2", "r3", "r4", "r5", "r6"]
    assert ledger.case(case.case_id).stage == Stage.CLOSED

"""Graceful shutdown with real processes: SIGTERM lets the worker finish the ledger write it is
in (no other worker needed) and the API answer the request it is serving; the worker's health
check and the SDK's own metrics, as the compose file uses them."""

import asyncio
import signal
import subprocess
import sys
import uuid

import httpx

from domain.stages import Stage
from runtime.cases import start_case
from runtime.worker import build_worker
from tests.api_client import HOTLINE, OFFICER, free_port, new_case
from tests.conftest import sqlite_ledger
from tests.factories import bearer, cmd, intake, policy
from tests.factories import OFFICER as OFFICER_ACTOR
from tests.processes import SqliteLock, bihuan_env, eventually, start_bihuan, stop
from workflows.case import CaseWorkflow


def worker_health(env: dict) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "cli.main", "worker-health"], env=env,
                          capture_output=True, text=True, timeout=30)
    return done.returncode, done.stdout + done.stderr


async def test_sigterm_drains_the_worker_and_its_health_says_so(dev_env, catalog, tmp_path):
    ledger = sqlite_ledger(tmp_path)
    task_queue = f"drain-{uuid.uuid4().hex[:8]}"
    metrics_port = free_port()
    env = bihuan_env(dev_env.client.service_client.config.target_host, task_queue,
                     str(ledger.engine.url), worker_health_port=str(free_port()),
                     worker_metrics_address=f"127.0.0.1:{metrics_port}")
    worker = start_bihuan("worker", env)
    try:
        code, body = await eventually(lambda: (lambda r: r if r[0] == 0 else None)(
            worker_health(env)), what="a healthy worker")
        assert '"temporal": "ok"' in body and '"ledger": "ok"' in body
        sdk = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert any(line.startswith("temporal_") for line in sdk.splitlines())

        case = intake(policy(catalog))
        handle = await start_case(dev_env.client, case, task_queue)
        lock = SqliteLock(str(tmp_path / "ledger.db"))
        accepted = asyncio.create_task(handle.execute_update(
            CaseWorkflow.act, cmd("accept", OFFICER_ACTOR, "drain-1"), id="drain-1"))
        await asyncio.sleep(2)  # the write waits for the lock
        worker.send_signal(signal.SIGTERM)
        code, body = await eventually(lambda: (lambda r: r if "stopping" in r[1] else None)(
            worker_health(env)), what="the health check to say stopping")
        assert code == 1 and worker.poll() is None  # still finishing the write
        lock.release()
        # The same worker finishes the write and answers; nobody else is polling.
        result = await asyncio.wait_for(accepted, 30)
        assert result.to_stage == Stage.RECTIFYING
        assert worker.wait(timeout=30) == 0
    finally:
        stop(worker, signal.SIGKILL)
    assert [e.request_id for e in ledger.history(case.case_id)] == [case.request_id, "drain-1"]
    assert worker_health(env)[0] == 1  # nothing answers now


async def test_sigterm_lets_the_api_answer_the_request_in_flight(dev_env, catalog, executor,
                                                                 tmp_path):
    ledger = sqlite_ledger(tmp_path)
    task_queue = f"api-drain-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = bihuan_env(dev_env.client.service_client.config.target_host, task_queue,
                     str(ledger.engine.url), api_port=str(port), api_host="127.0.0.1",
                     api_shutdown_grace_seconds="30")
    base = f"http://127.0.0.1:{port}"
    api = start_bihuan("api", env)
    try:
        await eventually(lambda: _answers(f"{base}/readyz"), what="a ready API")
        opened = httpx.post(f"{base}/cases", json=new_case(), headers=bearer(HOTLINE),
                            timeout=30)
        assert opened.status_code == 201, opened.text
        case_id = opened.json()["case_id"]
        # No worker yet: the accept waits in the API for the workflow to answer.
        accept = asyncio.create_task(asyncio.to_thread(
            httpx.post, f"{base}/cases/{case_id}/actions/accept", json={"note": "已签收"},
            headers={"Idempotency-Key": "api-drain-1", **bearer(OFFICER)}, timeout=60))
        await asyncio.sleep(1.5)
        api.send_signal(signal.SIGTERM)
        await asyncio.sleep(1)
        assert api.poll() is None and not accept.done()
        assert not _answers(f"{base}/healthz")  # no new requests once stopping
        async with build_worker(dev_env.client, task_queue, ledger, executor):
            answered = await asyncio.wait_for(accept, 45)
            assert answered.status_code == 200, answered.text
            assert answered.json()["to_stage"] == "rectifying"
        # uvicorn re-raises the SIGTERM it caught once the requests are done.
        assert api.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        stop(api, signal.SIGKILL)
    assert [e.action.value for e in ledger.history(case_id)] == ["open", "accept"]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False

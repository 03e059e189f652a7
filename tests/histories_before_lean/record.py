"""Records the histories tests/test_lean_replay.py replays.

Run once, from code that predates a change to what the case or whistle workflow does, so the
change can prove it still replays what was recorded before it:

    .venv/bin/python -m tests.histories_before_lean.record [DIR]

DIR defaults to this folder; tests/histories_lean/ holds the same paths recorded from the lean
loop, so a later change is checked against both.

Cases are driven through the Temporal client on a dev server (the ordinary loop, a failed
verification, a whistle of two departments, a case left waiting for its 回头看) and on the
time-skipping server (the evaluation window and the 回头看 interval pass, so their timers fire).
"""

import asyncio
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from temporalio.client import WorkflowHandle

from config.catalog import DEFAULT_CONFIG_DIR, load_catalog
from domain.models import Actor
from domain.roles import Role
from domain.whistles import WhistleCommand, whistle_workflow_id
from ledger.db import make_engine
from ledger.migrate import upgrade
from ledger.repository import Ledger
from runtime.cases import start_case
from runtime.worker import build_worker
from tests.conftest import start_dev_env, start_time_skipping_env
from tests.factories import HOTLINE, INSPECTOR, OFFICER, SUPERVISOR, intake, policy
from domain.stages import Stage
from tests.workflow_steps import act, rectify, stage, to_recheck_pending
from workflows.whistle import WhistleWorkflow

HERE = Path(__file__).parent
INTO = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
TASK_QUEUE = "record-histories"
HOUSING = "拉萨市住房和城乡建设局"
POWER = "国网拉萨供电公司"
DEPARTMENTS = [Actor(id="dep-zj-01", name="张工", role=Role.DEPARTMENT, department=HOUSING),
               Actor(id="dep-gd-01", name="李工", role=Role.DEPARTMENT, department=POWER)]


async def save(handle: WorkflowHandle, name: str) -> None:
    history = await handle.fetch_history()
    INTO.mkdir(parents=True, exist_ok=True)
    (INTO / f"{name}.json").write_text(history.to_json(), encoding="utf-8")


async def recheck_and_save(handle: WorkflowHandle, name: str) -> None:
    """From recheck_pending to closed, the recheck brought forward; then save the history."""
    await act(handle, "bring_recheck_forward", SUPERVISOR, note="提前回头看")
    await act(handle, "recheck", INSPECTOR, result="consolidated", note="未反弹")
    await handle.result()
    await save(handle, name)


async def on_dev_server(ledger: Ledger, executor: ThreadPoolExecutor, catalog) -> None:
    env = await start_dev_env()
    try:
        async with build_worker(env.client, TASK_QUEUE, ledger, executor):
            async def start():
                return await start_case(env.client, intake(policy(catalog),
                                                             calendar=catalog.calendar),
                                         TASK_QUEUE)

            ordinary = await start()
            await to_recheck_pending(ordinary)
            await recheck_and_save(ordinary, "ordinary_closed")

            failed = await start()
            await act(failed, "accept", OFFICER)
            await rectify(failed)
            await act(failed, "verify", INSPECTOR, passed=False, note="仍有垃圾")
            await rectify(failed)
            await act(failed, "verify", INSPECTOR, passed=True, note="已清理")
            await act(failed, "evaluate", HOTLINE, rating="满意")
            await recheck_and_save(failed, "failed_verification_closed")

            whistled = await start()
            await act(whistled, "accept", OFFICER)
            kind = catalog.whistle_kinds["tough"]
            await act(whistled, "whistle", OFFICER, whistle_kind=kind.code,
                      whistle_kind_name=kind.name, report_in_limit=str(kind.report_in),
                      departments=[HOUSING, POWER], reason="违建涉及供电线路")
            whistle = env.client.get_workflow_handle(whistle_workflow_id(whistled.id, 1))
            for step in ("report_in", "report_done"):
                for department in DEPARTMENTS:
                    fields = {"note": "已完成"} if step == "report_done" else {}
                    command = WhistleCommand(request_id=f"{step}-{department.id}",
                                             actor=department, payload={"kind": step, **fields})
                    await whistle.execute_update(WhistleWorkflow.act, command,
                                                 id=command.request_id)
            await whistle.result()
            while await stage(whistled) != Stage.RECTIFYING:
                await asyncio.sleep(0.05)
            await rectify(whistled)
            await act(whistled, "verify", INSPECTOR, passed=True, note="已清理")
            await act(whistled, "evaluate", HOTLINE, rating="满意")
            await recheck_and_save(whistled, "whistled_closed")
            await save(whistle, "whistle_completed")

            waiting = await start()
            await to_recheck_pending(waiting)
            await save(waiting, "recheck_pending_open")
            await waiting.terminate(reason="recorded")
    finally:
        await env.shutdown()


async def on_time_skipping_server(ledger: Ledger, executor: ThreadPoolExecutor, catalog) -> None:
    env = await start_time_skipping_env()
    try:
        async with build_worker(env.client, TASK_QUEUE, ledger, executor):
            case_policy = policy(catalog)
            handle = await start_case(env.client, intake(
                case_policy, opened_at=await env.get_current_time(), calendar=catalog.calendar),
                TASK_QUEUE)
            await act(handle, "accept", OFFICER)
            await rectify(handle)
            await act(handle, "verify", INSPECTOR, passed=True, note="现场已清理")
            # Nobody rates: the evaluation window passes, then the 回头看 interval.
            await env.sleep(timedelta(days=catalog.evaluation_window_days + 1))
            await env.sleep(timedelta(days=case_policy.recheck_interval_days + 1))
            await act(handle, "recheck", INSPECTOR, result="consolidated", note="未反弹")
            await handle.result()
            await save(handle, "timers_fired_closed")
    finally:
        await env.shutdown()


async def main() -> None:
    catalog = load_catalog(DEFAULT_CONFIG_DIR)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=4) as executor:
        url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        upgrade(url)
        engine = make_engine(url)
        try:
            await on_dev_server(Ledger(engine), executor, catalog)
            await on_time_skipping_server(Ledger(engine), executor, catalog)
        finally:
            engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
    os._exit(0)

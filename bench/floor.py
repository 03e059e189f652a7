"""The floor: what bare Temporal does on this machine with the same shape of work as a case.

A trivial workflow that takes `steps` updates, each running one local activity that does
nothing, then completes. bench/lifecycle.py drives it with the same number of updates per case
and the same number of concurrent clients as the real cases, on the same server.

The shaped floor (`lifecycle.py --shaped`) is the same workflow carrying what a case carries,
as the server sees it: a real case's opening as its start input, its command as every update's
argument, results of its state's size, its search attributes, and a deadline timer pending
throughout. Between the floor and the shaped floor lies what the server spends on a case's
data; between the shaped floor and bihuan, what bihuan's own code costs.

Its worker runs in a process of its own, as the case worker does:
    .venv/bin/python bench/floor.py --address 127.0.0.1:7233 --namespace bihuan --task-queue q
"""

import argparse
import asyncio
import signal
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

TASK_QUEUE = "bench-floor"


@activity.defn
async def floor_step(n: int) -> int:
    return n


@workflow.defn
class FloorWorkflow:
    @workflow.init
    def __init__(self, steps: int) -> None:
        self._done = 0

    @workflow.run
    async def run(self, steps: int) -> int:
        await workflow.wait_condition(lambda: self._done >= steps)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._done

    @workflow.update
    async def step(self, n: int) -> int:
        await workflow.execute_local_activity(floor_step, n,
                                              start_to_close_timeout=timedelta(seconds=10))
        self._done += 1
        return self._done


@workflow.defn
class ShapedFloorWorkflow:
    @workflow.init
    def __init__(self, steps: int, intake: bytes, result_size: int) -> None:
        self._done, self._result = 0, bytes(result_size)

    @workflow.run
    async def run(self, steps: int, intake: bytes, result_size: int) -> bytes:
        # Never awaited, as a case's step clock mostly is not: the timer stays pending.
        self._deadline = asyncio.create_task(workflow.sleep(timedelta(days=3)))
        await workflow.wait_condition(lambda: self._done >= steps)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result

    @workflow.update
    async def step(self, command: bytes) -> bytes:
        await workflow.execute_local_activity(floor_step, self._done,
                                              start_to_close_timeout=timedelta(seconds=10))
        self._done += 1
        return self._result


async def serve(address: str, namespace: str, task_queue: str) -> None:
    client = await Client.connect(address, namespace=namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(client, task_queue=task_queue,
                      workflows=[FloorWorkflow, ShapedFloorWorkflow], activities=[floor_step]):
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--task-queue", default=TASK_QUEUE)
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.namespace, args.task_queue))

"""The floor: what bare Temporal does on this machine with the same shape of work as a case.

A trivial workflow that takes `steps` updates, each running one local activity that does
nothing, then completes. bench/lifecycle.py drives it with the same number of updates per case
and the same number of concurrent clients as the real cases, on the same server.

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


async def serve(address: str, namespace: str, task_queue: str) -> None:
    client = await Client.connect(address, namespace=namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(client, task_queue=task_queue, workflows=[FloorWorkflow],
                      activities=[floor_step]):
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--task-queue", default=TASK_QUEUE)
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.namespace, args.task_queue))

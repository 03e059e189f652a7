"""The worker process: case and whistle workflows, the activities that write the ledger, and the
relay that delivers the ledger's outbox to webhooks."""

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities.ledger import LedgerActivities
from ledger.db import make_engine
from config.settings import Settings
from ledger.repository import Ledger
from notifications.relay import run_relay
from runtime.logging import get_logger
from runtime.temporal import connect
from workflows.case import CaseWorkflow
from workflows.whistle import WhistleWorkflow

WORKFLOWS = [CaseWorkflow, WhistleWorkflow]


def build_worker(client: Client, task_queue: str, ledger: Ledger,
                 executor: ThreadPoolExecutor, max_cached_workflows: int = 500) -> Worker:
    ledger_activities = LedgerActivities(ledger)
    return Worker(client, task_queue=task_queue, workflows=WORKFLOWS,
                  activities=[ledger_activities.record, ledger_activities.record_whistle],
                  activity_executor=executor, max_cached_workflows=max_cached_workflows)


async def run_worker(settings: Settings) -> None:
    log = get_logger("worker")
    client = await connect(settings)
    engine = make_engine(settings.ledger_url)
    with ThreadPoolExecutor(max_workers=16) as executor:
        worker = build_worker(client, settings.task_queue, Ledger(engine), executor,
                              settings.worker_max_cached_workflows)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with worker:
            log.info("worker started", task_queue=settings.task_queue,
                     temporal=settings.temporal_address, namespace=settings.temporal_namespace,
                     webhooks=len(settings.webhook_urls))
            relay = asyncio.create_task(run_relay(settings, engine, stop))
            await stop.wait()
            # Leaving the block finishes in-flight tasks before the process ends.
            log.info("worker stopping")
            await relay
    engine.dispose()

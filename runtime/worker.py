"""The worker process: case and whistle workflows, the activities that write the ledger, the
relay that delivers the ledger's outbox to webhooks, and the sweep that starts the workflows of
cases recorded but not yet started."""

import asyncio
import compileall
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import PollerBehaviorAutoscaling, UnsandboxedWorkflowRunner, Worker

from activities.ledger import LedgerActivities
from ledger.db import make_engine
from config.settings import Settings
from ledger.repository import Ledger
from notifications.relay import run_hotline_relay, run_relay
from runtime.cases import run_start_sweep
from runtime.collector import freeze_start_up
from runtime.health import dependency_checks, serve_health
from runtime.logging import get_logger
from runtime.sandbox import workflow_runner
from runtime.temporal import connect, metrics_runtime
import workflows
from workflows.case import CaseWorkflow
from workflows.whistle import WhistleWorkflow

WORKFLOWS = [CaseWorkflow, WhistleWorkflow]
log = get_logger("worker")


def cache_workflow_bytecode() -> None:
    """The sandbox imports the workflow modules afresh for every case it takes up. Where Python
    writes no bytecode cache (PYTHONDONTWRITEBYTECODE, as container images often set), each of
    those imports compiled the source again: written here once instead."""
    if not compileall.compile_dir(Path(workflows.__file__).parent, quiet=2):
        log.warning("workflow bytecode not cached; each new case compiles its workflow module")


def build_worker(client: Client, task_queue: str, ledger: Ledger,
                 executor: ThreadPoolExecutor, shutdown_grace: timedelta = timedelta(0),
                 max_cached_workflows: int = 500, sandboxed: bool = True) -> Worker:
    """In the sandbox unless told otherwise: the tests' workers are, deployed ones as
    Settings.workflow_sandbox says."""
    if sandboxed:
        cache_workflow_bytecode()
    ledger_activities = LedgerActivities(ledger)
    return Worker(client, task_queue=task_queue, workflows=WORKFLOWS,
                  activities=[ledger_activities.record, ledger_activities.record_whistle],
                  activity_executor=executor, graceful_shutdown_timeout=shutdown_grace,
                  max_cached_workflows=max_cached_workflows,
                  workflow_runner=workflow_runner() if sandboxed else UnsandboxedWorkflowRunner(),
                  # New cases' first tasks come from the shared queue, which the default of one
                  # poller in five left waiting seconds behind the cached cases' tasks when many
                  # cases were opened at once: officers saw their first action hang. Scaling
                  # down to one poller, it left an action's task waiting for the next poll
                  # (22 ms at the median with 10 busy clients, 2 ms with four kept).
                  workflow_task_poller_behavior=PollerBehaviorAutoscaling(minimum=4))


async def run_worker(settings: Settings) -> None:
    runtime = (metrics_runtime(settings.worker_metrics_address)
               if settings.worker_metrics_address else None)
    client = await connect(settings, runtime)
    engine = make_engine(settings.ledger_url)
    stop = asyncio.Event()

    async def health() -> dict[str, str]:
        return {"worker": "stopping" if stop.is_set() else "ok",
                **await dependency_checks(client, engine)}

    with ThreadPoolExecutor(max_workers=16) as executor:
        ledger = Ledger(engine)
        worker = build_worker(client, settings.task_queue, ledger, executor,
                              timedelta(seconds=settings.worker_shutdown_grace_seconds),
                              settings.worker_max_cached_workflows, settings.workflow_sandbox)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        health_server = (await serve_health(settings.worker_health_host,
                                            settings.worker_health_port, health)
                         if settings.worker_health_port else None)
        async with worker:
            freeze_start_up()
            log.info("worker started", task_queue=settings.task_queue,
                     temporal=settings.temporal_address, namespace=settings.temporal_namespace,
                     webhooks=len(settings.webhook_urls), sandboxed=settings.workflow_sandbox,
                     sdk_metrics=settings.worker_metrics_address or None)
            relays = [asyncio.create_task(run(settings, engine, stop))
                      for run in (run_relay, run_hotline_relay)]
            relays.append(asyncio.create_task(run_start_sweep(
                client, ledger, settings.task_queue, stop,
                every=settings.case_start_sweep_seconds,
                grace=timedelta(seconds=settings.case_start_grace_seconds))))
            await stop.wait()
            # Leaving the block stops polling and lets in-flight tasks and activities finish
            # (up to the grace period); the relays finish the deliveries they are sending.
            log.info("worker stopping", grace_seconds=settings.worker_shutdown_grace_seconds)
            await asyncio.gather(*relays)
        if health_server:
            health_server.close()
    engine.dispose()
    log.info("worker stopped")

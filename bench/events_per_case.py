"""How many Temporal history events one ordinary case costs, from intake to closed.

One case of a known category is driven through the Temporal client on both servers:
intake (auto-routed) → accept → submit_rectification → verify pass → evaluate 满意 →
回头看 → recheck consolidated → closed.

- the time-skipping test server sleeps through the category's recheck interval, so the timer
  really fires; it is not the production server (it records an empty workflow task for every
  refused update, for one), so its count is only a cross-check;
- the dev server is the real server and the number that matters; nobody waits 14 days there,
  so a supervisor's bring_recheck_forward opens the recheck instead of the timer: one update
  more, and a cancelled timer instead of a fired one.

Run: .venv/bin/python bench/events_per_case.py [--sequence]   (or: make bench)
--sequence also lists every event in order.
"""

import asyncio
import sys
import tempfile
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from config.catalog import DEFAULT_CONFIG_DIR, load_catalog
from domain.models import Actor, CaseIntake, CasePolicy, Command, Location, Reporter, Source
from domain.roles import Role
from domain.stages import Stage
from ledger.db import make_engine
from ledger.migrate import upgrade
from ledger.repository import Ledger
from runtime.devserver import installed_binary
from runtime.scripts import run_and_exit
from runtime.temporal import data_converter, register_search_attributes
from runtime.worker import build_worker
from workflows import search_attributes
from runtime.cases import record_and_start

from workflows.case import CaseWorkflow

CATEGORY = "exposed_garbage"
TASK_QUEUE = "bench-events-per-case"

HOTLINE = Actor(id="hotline-12345", name="12345热线平台", role=Role.HOTLINE)
OFFICER = Actor(id="o017", name="扎西", role=Role.OFFICER, team="环境卫生")
INSPECTOR = Actor(id="i003", name="卓玛", role=Role.INSPECTOR)
SUPERVISOR = Actor(id="s001", name="领导小组办公室", role=Role.SUPERVISOR)


@dataclass
class Run:
    server: str
    events: int = 0
    updates: int = 0
    by_type: Counter = field(default_factory=Counter)
    bytes_by_type: Counter = field(default_factory=Counter)
    closed: bool = False
    refused_events: int | None = None
    history_bytes: int = 0
    sequence: list[str] = field(default_factory=list)

    @property
    def per_action(self) -> float:
        return self.events / self.updates if self.updates else 0.0


CATALOG = load_catalog(DEFAULT_CONFIG_DIR)


def case_policy() -> CasePolicy:
    return CATALOG.case_policy(CATALOG.category(CATEGORY), "normal")


def new_intake(policy: CasePolicy) -> CaseIntake:
    case_id = f"hotline-bench-{uuid.uuid4().hex[:12]}"
    return CaseIntake(
        case_id=case_id, request_id=case_id, opened_at=datetime.now(timezone.utc),
        source=Source.HOTLINE,
        external_id=case_id.removeprefix("hotline-"), description="吉日巷口垃圾堆积三天无人清运",
        location=Location(district="城关区", street="八廓街道", address="吉日巷12号旁"),
        reporter=Reporter(name="王女士", phone="13800000000"), actor=HOTLINE, policy=policy,
        calendar=CATALOG.calendar)


class Driver:
    """Sends officer actions as updates and counts them."""

    def __init__(self, handle: WorkflowHandle) -> None:
        self.handle = handle
        self.updates = 0

    async def act(self, kind: str, actor: Actor, **fields):
        request_id = uuid.uuid4().hex
        cmd = Command(request_id=request_id, actor=actor, payload={"kind": kind, **fields})
        self.updates += 1
        return await self.handle.execute_update(CaseWorkflow.act, cmd, id=request_id)

    async def to_recheck_pending(self) -> None:
        await self.act("accept", OFFICER, note="已签收")
        await self.act("submit_rectification", OFFICER, report="已清运垃圾并消杀",
                       evidence=["https://img.example.cn/after.jpg"])
        await self.act("verify", INSPECTOR, passed=True, note="现场已清理")
        await self.act("evaluate", HOTLINE, rating="满意")


async def history_reaches(handle: WorkflowHandle, *events: int, seconds: float = 10.0) -> None:
    """Wait until the history holds `events` in this order (others may come between).

    The benchmark watches the history instead of querying the case: a query that arrives while
    a ledger write (local activity) is running makes the worker end that workflow task early,
    and the write then needs a task of its own, three events that would blur the count.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        wanted = iter(events)
        step = next(wanted)
        for event in (await handle.fetch_history()).events:
            if event.event_type == step:
                step = next(wanted, None)
                if step is None:
                    return
        if loop.time() > deadline:
            names = ", ".join(EventType.Name(e) for e in events)
            raise RuntimeError(f"{handle.id}: the history never reached {names}")
        await asyncio.sleep(0.05)


async def opened(client: Client, ledger: Ledger, policy: CasePolicy) -> WorkflowHandle:
    """Start a case and let its first workflow task finish before anyone acts.

    An update that reached the server before that task would share it and save three events,
    a race that made the count differ from run to run; officers act minutes after intake.
    """
    intake = new_intake(policy)
    # As the API opens a case: recorded in the ledger, then started.
    await record_and_start(client, ledger, intake, TASK_QUEUE)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, intake.case_id)
    await history_reaches(handle, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    return handle


def detail(event) -> str:
    """What a marker or an upsert is about, for the listing."""
    if event.HasField("marker_recorded_event_attributes"):
        return f"  ({event.marker_recorded_event_attributes.marker_name})"
    if event.HasField("upsert_workflow_search_attributes_event_attributes"):
        fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
        return f"  ({', '.join(sorted(fields.indexed_fields))})"
    return ""


async def measure(run: Run, handle: WorkflowHandle, driver: Driver) -> Run:
    final = await handle.result()
    run.closed = final.stage == Stage.CLOSED
    history = await handle.fetch_history()
    run.events = len(history.events)
    run.updates = driver.updates
    run.sequence = [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") + detail(e)
                    for e in history.events]
    types = [name.split()[0] for name in run.sequence]
    run.by_type = Counter(types)
    for name, event in zip(types, history.events):
        run.bytes_by_type[name] += event.ByteSize()
    run.history_bytes = sum(run.bytes_by_type.values())
    return run


async def time_skipping_run(ledger: Ledger, executor: ThreadPoolExecutor,
                            policy: CasePolicy) -> Run:
    run = Run("time_skipping")
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=installed_binary("temporal-test-server"),
        data_converter=data_converter)
    try:
        await register_search_attributes(env.client)
        async with build_worker(env.client, TASK_QUEUE, ledger, executor):
            handle = await opened(env.client, ledger, policy)
            driver = Driver(handle)
            await driver.to_recheck_pending()
            await env.sleep(timedelta(days=policy.recheck_interval_days, minutes=1))
            await history_reaches(handle, EventType.EVENT_TYPE_TIMER_FIRED,
                                  EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
            row = ledger.case(handle.id)
            reached = row.stage if row else None
            if reached != Stage.RECHECKING:
                print(f"time_skipping: the 回头看 timer did not open the recheck (stage {reached})")
                return run
            await driver.act("recheck", INSPECTOR, result="consolidated", note="未反弹")
            await measure(run, handle, driver)
    finally:
        await env.shutdown()
    return run


async def refused_action_events(client: Client, ledger: Ledger, policy: CasePolicy) -> int:
    """Events added by an action refused by the validator (accept while already rectifying)."""
    handle = await opened(client, ledger, policy)
    driver = Driver(handle)
    await driver.act("accept", OFFICER)
    before = len((await handle.fetch_history()).events)
    try:
        await driver.act("accept", OFFICER)
    except WorkflowUpdateFailedError:
        pass
    else:
        raise RuntimeError("an accept in the rectifying stage was not refused")
    after = len((await handle.fetch_history()).events)
    await handle.terminate(reason="benchmark probe")
    return after - before


async def dev_server_run(ledger: Ledger, executor: ThreadPoolExecutor, policy: CasePolicy) -> Run:
    run = Run("dev_server")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=installed_binary("temporal"), namespace="bihuan",
        data_converter=data_converter,
        search_attributes=list(search_attributes.ALL_KEYS))
    try:
        async with build_worker(env.client, TASK_QUEUE, ledger, executor):
            handle = await opened(env.client, ledger, policy)
            driver = Driver(handle)
            await driver.to_recheck_pending()
            await driver.act("bring_recheck_forward", SUPERVISOR, note="基准测试: 提前回头看")
            await driver.act("recheck", INSPECTOR, result="consolidated", note="未反弹")
            await measure(run, handle, driver)
            run.refused_events = await refused_action_events(env.client, ledger, policy)
    finally:
        await env.shutdown()
    return run


def report(run: Run, how: str, sequence: bool) -> None:
    print(f"\n== {run.server}: {how}")
    print(f"   closed: {run.closed}")
    print(f"   total events: {run.events} ({run.history_bytes} bytes)")
    print(f"   officer actions (updates sent): {run.updates}")
    print(f"   events per officer action: {run.per_action:.1f}")
    for name, count in sorted(run.by_type.items(), key=lambda item: (-item[1], item[0])):
        print(f"   {count:4d}  {name:<40} {run.bytes_by_type[name]:7d} bytes")
    if sequence:
        print("   in order:")
        for number, name in enumerate(run.sequence, 1):
            print(f"   {number:4d}  {name}")


async def main(sequence: bool) -> int:
    policy = case_policy()
    with tempfile.TemporaryDirectory(prefix="bihuan-bench-") as tmp, \
            ThreadPoolExecutor(max_workers=8) as executor:
        url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        upgrade(url)
        engine = make_engine(url)
        try:
            ledger = Ledger(engine)
            skipping = await time_skipping_run(ledger, executor, policy)
            dev = await dev_server_run(ledger, executor, policy)
        finally:
            engine.dispose()

    report(skipping, f"the {policy.recheck_interval_days}-day 回头看 timer fired "
                     "(time skipped; test server, a cross-check only)", sequence)
    report(dev, "the recheck was brought forward by a supervisor (bring_recheck_forward) "
                f"instead of waiting {policy.recheck_interval_days} days", sequence)
    print(f"\nrefused action (accept while rectifying) on the dev server added "
          f"{dev.refused_events} events")
    print(f"events_per_case dev_server={dev.events} time_skipping={skipping.events} "
          f"officer_actions={dev.updates} events_per_action={dev.per_action:.1f}")
    ok = skipping.closed and dev.closed
    if not ok:
        print("FAILED: the case did not end closed on "
              + ", ".join(r.server for r in (skipping, dev) if not r.closed))
    return 0 if ok else 1


if __name__ == "__main__":
    run_and_exit(main(sequence="--sequence" in sys.argv[1:]))

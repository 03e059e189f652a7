"""Fault drills with real processes: the worker killed mid-write and mid-timer, the Temporal
server restarted under open cases, the ledger database gone for a while, webhooks delivered
twice. After each, every case is where it should be and the ledger matches the workflows
exactly: no event or notification lost or doubled."""

import asyncio
import signal
import sqlite3
import uuid
from contextlib import asynccontextmanager, closing
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.engine import make_url

from config.settings import Settings
from domain.models import Urgency
from domain.stages import Stage
from runtime.cases import start_case
from tests.api_client import OFFICER as API_OFFICER
from tests.api_client import act, in_process, new_case, open_case, post_case
from tests.conftest import postgres_ledger, sqlite_ledger
from tests.factories import HOTLINE, INSPECTOR, OFFICER, SUPERVISOR, cmd, intake, policy
from tests.processes import (DevServer, SqliteLock, TcpProxy, assert_ledger_matches_workflow,
                             bihuan_env, eventually, start_bihuan, stop)
from tests.webhook_receiver import Receiver
from workflows import search_attributes as sa
from workflows.case import CaseWorkflow

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def address(client) -> str:
    return client.service_client.config.target_host


async def update(handle, kind: str, actor, request_id: str | None = None, **fields):
    request_id = request_id or uuid.uuid4().hex
    return await handle.execute_update(CaseWorkflow.act, cmd(kind, actor, request_id, **fields),
                                       id=request_id)


async def to_closed(handle) -> None:
    """From verifying: passed, rated, rechecked early, consolidated."""
    await update(handle, "verify", INSPECTOR, passed=True)
    await update(handle, "evaluate", HOTLINE, rating="满意")
    await update(handle, "bring_recheck_forward", SUPERVISOR, note="抽查")
    await update(handle, "recheck", INSPECTOR, result="consolidated")
    assert (await handle.result()).stage == Stage.CLOSED


def queue() -> str:
    return f"drill-{uuid.uuid4().hex[:8]}"


async def test_worker_killed_mid_ledger_write_the_write_happens_once(dev_env, catalog, tmp_path):
    ledger = sqlite_ledger(tmp_path)
    task_queue = queue()
    env = bihuan_env(address(dev_env.client), task_queue, str(ledger.engine.url))
    worker = start_bihuan("worker", env)
    try:
        case = intake(policy(catalog))
        handle = await start_case(dev_env.client, case, task_queue)
        await update(handle, "accept", OFFICER)
        lock = SqliteLock(str(tmp_path / "ledger.db"))
        rectified = asyncio.create_task(update(handle, "submit_rectification", OFFICER,
                                               "rect-1", report="已清运"))
        await asyncio.sleep(2)  # the worker is inside the write, waiting for the lock
        assert not rectified.done()
        stop(worker, signal.SIGKILL)
        lock.release()
        worker = start_bihuan("worker", env)
        result = await asyncio.wait_for(rectified, 90)
        assert result.to_stage == Stage.VERIFYING
        await to_closed(handle)
    finally:
        stop(worker)
    await assert_ledger_matches_workflow(dev_env.client, ledger, case.case_id)
    assert [e.request_id for e in ledger.history(case.case_id)].count("rect-1") == 1


async def test_worker_killed_while_a_deadline_runs_the_timer_fires_once(dev_env, catalog,
                                                                        tmp_path):
    """An urgent case (签收 within 1 h) received 59 min 45 s ago: its 催办 is due at once, its
    超时 in 15 s, while no worker runs."""
    ledger = sqlite_ledger(tmp_path)
    task_queue = queue()
    env = bihuan_env(address(dev_env.client), task_queue, str(ledger.engine.url))
    worker = start_bihuan("worker", env)
    try:
        opened_at = datetime.now(timezone.utc) - timedelta(minutes=59, seconds=45)
        case = intake(policy(catalog, urgency=Urgency.URGENT), opened_at=opened_at,
                      urgency=Urgency.URGENT, calendar=catalog.calendar)
        handle = await start_case(dev_env.client, case, task_queue)
        await eventually(lambda: [e.action.value for e in ledger.history(case.case_id)]
                         == ["open", "remind"], what="the 催办")
        due = (await handle.query(CaseWorkflow.state)).clock.due_at
        stop(worker, signal.SIGKILL)
        await asyncio.sleep(max(0.0, (due - datetime.now(timezone.utc)).total_seconds()) + 2)
        assert [e.action.value for e in ledger.history(case.case_id)] == ["open", "remind"]
        worker = start_bihuan("worker", env)
        await eventually(lambda: ledger.case(case.case_id).overdue, what="the 超时")
        state = await handle.query(CaseWorkflow.state)
        assert state.overdue and state.stage == Stage.ASSIGNED
        assert (await handle.describe()).typed_search_attributes.get(sa.CASE_OVERDUE)
        await update(handle, "accept", OFFICER)  # late, and still accepted
    finally:
        stop(worker)
    assert [e.action.value for e in ledger.history(case.case_id)] == [
        "open", "remind", "overdue", "accept"]
    await assert_ledger_matches_workflow(dev_env.client, ledger, case.case_id)


@asynccontextmanager
async def server_and_worker(tmp_path, pragmas: bool = True, **worker_env: str):
    """A dev server on a file of its own, a SQLite ledger and a worker on a fresh queue; the
    worker and the server are stopped at the end."""
    server = DevServer(tmp_path / "var")
    server.pragmas = pragmas
    ledger = sqlite_ledger(tmp_path)
    task_queue = queue()
    client = await server.start()
    worker = start_bihuan("worker", bihuan_env(server.address, task_queue,
                                               str(ledger.engine.url), **worker_env))
    try:
        yield server, client, ledger, task_queue
    finally:
        stop(worker)
        server.stop()


def journal_mode(server: DevServer) -> str:
    with closing(sqlite3.connect(server.settings.temporal_db_file)) as db:
        return db.execute("PRAGMA journal_mode").fetchone()[0]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["stopped", "killed"])
async def test_temporal_restarted_on_its_file_while_cases_are_open(catalog, tmp_path, sig):
    """Stopped with Ctrl-C, or killed outright: every action it acknowledged is still there."""
    async with server_and_worker(tmp_path) as (server, client, ledger, task_queue):
        cases = [intake(policy(catalog)) for _ in range(3)]
        handles = [await start_case(client, c, task_queue) for c in cases]
        await update(handles[1], "accept", OFFICER)
        await update(handles[2], "accept", OFFICER)
        await update(handles[2], "submit_rectification", OFFICER, report="已清运")

        assert journal_mode(server) == "wal"
        server.stop(sig)
        await asyncio.sleep(2)  # the worker polls a server that is not there
        client = await server.start()
        handles = [client.get_workflow_handle_for(CaseWorkflow.run, c.case_id) for c in cases]
        assert [(await h.query(CaseWorkflow.state)).stage for h in handles] == [
            Stage.ASSIGNED, Stage.RECTIFYING, Stage.VERIFYING]
        await update(handles[0], "accept", OFFICER)
        for h in handles[:2]:
            await update(h, "submit_rectification", OFFICER, report="已清运")
        for h in handles:
            await to_closed(h)
        for c in cases:
            await assert_ledger_matches_workflow(client, ledger, c.case_id)


async def test_a_data_directory_from_before_the_write_ahead_log_keeps_its_cases(catalog,
                                                                              tmp_path):
    """A server file written with a rollback journal, as before, is converted on the next start
    and its open case goes on."""
    async with server_and_worker(tmp_path, pragmas=False) as (server, client, ledger,
                                                              task_queue):
        case = intake(policy(catalog))
        handle = await start_case(client, case, task_queue)
        await update(handle, "accept", OFFICER)
        server.stop()
        assert journal_mode(server) == "delete"

        server.pragmas = True
        client = await server.start()
        assert journal_mode(server) == "wal"
        handle = client.get_workflow_handle_for(CaseWorkflow.run, case.case_id)
        assert (await handle.query(CaseWorkflow.state)).stage == Stage.RECTIFYING
        await update(handle, "submit_rectification", OFFICER, report="已清运")
        await to_closed(handle)
        await assert_ledger_matches_workflow(client, ledger, case.case_id)


async def test_a_case_taken_in_while_temporal_is_down_is_kept_and_started_later(catalog,
                                                                                 tmp_path):
    """The API records the case and answers; the worker starts its workflow once Temporal is
    back, and officers act on it as on any other."""
    async with server_and_worker(tmp_path, case_start_sweep_seconds="0.5",
                                 case_start_grace_seconds="1") as (server, client, ledger,
                                                                    task_queue):
        settings = Settings(task_queue=task_queue, action_timeout_seconds=10)
        async with in_process(client, ledger, catalog, settings) as api:
            before = (await open_case(api))["case_id"]
            await act(api, before, "accept", {}, API_OFFICER)  # the worker is up
            server.stop()
            response = await post_case(api, new_case())
            assert response.status_code == 201, response.text
            case_id = response.json()["case_id"]
            assert ledger.case(case_id).stage == Stage.ASSIGNED
            assert ledger.start_pending(case_id)

            again = await server.start()
            await eventually(lambda: not ledger.start_pending(case_id), seconds=90,
                             what="the worker to start the case")
            # The API's own client, connected before the outage, reaches the case.
            accepted = await act(api, case_id, "accept", {}, API_OFFICER)
            assert accepted["to_stage"] == "rectifying"
            await assert_ledger_matches_workflow(again, ledger, case_id)
    assert [e.action.value for e in ledger.history(case_id)] == ["open", "accept"]
    assert [n.notification.kind for n in ledger.outbox.for_case(case_id)].count("assigned") == 1


async def test_ledger_database_gone_for_a_while_the_projection_catches_up(dev_env, catalog):
    task_queue = queue()
    with postgres_ledger() as ledger:
        url = make_url(ledger.engine.url.render_as_string(hide_password=False))
        proxy = TcpProxy(url.port or 5432)
        through_proxy = url.set(host="127.0.0.1", port=proxy.port)
        worker = start_bihuan("worker", bihuan_env(
            address(dev_env.client), task_queue,
            through_proxy.render_as_string(hide_password=False)))
        try:
            case = intake(policy(catalog))
            handle = await start_case(dev_env.client, case, task_queue)
            await update(handle, "accept", OFFICER)
            await eventually(lambda: len(ledger.history(case.case_id)) == 2, what="accept")

            proxy.cut()
            rectified = asyncio.create_task(update(handle, "submit_rectification", OFFICER,
                                                   report="已清运"))
            await asyncio.sleep(4)  # the write fails and is retried, the caller waits
            assert not rectified.done()
            assert len(ledger.history(case.case_id)) == 2
            proxy.restore()
            assert (await asyncio.wait_for(rectified, 90)).to_stage == Stage.VERIFYING
            await to_closed(handle)
        finally:
            stop(worker)
            proxy.cut()
        await assert_ledger_matches_workflow(dev_env.client, ledger, case.case_id)


async def test_a_webhook_delivered_twice_carries_the_same_event_id_and_body(dev_env, catalog,
                                                                             tmp_path):
    """The receiver takes longer than the worker waits: the worker sends again. Delivery is at
    least once; de-duplicating on X-Bihuan-Event-Id gives every notification exactly once."""
    ledger = sqlite_ledger(tmp_path)
    receiver = Receiver()
    task_queue = queue()
    receiver.hang(1, seconds=3)
    worker = start_bihuan("worker", bihuan_env(
        address(dev_env.client), task_queue, str(ledger.engine.url),
        webhook_urls=f'["{receiver.url}"]', webhook_secret="drill-secret",
        webhook_timeout_seconds="1", webhook_backoff_initial_seconds="0.2",
        outbox_poll_seconds="0.2"))
    try:
        case = intake(policy(catalog))
        handle = await start_case(dev_env.client, case, task_queue)
        await update(handle, "accept", OFFICER)
        stored = await eventually(
            lambda: [n for n in ledger.outbox.for_case(case.case_id)
                     if all(d.status == "delivered" for d in n.deliveries) and n.deliveries],
            what="delivered notifications")
        outbox = ledger.outbox.for_case(case.case_id)
        await eventually(lambda: set(receiver.event_ids()) >= {n.notification.event_id
                                                              for n in outbox})
        # The hung first copy is counted once its answer is due, after the second arrived.
        await eventually(lambda: 2 in receiver.event_ids().values(),
                         what="the hung delivery's first copy")
        outbox = await eventually(
            lambda: (found := ledger.outbox.for_case(case.case_id)) and all(
                d.status == "delivered" for n in found for d in n.deliveries) and found,
            what="every delivery recorded as delivered")
    finally:
        stop(worker)
        receiver.close()
    assert stored
    counts = receiver.event_ids()
    twice = [event_id for event_id, n in counts.items() if n == 2]
    assert len(twice) == 1 and set(counts.values()) <= {1, 2}
    first, second = [r for r in receiver.requests if r.event_id == twice[0]]
    assert first.body == second.body
    # De-duplicated on the event id, the receiver has every notification of the case once.
    assert sorted(counts) == sorted(n.notification.event_id for n in outbox)
    retried = next(n for n in outbox if n.notification.event_id == twice[0])
    assert [(d.status, d.attempts) for d in retried.deliveries] == [("delivered", 2)]
    await assert_ledger_matches_workflow(dev_env.client, ledger, case.case_id)

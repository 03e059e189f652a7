"""Callbacks to the 12345 platform: owed with each step the hotline is told of, stored in the
outbox with the event on SQLite and PostgreSQL, and delivered to a real HTTP receiver standing
in for the platform, which verifies each signature, de-duplicates on the event id and orders by
the case's sequence number, through failures, a hang, a receiver down and back, and a relay
that stops and is replaced."""

import asyncio
from datetime import datetime, timedelta

import pytest

from config.settings import Settings
from domain import lifecycle, notices
from domain.actions import Action
from domain.models import Audience, LedgerEntry, Source
from ledger.hotline import HotlineRecords
from ledger.outbox import Outbox
from notifications.relay import OutboxRelay, RetryPolicy, run_hotline_relay, run_relay
from notifications.webhook import WebhookSender
from domain.hotline import FollowUpResult, WorkOrder
from tests.api_client import in_process
from tests.conftest import sqlite_ledger
from tests.factories import (DISPATCHER, INSPECTOR, OFFICER, SUPERVISOR, bearer, cmd, intake,
                             policy)
from tests.test_outbox import FAST, _until, drain_after_backoff
from tests.webhook_receiver import SECRET, Platform, Receiver
from tests.workflow_steps import case_worker, starter
from workflows.case import CaseWorkflow

HOTLINE_ONLY = [Audience.HOTLINE.value]
# accept, rectify, verify (fails), rectify, verify, evaluate, 回头看 (rebounded), rectify, verify,
# evaluate, 回头看 (consolidated): every step the platform hears of, and some it does not.
LIFE = [("accept", OFFICER, {}), ("submit_rectification", OFFICER, {"report": "已清运"}),
        ("verify", INSPECTOR, {"passed": False}),
        ("submit_rectification", OFFICER, {"report": "再次清运"}),
        ("verify", INSPECTOR, {"passed": True}),
        ("evaluate", DISPATCHER, {"rating": "satisfied"}),
        ("bring_recheck_forward", SUPERVISOR, {}),
        ("recheck", INSPECTOR, {"result": "rebounded"}),
        ("submit_rectification", OFFICER, {"report": "第三次清运"}),
        ("verify", INSPECTOR, {"passed": True}),
        ("evaluate", DISPATCHER, {"rating": "satisfied"}),
        ("bring_recheck_forward", SUPERVISOR, {}),
        ("recheck", INSPECTOR, {"result": "consolidated"})]
LIFE_CALLBACKS = ["accepted", "rectified", "rectified", "verified", "reopened", "rectified",
                  "verified", "closed"]


def lived(catalog, steps=LIFE, overdue_first: bool = False, **case) -> list[LedgerEntry]:
    """The ledger entries of a case taken through `steps` as its workflow would hand them over
    (the 签收 step first running past its deadline when `overdue_first`)."""
    opened = intake(policy(catalog), calendar=catalog.calendar, **case)
    state, event = lifecycle.open_case(opened)
    entries = [LedgerEntry(event=event, state=state.model_copy(deep=True),
                           notifications=notices.for_case_event(event, state))]
    now = opened.opened_at
    commands = [cmd(kind, actor, **fields) for kind, actor, fields in steps]
    if overdue_first:
        commands.insert(0, lifecycle.system_command(
            Action.OVERDUE, "overdue:accept", step="accept", due_at=state.clock.due_at))
    for command in commands:
        now += timedelta(hours=1)
        event = lifecycle.apply(state, command, now, catalog.calendar)
        entries.append(LedgerEntry(event=event, state=state.model_copy(deep=True),
                                   notifications=notices.for_case_event(event, state)))
    return entries


def record(ledger, entries: list[LedgerEntry]) -> str:
    for entry in entries:
        ledger.record(entry)
    return entries[0].event.case_id


def callbacks(ledger, case_id: str) -> list:
    return [e.notification for e in Outbox(ledger.engine).for_case(case_id)
            if e.notification.audience == Audience.HOTLINE]


def hotline_relay(ledger, url: str, sender: WebhookSender,
                  retry: RetryPolicy = FAST) -> OutboxRelay:
    return OutboxRelay(ledger.engine, [url], sender, retry=retry,
                       outbox=Outbox(ledger.engine, audiences=HOTLINE_ONLY))


def kinds(bodies) -> list[str]:
    return [(b["kind"] if isinstance(b, dict) else b.kind).removeprefix("hotline_")
            for b in bodies]


# ---- what is owed --------------------------------------------------------------------------------

def test_each_step_the_hotline_hears_of_is_in_the_outbox_once_with_its_sequence(any_ledger,
                                                                               catalog):
    entries = lived(catalog, overdue_first=True)
    case_id = record(any_ledger, entries)
    record(any_ledger, entries)  # a retried activity adds nothing
    owed = callbacks(any_ledger, case_id)
    assert kinds(owed) == ["overdue"] + LIFE_CALLBACKS
    sequences = [n.data["sequence"] for n in owed]
    assert sequences == sorted(set(sequences))
    events = {e.event.seq: e.event for e in entries}
    for n in owed:
        event = events[n.data["sequence"]]
        assert n.event_id == f"{case_id}:{event.seq}:hotline:{kinds([n])[0]}"
        assert n.occurred_at == event.occurred_at and n.data["stage"] == event.to_stage.value
        assert n.data["tickets"] == [case_id.removeprefix("hotline-")]
    assert owed[0].data["step"] == "accept" and "签收" in owed[0].title
    verified = next(n for n in owed if n.kind == "hotline_verified")
    assert verified.data["evaluate_by"] and verified.data["stage"] == "evaluating"
    # Never the caller's name or phone.
    assert all("王女士" not in n.title + n.body + str(n.data) for n in owed)


def test_a_case_of_another_source_owes_the_hotline_nothing_until_a_ticket_is_merged(
        any_ledger, catalog):
    entries = lived(catalog, source=Source.GRID)
    case_id = entries[0].event.case_id
    record(any_ledger, entries[:2])
    assert callbacks(any_ledger, case_id) == []
    order = WorkOrder(ticket_no="2026113000077", call_time=entries[0].event.occurred_at,
                      content="垃圾又堆起来了", category_code="0301",
                      address=entries[0].state.location)
    HotlineRecords(any_ledger.engine).add_ticket(order, case_id, merged=True)
    record(any_ledger, entries[2:])
    owed = callbacks(any_ledger, case_id)
    assert kinds(owed) == LIFE_CALLBACKS[1:]
    assert {tuple(n.data["tickets"]) for n in owed} == {("2026113000077",)}


def test_a_rejected_ticket_tells_the_hotline_why(any_ledger, catalog):
    entries = lived(catalog, steps=[("reject", DISPATCHER, {"reason": "重复上报",
                                                            "duplicate_of": "hotline-1"})])
    (owed,) = callbacks(any_ledger, record(any_ledger, entries))
    assert owed.kind == "hotline_invalid"
    assert (owed.data["reason"], owed.data["duplicate_of"]) == ("重复上报", "hotline-1")


# ---- delivered -----------------------------------------------------------------------------------

async def test_out_of_order_and_duplicate_deliveries_end_in_one_ordered_list(
        tmp_path, catalog, receiver, sender):
    ledger = sqlite_ledger(tmp_path)
    case_id = record(ledger, lived(catalog))
    owed = callbacks(ledger, case_id)
    accepted, verified = owed[0], owed[3]
    receiver.fail(1, event_id=accepted.event_id)  # comes after the later ones
    # Taken in but not acknowledged (the answer lost on the way back): sent again.
    receiver.fail(1, status=502, event_id=verified.event_id)
    relay = hotline_relay(ledger, receiver.url, sender)
    first = await relay.drain_once()
    assert (first.delivered, first.retrying) == (len(owed) - 2, 2)
    assert (await drain_after_backoff(relay)).delivered == 2
    platform = Platform(receiver)
    sent = receiver.event_ids()
    assert (sent[accepted.event_id], sent[verified.event_id]) == (2, 2)
    assert sum(sent.values()) == len(owed) + 2
    arrival = platform.arrival(case_id)
    # The platform heard of the rectification before it (finally) heard of the acceptance.
    assert arrival.index("hotline_rectified") < len(arrival) - 1 - \
        arrival[::-1].index("hotline_accepted")
    assert kinds(platform.callbacks(case_id)) == LIFE_CALLBACKS
    ledger.engine.dispose()


async def test_a_receiver_down_for_a_while_gets_everything_when_it_is_back(
        tmp_path, catalog, sender):
    ledger = sqlite_ledger(tmp_path)
    down = Receiver()
    url, port = down.url, down.server.server_address[1]
    down.close()
    case_id = record(ledger, lived(catalog))
    relay = hotline_relay(ledger, url, sender)
    assert (await relay.drain_once()).retrying == len(LIFE_CALLBACKS)

    async with in_process(None, ledger, catalog) as api:
        pending = (await api.get("/admin/outbox", headers=bearer(SUPERVISOR), params={
            "status": "pending", "audience": "hotline", "case_id": case_id})).json()
        assert len(pending["items"]) == len(LIFE_CALLBACKS)
        assert {(i["attempts"], i["endpoint"]) for i in pending["items"]} == {(1, url)}
        assert all(i["last_error"].startswith("ConnectError") for i in pending["items"])
        assert sorted(i["sequence"] for i in pending["items"]) == \
            [n.data["sequence"] for n in callbacks(ledger, case_id)]

        back = Receiver(port=port)
        try:
            assert (await drain_after_backoff(relay)).delivered == len(LIFE_CALLBACKS)
            assert kinds(Platform(back).callbacks(case_id)) == LIFE_CALLBACKS
        finally:
            back.close()
        after = (await api.get("/admin/outbox", headers=bearer(SUPERVISOR), params={
            "status": "pending", "case_id": case_id})).json()
        assert after["items"] == [] and after["counts"]["delivered"] == len(LIFE_CALLBACKS)
    ledger.engine.dispose()


async def test_callbacks_never_acknowledged_are_listed_as_failed_to_operators_only(
        tmp_path, catalog, receiver, sender):
    ledger = sqlite_ledger(tmp_path)
    case_id = record(ledger, lived(catalog, steps=LIFE[:1]))
    receiver.fail(100, status=503)
    relay = hotline_relay(ledger, receiver.url, sender,
                          retry=RetryPolicy(initial_seconds=0.01, max_seconds=0.02,
                                            max_attempts=2))
    await relay.drain_once()
    assert (await drain_after_backoff(relay)).failed == 1
    async with in_process(None, ledger, catalog) as api:
        failed = (await api.get("/admin/outbox?status=failed&audience=hotline",
                                headers=bearer(SUPERVISOR))).json()
        (item,) = failed["items"]
        assert (item["case_id"], item["kind"], item["status"], item["attempts"]) == \
            (case_id, "hotline_accepted", "failed", 2)
        assert item["last_error"] == "HTTP 503 Service Unavailable"
        assert failed["counts"] == {"pending": 0, "failed": 1, "delivered": 0}
        for who in (OFFICER, DISPATCHER):
            refused = await api.get("/admin/outbox", headers=bearer(who))
            assert (refused.status_code, refused.json()["code"]) == (403, "role_not_allowed")
        wrong = await api.get("/admin/outbox?status=delivered", headers=bearer(SUPERVISOR))
        assert (wrong.status_code, wrong.json()["code"]) == (422, "invalid_input")
    ledger.engine.dispose()


async def test_a_relay_stopped_midway_and_replaced_loses_no_callback(tmp_path, catalog,
                                                                    receiver):
    ledger = sqlite_ledger(tmp_path)
    settings = Settings(hotline_callback_url=receiver.url, hotline_callback_secret=SECRET,
                        outbox_poll_seconds=0.05, webhook_backoff_initial_seconds=0.01,
                        webhook_backoff_max_seconds=0.02)
    entries = lived(catalog)
    case_id = record(ledger, entries[:6])  # up to the passed verification: 4 callbacks
    receiver.fail(3)
    stop = asyncio.Event()
    first = asyncio.create_task(run_hotline_relay(settings, ledger.engine, stop))
    await _until(lambda: len(receiver.requests) >= 4)
    stop.set()
    await asyncio.wait_for(first, 5)
    # The rest of the case happens while no relay runs; a new one carries on from the ledger.
    record(ledger, entries[6:])
    stop = asyncio.Event()
    second = asyncio.create_task(run_hotline_relay(settings, ledger.engine, stop))
    await _until(lambda: len(Platform(receiver).callbacks(case_id)) == len(LIFE_CALLBACKS))
    stop.set()
    await asyncio.wait_for(second, 5)
    assert kinds(Platform(receiver).callbacks(case_id)) == LIFE_CALLBACKS
    assert Outbox(ledger.engine).claim([receiver.url], entries[-1].event.occurred_at
                                       + timedelta(days=1), 100, timedelta(seconds=1)) == []
    ledger.engine.dispose()


async def test_hotline_callbacks_go_to_the_hotline_url_and_nowhere_else(tmp_path, catalog,
                                                                      receivers):
    ledger = sqlite_ledger(tmp_path)
    platform, hooks = receivers(), receivers()
    settings = Settings(webhook_urls=[hooks.url], webhook_secret=SECRET,
                        hotline_callback_url=platform.url, hotline_callback_secret=SECRET,
                        outbox_poll_seconds=0.05)
    case_id = record(ledger, lived(catalog, steps=LIFE[:2], overdue_first=True))
    stop = asyncio.Event()
    running = [asyncio.create_task(run(settings, ledger.engine, stop))
               for run in (run_relay, run_hotline_relay)]
    await _until(lambda: len(platform.requests) == 3 and len(hooks.requests) == 3)
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*running), 5)
    assert kinds(Platform(platform).callbacks(case_id)) == ["overdue", "accepted", "rectified"]
    assert {r.json()["audience"] for r in hooks.requests} == {"team", "supervisors"}
    ledger.engine.dispose()


def test_a_hotline_url_outside_development_needs_a_secret():
    with pytest.raises(ValueError, match="BIHUAN_HOTLINE_CALLBACK_SECRET"):
        Settings(environment="production", jwt_secret="x" * 40,
                 hotline_callback_url="https://12345.example/callbacks")
    with pytest.raises(ValueError, match="not an http"):
        Settings(hotline_callback_url="ftp://12345.example/callbacks")


# ---- from a real workflow's timer ----------------------------------------------------------------

async def test_a_real_overdue_签收_calls_the_hotline_back(own_time_env, catalog, executor,
                                                       tmp_path):
    ledger = sqlite_ledger(tmp_path)
    async with case_worker(own_time_env, ledger, executor, "hotline-overdue") as started:
        handle = await starter(own_time_env, catalog, "hotline-overdue", started)()
        due = (await handle.query(CaseWorkflow.state)).clock.due_at
        await own_time_env.sleep(due - await own_time_env.get_current_time()
                                 + timedelta(minutes=1))
        await _until(lambda: "overdue" in [e.action.value for e in ledger.history(handle.id)])
    (owed,) = callbacks(ledger, handle.id)
    overdue = next(e for e in ledger.history(handle.id) if e.action == Action.OVERDUE)
    assert (owed.kind, owed.data["sequence"], owed.data["step"]) == \
        ("hotline_overdue", overdue.seq, "accept")
    assert datetime.fromisoformat(owed.data["due_at"]) == due
    ledger.engine.dispose()


# ---- the ledger's record of work orders, on both databases ---------------------------------------

def test_tickets_and_follow_up_results_are_stored_once(any_ledger, catalog):
    records = HotlineRecords(any_ledger.engine)
    entries = lived(catalog, steps=LIFE[:1])
    case_id = record(any_ledger, entries)
    order = WorkOrder(ticket_no="2026113000088", call_time=entries[0].event.occurred_at,
                      caller={"name": "次仁", "phone": "13900000003"}, content="又堆满了",
                      category_code="0301", address=entries[0].state.location)
    first = records.add_ticket(order, case_id, merged=True)
    again = records.add_ticket(order, "hotline-elsewhere", merged=False)
    assert (again.case_id, again.merged) == (case_id, True), "a stored ticket keeps its case"
    assert [t.ticket_no for t in records.tickets_of(case_id)] == [first.ticket_no]
    assert [s.case_id for s in records.open_cases("exposed_garbage", "城关区")
            if s.case_id == case_id] == [case_id]

    result = FollowUpResult(rating="满意", resolved=True)
    stored = records.store_follow_up(order.ticket_no, "k1", case_id, "rectifying", result)
    assert records.store_follow_up(order.ticket_no, "k1", case_id, "rectifying",
                                   result).id == stored.id
    records.set_follow_up_outcome(stored.id, "not_awaiting")
    other = records.store_follow_up(order.ticket_no, "k2", case_id, "rectifying", result)
    assert [(r["id"], r["outcome"]) for r in records.follow_ups(case_id)] == [
        (stored.id, "not_awaiting"), (other.id, "received")]

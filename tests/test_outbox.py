"""Notifications: the outbox written with the ledger, and webhooks delivered from it to a real
HTTP receiver, on SQLite and on PostgreSQL."""

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain import lifecycle
from domain.models import LedgerEntry, Notification
from ledger import outbox
from ledger.outbox import Outbox
from ledger.tables import CaseEventRow, CaseRow, OutboxRow
from config.settings import Settings
from notifications.relay import OutboxRelay, RetryPolicy, run_relay
from notifications.webhook import WebhookSender, verify_signature
from tests.conftest import postgres_ledger, sqlite_ledger
from tests.factories import intake, notification, policy
from tests.webhook_receiver import SECRET

FAST = RetryPolicy(initial_seconds=0.01, multiplier=2.0, max_seconds=0.02, max_attempts=8)


# ---- helpers -------------------------------------------------------------------------------------

def opened(catalog, make_notifications=lambda case_id: []) -> LedgerEntry:
    """The ledger entry of a newly opened case, with the notifications it causes."""
    state, event = lifecycle.open_case(intake(policy(catalog)))
    return LedgerEntry(event=event, state=state,
                       notifications=make_notifications(state.case_id))


def recorded(ledger, catalog, count: int = 1, **overrides) -> list[Notification]:
    """Open a case whose opening causes `count` notifications; return them."""
    entry = opened(catalog, lambda case_id: [notification(case_id, **overrides)
                                             for _ in range(count)])
    ledger.record(entry)
    return entry.notifications


def relay(ledger, endpoints, sender, retry=FAST, **options) -> OutboxRelay:
    return OutboxRelay(ledger.engine, endpoints, sender, retry=retry, **options)


def deliveries(ledger, n: Notification) -> dict:
    entry = next(e for e in Outbox(ledger.engine).for_case(n.case_id)
                 if e.notification.event_id == n.event_id)
    return {d.endpoint: d for d in entry.deliveries}


async def drain_after_backoff(r: OutboxRelay):
    await asyncio.sleep(r.retry.max_seconds + 0.03)
    return await r.drain_once()


def count(ledger, table, case_id: str) -> int:
    with Session(ledger.engine) as session:
        return session.scalar(select(func.count()).select_from(table)
                              .where(table.case_id == case_id))


# ---- the outbox in the ledger --------------------------------------------------------------------

def test_record_writes_the_notifications_with_the_event_and_a_retry_adds_none(any_ledger,
                                                                              catalog):
    entry = opened(catalog, lambda case_id: [notification(case_id, "assigned"),
                                             notification(case_id, "reminder")])
    for _ in range(3):
        any_ledger.record(entry)
    case_id = entry.event.case_id
    assert count(any_ledger, OutboxRow, case_id) == 2
    stored = Outbox(any_ledger.engine).for_case(case_id)
    assert [e.notification for e in stored] == entry.notifications
    assert all(e.deliveries == () for e in stored)


def test_a_notification_the_database_refuses_takes_its_event_with_it(any_ledger, catalog):
    # Built without validation so the database, not pydantic, is what refuses it.
    entry = opened(catalog, lambda case_id: [
        notification(case_id), Notification.model_construct(**{
            **notification(case_id).model_dump(), "title": None})])
    with pytest.raises(IntegrityError):
        any_ledger.record(entry)
    case_id = entry.event.case_id
    assert (count(any_ledger, CaseEventRow, case_id), count(any_ledger, CaseRow, case_id),
            count(any_ledger, OutboxRow, case_id)) == (0, 0, 0)


# ---- delivery ------------------------------------------------------------------------------------

async def test_the_relay_delivers_a_signed_notification(any_ledger, catalog, receiver, sender):
    (n,) = recorded(any_ledger, catalog)
    counts = await relay(any_ledger, [receiver.url], sender).drain_once()
    assert (counts.fanned_out, counts.delivered, counts.attempts) == (1, 1, 1)

    (request,) = receiver.requests
    assert request.path == "/hooks/bihuan"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.event_id == n.event_id
    timestamp, signature = (request.headers["X-Bihuan-Timestamp"],
                            request.headers["X-Bihuan-Signature"])
    assert abs(int(timestamp) - time.time()) < 60 and signature.startswith("sha256=")
    assert verify_signature(SECRET, timestamp, request.body, signature)
    assert not verify_signature("another-secret", timestamp, request.body, signature)
    assert not verify_signature(SECRET, timestamp, request.body + b" ", signature)
    assert not verify_signature(SECRET, timestamp, request.body, signature,
                                now=int(timestamp) + 3600)
    assert not verify_signature(SECRET, None, request.body, None)
    assert Notification.model_validate(request.json()) == n

    delivery = deliveries(any_ledger, n)[receiver.url]
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 1, None)
    assert delivery.delivered_at is not None


async def test_failing_twice_then_succeeding_is_delivered_on_the_third_attempt(
        any_ledger, catalog, receiver, sender):
    (n,) = recorded(any_ledger, catalog)
    receiver.fail(2)
    r = relay(any_ledger, [receiver.url], sender)

    assert (await r.drain_once()).retrying == 1
    delivery = deliveries(any_ledger, n)[receiver.url]
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.last_error == "HTTP 500 Internal Server Error"
    assert (await drain_after_backoff(r)).retrying == 1
    assert (await drain_after_backoff(r)).delivered == 1
    assert receiver.event_ids() == {n.event_id: 3}
    delivery = deliveries(any_ledger, n)[receiver.url]
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 3, None)


async def test_a_drain_tries_each_delivery_once_even_if_its_retry_is_due_at_once(
        any_ledger, catalog, receiver, sender):
    (n,) = recorded(any_ledger, catalog)
    receiver.fail(100)
    r = relay(any_ledger, [receiver.url], sender, retry=RetryPolicy(initial_seconds=0))
    assert (await r.drain_once()).attempts == 1
    assert (await r.drain_once()).attempts == 1
    assert receiver.event_ids() == {n.event_id: 2}


async def test_a_receiver_that_hangs_is_given_up_on_and_tried_again(
        any_ledger, catalog, receiver):
    (n,) = recorded(any_ledger, catalog)
    receiver.hang(1, seconds=10)
    async with WebhookSender(SECRET, timeout_seconds=0.3) as quick:
        r = relay(any_ledger, [receiver.url], quick)
        started = time.monotonic()
        assert (await r.drain_once()).retrying == 1
        assert time.monotonic() - started < 3
        assert deliveries(any_ledger, n)[receiver.url].last_error == "timed out after 0.3s"
        assert (await drain_after_backoff(r)).delivered == 1
    assert receiver.event_ids() == {n.event_id: 2}


async def test_after_max_attempts_the_delivery_fails_and_keeps_its_last_error(
        any_ledger, catalog, receiver, sender):
    (n,) = recorded(any_ledger, catalog)
    receiver.fail(100, status=503)
    r = relay(any_ledger, [receiver.url], sender,
              retry=RetryPolicy(initial_seconds=0.01, max_seconds=0.02, max_attempts=3))
    await r.drain_once()
    await drain_after_backoff(r)
    assert (await drain_after_backoff(r)).failed == 1
    assert (await drain_after_backoff(r)).attempts == 0
    assert receiver.event_ids() == {n.event_id: 3}
    delivery = deliveries(any_ledger, n)[receiver.url]
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert delivery.last_error == "HTTP 503 Service Unavailable"


async def test_each_endpoint_gets_its_own_delivery(any_ledger, catalog, receivers, sender):
    first, second = receivers(), receivers()
    (n,) = recorded(any_ledger, catalog)
    second.fail(1)
    r = relay(any_ledger, [first.url, second.url], sender)

    counts = await r.drain_once()
    assert (counts.fanned_out, counts.delivered, counts.retrying) == (2, 1, 1)
    assert {url: d.status for url, d in deliveries(any_ledger, n).items()} == \
        {first.url: "delivered", second.url: "pending"}
    assert (await drain_after_backoff(r)).delivered == 1
    assert first.event_ids() == {n.event_id: 1} and second.event_ids() == {n.event_id: 2}
    assert {d.status for d in deliveries(any_ledger, n).values()} == {"delivered"}


async def test_a_restarted_relay_resumes_retries_and_does_not_resend(
        any_ledger, catalog, receiver):
    sent, retried = recorded(any_ledger, catalog, count=2)
    receiver.fail(1, event_id=retried.event_id)
    async with WebhookSender(SECRET) as before:
        counts = await relay(any_ledger, [receiver.url], before).drain_once()
    assert (counts.delivered, counts.retrying) == (1, 1)

    await asyncio.sleep(FAST.max_seconds + 0.03)
    async with WebhookSender(SECRET) as after:
        counts = await relay(any_ledger, [receiver.url], after).drain_once()
    assert (counts.fanned_out, counts.delivered, counts.attempts) == (0, 1, 1)
    assert receiver.event_ids() == {sent.event_id: 1, retried.event_id: 2}
    assert deliveries(any_ledger, retried)[receiver.url].attempts == 2


async def test_a_delivery_taken_by_a_relay_that_died_is_sent_when_its_lease_ends(
        any_ledger, catalog, receiver, sender):
    (n,) = recorded(any_ledger, catalog)
    box = Outbox(any_ledger.engine)
    box.fan_out([receiver.url])
    # The dead relay claimed it and never said how the send went.
    (claim,) = box.claim([receiver.url], due_by=datetime.now(timezone.utc), limit=10,
                         lease=timedelta(seconds=0.2))
    r = relay(any_ledger, [receiver.url], sender)
    assert (await r.drain_once()).attempts == 0
    await asyncio.sleep(0.3)
    assert (await r.drain_once()).delivered == 1
    assert receiver.event_ids() == {n.event_id: 1}
    assert deliveries(any_ledger, n)[receiver.url].attempts == claim.attempt + 1 == 2


async def test_relays_draining_together_send_each_notification_once(
        any_ledger, catalog, receiver):
    notifications = recorded(any_ledger, catalog, count=30)
    async with WebhookSender(SECRET) as a, WebhookSender(SECRET) as b:
        first = relay(any_ledger, [receiver.url], a, batch_size=4, concurrency=2)
        second = relay(any_ledger, [receiver.url], b, batch_size=4, concurrency=2)
        counts = await asyncio.gather(first.drain_once(), second.drain_once())
    assert sum(c.delivered for c in counts) == 30
    assert receiver.event_ids() == {n.event_id: 1 for n in notifications}


async def test_chinese_and_tibetan_text_arrive_intact(any_ledger, catalog, receiver, sender):
    (n,) = recorded(any_ledger, catalog, title="督办：吉日巷口垃圾堆积超时未签收",
                    body="责任方环境卫生专班，请于今日17时前签收。ལྷ་ས།",
                    data={"step": "accept", "place": "城关区八廓街道", "限时": "4工作小时"})
    await relay(any_ledger, [receiver.url], sender).drain_once()
    (request,) = receiver.requests
    assert "督办：吉日巷口垃圾堆积超时未签收".encode("utf-8") in request.body
    assert b"\\u" not in request.body
    body = request.json()
    assert (body["title"], body["body"], body["data"]) == (n.title, n.body, n.data)


async def test_without_endpoints_nothing_is_sent_and_the_outbox_keeps_the_row(
        any_ledger, catalog, receiver, sender):
    (n,) = recorded(any_ledger, catalog)
    counts = await relay(any_ledger, [], sender).drain_once()
    assert counts.fanned_out == counts.attempts == 0
    assert receiver.requests == []
    (entry,) = Outbox(any_ledger.engine).for_case(n.case_id)
    assert entry.notification == n and entry.deliveries == ()


async def test_run_delivers_until_stopped(any_ledger, catalog, receiver, sender):
    r = relay(any_ledger, [receiver.url], sender, poll_seconds=0.05)
    stop = asyncio.Event()
    running = asyncio.create_task(r.run(stop))
    (n,) = recorded(any_ledger, catalog)
    await _until(lambda: receiver.requests)
    stop.set()
    await asyncio.wait_for(running, 5)
    assert receiver.event_ids() == {n.event_id: 1}


async def test_run_relay_delivers_with_what_the_settings_say(tmp_path, catalog, receiver):
    ledger = sqlite_ledger(tmp_path)
    settings = Settings(webhook_urls=[receiver.url], webhook_secret="from-settings",
                        outbox_poll_seconds=0.05)
    stop = asyncio.Event()
    running = asyncio.create_task(run_relay(settings, ledger.engine, stop))
    (n,) = recorded(ledger, catalog)
    await _until(lambda: receiver.requests)
    stop.set()
    await asyncio.wait_for(running, 5)
    ledger.engine.dispose()
    (request,) = receiver.requests
    assert request.event_id == n.event_id
    assert verify_signature("from-settings", request.headers["X-Bihuan-Timestamp"], request.body,
                            request.headers["X-Bihuan-Signature"])


async def _until(condition, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


# ---- fan-out -------------------------------------------------------------------------------------

def test_fan_out_is_idempotent_and_a_new_endpoint_gets_the_backlog(any_ledger, catalog):
    box = Outbox(any_ledger.engine, settle=timedelta(0))
    first = recorded(any_ledger, catalog, count=2)
    assert box.fan_out(["http://a.test/hook"]) == 2
    assert box.fan_out(["http://a.test/hook"]) == 0
    later = recorded(any_ledger, catalog)
    assert box.fan_out(["http://a.test/hook", "http://b.test/hook"]) == 1 + 3
    for n in first + later:
        assert set(deliveries(any_ledger, n)) == {"http://a.test/hook", "http://b.test/hook"}


@pytest.mark.postgres
def test_a_notification_committed_late_is_still_fanned_out(catalog):
    """PostgreSQL hands out ids before commit: a row may appear below ids already seen."""
    with postgres_ledger() as ledger:
        box, url = Outbox(ledger.engine), "http://a.test/hook"
        late = notification("hotline-late")
        with Session(ledger.engine) as session, session.begin():
            outbox.add(session.connection(), [late], postgresql.insert)
            (early,) = recorded(ledger, catalog)  # takes a higher id, commits first
            assert box.fan_out([url]) == 1
        assert box.fan_out([url]) == 1
        assert set(deliveries(ledger, late)) == set(deliveries(ledger, early)) == {url}

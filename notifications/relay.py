"""The outbox relay: fans outbox rows out to one delivery per webhook endpoint and sends them.

Every retry decision is written to the delivery row (attempts, next_attempt_at, status) before
the next send, so a relay that restarts, or another relay on the same database, carries on from
there. Database work is synchronous SQLAlchemy and runs in threads to keep the event loop free
for the sends.
"""

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from sqlalchemy import Engine

from config.settings import Settings
from domain.models import Audience
from ledger.outbox import Claim, Outbox
from notifications.webhook import SendResult, WebhookSender
from runtime.logging import get_logger

log = get_logger("notifications.relay")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: after failed attempt n the next waits
    min(initial * multiplier ** (n - 1), max); after max_attempts the delivery has failed."""
    initial_seconds: float = 2.0
    multiplier: float = 2.0
    max_seconds: float = 600.0
    max_attempts: int = 8

    def delay(self, attempt: int) -> timedelta:
        # Capped before raising to a power so a large attempt count cannot overflow.
        exponent = min(attempt - 1, 64)
        return timedelta(seconds=min(self.initial_seconds * self.multiplier ** exponent,
                                     self.max_seconds))


@dataclass
class DrainCounts:
    fanned_out: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def attempts(self) -> int:
        return self.delivered + self.retrying + self.failed


class OutboxRelay:
    def __init__(self, engine: Engine, endpoints: Sequence[str], sender: WebhookSender, *,
                 retry: RetryPolicy = RetryPolicy(), poll_seconds: float = 1.0,
                 concurrency: int = 10, batch_size: int = 100,
                 lease: timedelta | None = None, outbox: Outbox | None = None) -> None:
        self.outbox = outbox or Outbox(engine)
        self.endpoints = list(dict.fromkeys(endpoints))
        self.sender = sender
        self.retry = retry
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        # Long enough for a whole batch to be sent, so no other relay takes a delivery while
        # this one still has it.
        self.lease = lease or timedelta(
            seconds=math.ceil(batch_size / concurrency) * sender.timeout_seconds + 60)
        self._sending = asyncio.Semaphore(concurrency)
        self._stop: asyncio.Event | None = None

    async def drain_once(self) -> DrainCounts:
        """Fan out new outbox rows, then make one attempt at every delivery due now. A delivery
        that fails is not tried again in the same drain, however short its backoff."""
        counts = DrainCounts()
        counts.fanned_out = await asyncio.to_thread(self.outbox.fan_out, self.endpoints)
        # After the fan-out, so the deliveries it just made are due; a retry is scheduled
        # after this instant and so waits for a later drain.
        started = datetime.now(timezone.utc)
        while self.endpoints and not (self._stop and self._stop.is_set()):
            claims = await asyncio.to_thread(self.outbox.claim, self.endpoints, started,
                                             self.batch_size, self.lease)
            if not claims:
                break
            results = await asyncio.gather(*(self._deliver(c) for c in claims),
                                           return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            for outcome in results:
                if isinstance(outcome, str):
                    setattr(counts, outcome, getattr(counts, outcome) + 1)
            # Raised only once the whole batch is settled: what was sent is recorded first.
            if errors:
                raise errors[0]
        return counts

    async def run(self, stop: asyncio.Event) -> None:
        """Drain every `poll_seconds` until `stop` is set; a drain in progress finishes its
        current batch first."""
        self._stop = stop
        log.info("outbox relay started", endpoints=[redact_url(e) for e in self.endpoints],
                 poll_seconds=self.poll_seconds)
        while not stop.is_set():
            try:
                await self.drain_once()
            except Exception:  # noqa: BLE001 - a database hiccup must not end delivery for good
                log.exception("outbox drain failed; retrying after the poll interval")
            try:
                await asyncio.wait_for(stop.wait(), self.poll_seconds)
            except TimeoutError:
                pass
        log.info("outbox relay stopped")

    async def _deliver(self, claim: Claim) -> str:
        async with self._sending:
            result = await self.sender.send(claim.endpoint, claim.notification)
        error = result.error or "failed"
        if result.ok:
            outcome, record = "delivered", (self.outbox.mark_delivered, claim)
        elif claim.attempt >= self.retry.max_attempts:
            outcome, record = "failed", (self.outbox.mark_failed, claim, error)
        else:
            next_attempt_at = datetime.now(timezone.utc) + self.retry.delay(claim.attempt)
            outcome, record = "retrying", (self.outbox.mark_retry, claim, error, next_attempt_at)
        # Logged before it is recorded, so the attempt is on record even if the database is not.
        _log_attempt(claim, result, outcome)
        await asyncio.to_thread(*record)
        return outcome


def _log_attempt(claim: Claim, result: SendResult, outcome: str) -> None:
    # Never the notification's title or body: they describe residents' problems and places.
    n = claim.notification
    (log.info if result.ok else log.warning)(
        "webhook attempt", event_id=n.event_id, kind=n.kind, case_id=n.case_id,
        endpoint=redact_url(claim.endpoint), attempt=claim.attempt, outcome=outcome,
        status_code=result.status_code, error=result.error)


def redact_url(url: str) -> str:
    """The endpoint as logs may show it: without credentials or a query, where receivers
    sometimes put access tokens."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


async def run_relay(settings: Settings, engine: Engine, stop: asyncio.Event) -> None:
    """Deliver the outbox in the ledger behind `engine` (the worker's own pool) to
    `settings.webhook_urls` until `stop` is set. With no URLs it only waits: notifications keep
    collecting in the outbox. With a hotline callback URL, the hotline's callbacks go there
    (`run_hotline_relay`) and not to these URLs."""
    secret = settings.webhook_secret.get_secret_value()
    if settings.webhook_urls and not secret:
        log.warning("BIHUAN_WEBHOOK_SECRET is empty: webhooks are signed with an empty key")
    excluded = [Audience.HOTLINE.value] if settings.hotline_callback_url else []
    await _relay(settings, engine, stop, settings.webhook_urls, secret,
                 settings.webhook_max_attempts, Outbox(engine, excluded_audiences=excluded))


async def run_hotline_relay(settings: Settings, engine: Engine, stop: asyncio.Event) -> None:
    """Deliver the hotline's callbacks to `settings.hotline_callback_url` until `stop` is set;
    without the URL they wait in the outbox."""
    urls = [settings.hotline_callback_url] if settings.hotline_callback_url else []
    await _relay(settings, engine, stop, urls, settings.hotline_secret,
                 settings.hotline_callback_max_attempts,
                 Outbox(engine, audiences=[Audience.HOTLINE.value]))


async def _relay(settings: Settings, engine: Engine, stop: asyncio.Event, urls: list[str],
                 secret: str, max_attempts: int, outbox: Outbox) -> None:
    retry = RetryPolicy(initial_seconds=settings.webhook_backoff_initial_seconds,
                        max_seconds=settings.webhook_backoff_max_seconds,
                        max_attempts=max_attempts)
    async with WebhookSender(secret, settings.webhook_timeout_seconds) as sender:
        relay = OutboxRelay(engine, urls, sender, retry=retry, outbox=outbox,
                            poll_seconds=settings.outbox_poll_seconds)
        await relay.run(stop)

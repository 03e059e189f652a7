"""Signed HTTP webhooks.

Each notification is POSTed as UTF-8 JSON with three headers:
- `X-Bihuan-Event-Id`: the notification's event id; the same on every retry, so receivers
  de-duplicate on it.
- `X-Bihuan-Timestamp`: Unix seconds when this attempt was signed.
- `X-Bihuan-Signature`: `sha256=` and the hex HMAC-SHA256, keyed with the shared secret, of
  `<timestamp>.<body>`. Signing the timestamp too lets receivers refuse old requests replayed.
"""

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

import httpx

from domain.models import Notification

EVENT_ID_HEADER = "X-Bihuan-Event-Id"
TIMESTAMP_HEADER = "X-Bihuan-Timestamp"
SIGNATURE_HEADER = "X-Bihuan-Signature"
_SCHEME = "sha256="


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The X-Bihuan-Signature value for a body sent at `timestamp`."""
    digest = hmac.new(_key(secret), timestamp.encode() + b"." + body, hashlib.sha256)
    return _SCHEME + digest.hexdigest()


def verify_signature(secret: str | bytes, timestamp: str | None, body: bytes,
                     header: str | None, *, max_age_seconds: float | None = 300,
                     now: float | None = None) -> bool:
    """For receivers: is `header` (X-Bihuan-Signature) right for this timestamp and raw body?

    With `max_age_seconds` (None turns it off), a timestamp further than that from `now` is
    refused too, so a captured request cannot be replayed later. Every retry is signed afresh.
    """
    # Headers straight from a request may be missing.
    if not timestamp or not header or not header.startswith(_SCHEME):
        return False
    if max_age_seconds is not None:
        try:
            age = (time.time() if now is None else now) - int(timestamp)
        except ValueError:
            return False
        if abs(age) > max_age_seconds:
            return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


def encode(notification: Notification) -> bytes:
    # Chinese stays readable in the body (ensure_ascii=False); UTF-8 is what the header says.
    return json.dumps(notification.model_dump(mode="json"), ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status_code: int | None = None
    # Short and safe to store and log: never the receiver's response body.
    error: str | None = None


class WebhookSender:
    """POSTs notifications over one shared connection pool. Use as an async context manager
    (or call `aclose`) so the pool is closed."""

    def __init__(self, secret: str | bytes, timeout_seconds: float = 10.0, *,
                 max_connections: int = 20) -> None:
        self.timeout_seconds = timeout_seconds
        self._secret = _key(secret)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(max_connections=max_connections),
            # A redirect is a misconfigured URL: report it rather than re-POST somewhere else.
            follow_redirects=False,
            headers={"User-Agent": "bihuan-webhook/1"})

    async def __aenter__(self) -> "WebhookSender":
        return self

    async def __aexit__(self, *_exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, url: str, notification: Notification) -> SendResult:
        """One attempt. Never raises for the receiver's sake: any non-2xx answer, network error
        or timeout comes back as a failed result with a short reason."""
        body = encode(notification)
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json; charset=utf-8",
                   EVENT_ID_HEADER: notification.event_id, TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(self._secret, timestamp, body)}
        try:
            # httpx's timeout bounds each phase; this bounds the whole attempt, which the
            # relay's lease on the delivery relies on.
            async with asyncio.timeout(self.timeout_seconds):
                response = await self._client.post(url, content=body, headers=headers)
        except (TimeoutError, httpx.TimeoutException):
            return SendResult(ok=False, error=f"timed out after {self.timeout_seconds:g}s")
        except (httpx.HTTPError, httpx.InvalidURL) as err:
            return SendResult(ok=False, error=f"{type(err).__name__}: {err}"[:200])
        if response.is_success:
            return SendResult(ok=True, status_code=response.status_code)
        return SendResult(ok=False, status_code=response.status_code,
                          error=f"HTTP {response.status_code} {response.reason_phrase}".strip())

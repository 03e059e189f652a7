"""What the API tells operators: a request id and the request's context on every log line,
Prometheus metrics at /metrics, and /readyz for load balancers and orchestrators.

Request counts and latencies are counted here, per route template (never the raw path: case ids
would make a series per case). The domain figures — cases opened, transitions by stage, overdue
steps, whistles, webhook deliveries — are read from the ledger at scrape time (see
ledger/metrics.py), and refusals from the counter the error handlers keep.
"""

import time
import uuid

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               generate_latest)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ErrorBody
from ledger.metrics import read_counts
from runtime.health import dependency_checks
from runtime.logging import get_logger

log = get_logger("api")
REQUEST_ID_HEADER = "X-Request-ID"
# Polled every few seconds by probes and scrapers: counted, not logged.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


class ApiMetrics:
    """The app's own registry: several apps in one process (tests) never share series."""

    def __init__(self, app_state) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("bihuan_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("bihuan_http_request_duration_seconds",
                                 "Time to answer an HTTP request", ["method", "route", "status"],
                                 registry=self.registry,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self.registry.register(_DomainCollector(app_state))


class RequestContext:
    """Binds request_id (the caller's X-Request-ID, else its Idempotency-Key, else a new one),
    method and route to every log line of the request, answers with the id, and counts the
    request by route template and status. Pure ASGI, so streamed exports are not buffered."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # ASGI header names come lower-cased; only the two wanted are decoded.
        wanted = {k: v for k, v in scope["headers"] if k in (b"x-request-id", b"idempotency-key")}
        found = wanted.get(b"x-request-id") or wanted.get(b"idempotency-key")
        request_id = (found.decode("latin-1") if found else uuid.uuid4().hex)[:200]
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id, method=scope["method"])
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (REQUEST_ID_HEADER.encode(), request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            elapsed = time.perf_counter() - started
            self.metrics.latency.labels(method, template, str(status)).observe(elapsed)
            if template not in QUIET_ROUTES:
                log.info("request", route=template, status=status,
                         duration_ms=round(elapsed * 1000, 1))
            structlog.contextvars.clear_contextvars()


async def bind_request(request: Request) -> None:
    """Per route (a dependency of every router): the case and the action a request is about."""
    params = request.path_params
    # A case's workflow id is its case id.
    context = {"case_id": params.get("case_id"), "workflow_id": params.get("case_id"),
               "route": request.scope["route"].path}
    action = _action_of(request)
    if action:
        context["action"] = action
    structlog.contextvars.bind_contextvars(**{k: v for k, v in context.items() if v})


def _action_of(request: Request) -> str | None:
    # /cases/{case_id}/actions/accept, /cases/{case_id}/whistles/{whistle_no}/report_in
    path = request.scope["route"].path
    if "/actions/" in path or "/whistles/{whistle_no}/" in path:
        return path.rsplit("/", 1)[-1]
    return None


class _DomainCollector(Collector):
    """Read at each scrape: from the ledger, and the refusals the error handlers count."""

    def __init__(self, app_state) -> None:
        self.state = app_state

    def collect(self):
        refusals = CounterMetricFamily("bihuan_refusals", "Requests refused (401, 403, 409), by "
                                       "status and code", labels=["status", "code"])
        for (status, code), n in sorted(getattr(self.state, "refusals", {}).items()):
            refusals.add_metric([str(status), code], n)
        yield refusals
        service = getattr(self.state, "service", None)
        if service is None:
            return
        try:
            counts = read_counts(service.ledger.engine)
        except Exception as err:  # noqa: BLE001 - a scrape must not fail on a ledger outage
            log.warning("metrics: ledger unreadable", error=str(err))
            yield GaugeMetricFamily("bihuan_ledger_up", "Whether the ledger could be read", 0)
            return
        yield GaugeMetricFamily("bihuan_ledger_up", "Whether the ledger could be read", 1)
        yield _family(CounterMetricFamily, "bihuan_cases_opened", "Cases opened, by source",
                      ["source"], counts.cases_by_source)
        yield _family(GaugeMetricFamily, "bihuan_open_cases", "Cases not yet closed, by stage",
                      ["stage"], counts.open_cases_by_stage)
        yield _family(CounterMetricFamily, "bihuan_transitions", "Case events recorded, by "
                      "action and the stage they led to", ["action", "stage"], counts.transitions)
        yield _family(CounterMetricFamily, "bihuan_overdue_steps", "Time-limited steps that "
                      "passed their deadline, by step", ["step"], counts.overdue_steps_by_step)
        yield GaugeMetricFamily("bihuan_overdue_cases", "Cases with an overdue step now",
                                counts.overdue_cases)
        yield _family(GaugeMetricFamily, "bihuan_whistles", "吹哨报到 by status", ["status"],
                      counts.whistles_by_status)
        yield _family(GaugeMetricFamily, "bihuan_webhook_deliveries", "Webhook deliveries by "
                      "status (failed: given up after every retry)", ["status"],
                      counts.deliveries_by_status)
        yield GaugeMetricFamily("bihuan_webhook_deliveries_retrying", "Pending webhook "
                                "deliveries whose last attempt failed", counts.deliveries_retrying)


def _family(kind, name: str, doc: str, labels: list[str], values: dict):
    family = kind(name, doc, labels=labels)
    for key, n in sorted(values.items()):
        family.add_metric(list(key) if isinstance(key, tuple) else [key], n)
    return family


router = APIRouter(tags=["health"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    body = await run_in_threadpool(generate_latest, request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/readyz", summary="Temporal and the ledger are reachable (503 otherwise)",
            responses={503: {"model": ErrorBody}})
async def readyz(request: Request):
    service = getattr(request.app.state, "service", None)
    checks = {"temporal": "not connected", "ledger": "not connected"}
    if service is not None:
        checks = await dependency_checks(service.client, service.ledger.engine)
    if all(v == "ok" for v in checks.values()):
        return {"status": "ready", "checks": checks}
    down = ", ".join(k for k, v in checks.items() if v != "ok")
    body = ErrorBody(code="not_ready", message=f"Not ready: {down} unreachable.",
                     details={"checks": checks})
    return JSONResponse(body.model_dump(), status_code=503)

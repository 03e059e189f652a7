"""What operators see: JSON log lines carrying the request's context from the API through the
worker's ledger write, Prometheus metrics at /metrics, and /readyz."""

import io
import json
import logging
import uuid

import httpx
import structlog
from prometheus_client.parser import text_string_to_metric_families

from ledger.db import make_engine
from ledger.repository import Ledger
from runtime.logging import configure
from tests.api_client import (HOTLINE, INSPECTOR, OFFICER, act, bearer, free_port, in_process,
                              open_case)


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of a Prometheus text page."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def scrape(api: httpx.AsyncClient) -> dict[tuple, float]:
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


def value(metrics: dict, name: str, **labels) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_requests_by_route_and_the_cases_transitions(api):
    before = await scrape(api)
    case = await open_case(api)
    await act(api, case["case_id"], "accept", {"note": "已签收"}, OFFICER)
    refused = await api.post(f"/cases/{case['case_id']}/actions/verify",
                             json={"passed": True}, headers=bearer(INSPECTOR))
    assert refused.status_code == 409
    after = await scrape(api)

    def grew(name: str, by: float = 1, **labels) -> bool:
        return value(after, name, **labels) - value(before, name, **labels) == by

    # By route template, never the case id in the path.
    assert grew("bihuan_http_requests_total", method="POST", route="/cases", status="201")
    assert grew("bihuan_http_requests_total", method="POST",
                route="/cases/{case_id}/actions/accept", status="200")
    assert grew("bihuan_http_requests_total", method="POST",
                route="/cases/{case_id}/actions/verify", status="409")
    assert not any(case["case_id"] in str(labels) for _, labels in after)
    assert grew("bihuan_http_request_duration_seconds_count", method="POST",
                route="/cases/{case_id}/actions/accept", status="200")
    assert grew("bihuan_refusals_total", status="409", code="stage_conflict")
    # Read from the ledger the worker wrote.
    assert grew("bihuan_cases_opened_total", source="hotline")
    assert grew("bihuan_transitions_total", action="accept", stage="rectifying")
    assert value(after, "bihuan_ledger_up") == 1
    for family in ("bihuan_overdue_cases", "bihuan_webhook_deliveries_retrying"):
        assert (family, ()) in after


async def test_readyz_answers_ready_when_temporal_and_the_ledger_answer(api):
    response = await api.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"temporal": "ok", "ledger": "ok"}}


async def test_readyz_is_503_with_the_unreachable_part_named(dev_env, catalog):
    # A PostgreSQL ledger on a port where nothing listens.
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
                         "?connect_timeout=2")
    async with in_process(dev_env.client, Ledger(engine), catalog) as client:
        response = await client.get("/readyz")
        metrics = samples((await client.get("/metrics")).text)
    engine.dispose()
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "not_ready" and "ledger" in body["message"]
    assert body["details"]["checks"]["temporal"] == "ok"
    assert body["details"]["checks"]["ledger"] != "ok"
    # The scrape still answers, and says the ledger is down.
    assert value(metrics, "bihuan_ledger_up") == 0


async def test_json_log_lines_carry_the_request_from_the_api_to_the_ledger_write(api):
    case = await open_case(api)
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level, structlog.get_config()
    configure("INFO", json=True, stream=buffer)
    try:
        key = f"accept-{uuid.uuid4().hex[:8]}"
        response = await api.post(f"/cases/{case['case_id']}/actions/accept",
                                  json={"note": "已签收"},
                                  headers={"Idempotency-Key": key, **bearer(OFFICER)})
        assert response.status_code == 200
        assert response.headers["X-Request-ID"] == key
        refused = await api.post(f"/cases/{case['case_id']}/actions/evaluate",
                                 json={"rating": "满意"}, headers=bearer(HOTLINE))
        assert refused.status_code == 409
    finally:
        root.handlers[:], level, config = saved
        root.setLevel(level)
        structlog.configure(**config)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert lines, "nothing was logged"

    def one(event: str, **match) -> dict:
        found = [line for line in lines if line["event"] == event
                 and all(line.get(k) == v for k, v in match.items())]
        assert len(found) == 1, (event, match, lines)
        return found[0]

    context = {"case_id": case["case_id"], "request_id": key, "actor": OFFICER["id"],
               "action": "accept"}
    request = one("request", workflow_id=case["case_id"], **context)
    assert request["status"] == 200 and request["route"] == "/cases/{case_id}/actions/accept"
    write = one("ledger write", **context)
    assert write["workflow_id"] == case["case_id"] and write["level"] == "info"
    refusal = one("refused", case_id=case["case_id"], actor=HOTLINE["id"], action="evaluate")
    assert refusal["code"] == "stage_conflict" and refusal["request_id"]
    # Every line is JSON with a timestamp and a level.
    assert all("timestamp" in line and "level" in line for line in lines)

"""What the 12345 integration and Open311 cost on this machine: the real app in-process over a
Temporal dev server, a worker and a SQLite ledger.

- POST /hotline/work-orders: a new ticket, the same ticket again, and a ticket merged into an
  open case while OPEN_CASES other open cases of its category wait in its district (the repeat
  search reads them all);
- the history events a merge adds to the case it joins;
- GET /open311/v2/requests.json over those cases, JSON and XML;
- delivering the hotline's callbacks to a local receiver.

Run: .venv/bin/python bench/hotline.py [--cases N]
"""

import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import httpx
from temporalio.testing import WorkflowEnvironment

from api.auth import mint_token
from api.main import create_app
from api.service import CaseService
from config.catalog import DEFAULT_CONFIG_DIR, load_catalog
from config.settings import Settings
from domain import lifecycle
from domain.models import Actor, CaseIntake, LedgerEntry, Location, Source
from domain.roles import Role
from ledger.db import make_engine
from ledger.migrate import upgrade
from ledger.outbox import Outbox
from ledger.repository import Ledger
from notifications.relay import OutboxRelay, RetryPolicy
from notifications.webhook import WebhookSender
from runtime.devserver import installed_binary
from runtime.temporal import data_converter
from runtime.worker import build_worker
from workflows import search_attributes

HOTLINE = Actor(id="hotline-12345", name="12345热线平台", role=Role.HOTLINE)
OFFICER = Actor(id="o017", name="扎西", role=Role.OFFICER, team="环境卫生")
ROUNDS = 30
LAT, LNG = 29.6535, 91.1335


def order(lat: float, lng: float) -> dict:
    return {"ticket_no": f"B{uuid.uuid4().hex[:15]}", "call_time": "2026-11-30T09:12:00+08:00",
            "caller": {"name": "王女士", "phone": "13800000000"}, "content": "垃圾堆积无人清运",
            "address": {"district": "城关区", "street": "吉日街道", "address": "吉日巷12号旁",
                        "lat": lat, "lng": lng},
            "category_code": "0301", "urgency": "一般"}


def far_spot() -> tuple[float, float]:
    """Somewhere north-east of the old town, where the other open cases are."""
    return LAT + random.uniform(0.01, 0.3), LNG + random.uniform(0.01, 0.3)


def spot(n: int) -> tuple[float, float]:
    """South-west of the old town, a kilometre from each other: the benchmark's own tickets."""
    return LAT - 0.01 * (1 + n % 10), LNG - 0.01 * (1 + n // 10)


def summary(name: str, seconds: list[float]) -> None:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    print(f"{name:<52} p50 {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms   (n={len(ms)})")


async def timed(call) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = await call()
    return time.perf_counter() - started, response


def seed_open_cases(ledger: Ledger, catalog, count: int) -> None:
    """Open cases of the same category and district in the ledger only: what the repeat search
    has to look through (none is near the spot the merged tickets are about)."""
    policy = catalog.case_policy(catalog.category("exposed_garbage"), "normal")
    now = datetime.now(timezone.utc)
    for _ in range(count):
        lat, lng = far_spot()
        case_id = f"grid-{uuid.uuid4().hex[:16]}"
        intake = CaseIntake(case_id=case_id, request_id=case_id, opened_at=now,
                            source=Source.GRID, description="暴露垃圾",
                            location=Location(district="城关区", street="吉日街道",
                                              address="某巷", lat=lat, lng=lng),
                            actor=HOTLINE, policy=policy, calendar=catalog.calendar)
        state, event = lifecycle.open_case(intake)
        ledger.record(LedgerEntry(event=event, state=state))


class Quiet(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass


async def main(open_cases: int) -> int:
    catalog = load_catalog(DEFAULT_CONFIG_DIR)
    with tempfile.TemporaryDirectory(prefix="bihuan-bench-") as tmp, \
            ThreadPoolExecutor(max_workers=8) as executor:
        url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        upgrade(url)
        ledger = Ledger(make_engine(url))
        seed_open_cases(ledger, catalog, open_cases)
        settings = Settings(task_queue="bench-hotline", action_timeout_seconds=30)
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=installed_binary("temporal"), namespace="bihuan",
            data_converter=data_converter,
            search_attributes=list(search_attributes.ALL_KEYS))
        try:
            async with build_worker(env.client, settings.task_queue, ledger, executor):
                app = create_app(settings, CaseService(env.client, ledger, catalog, settings))
                headers = {"Authorization": f"Bearer {mint_token(settings, HOTLINE)}"}
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                             base_url="http://bihuan", headers=headers) as api:
                    await run(api, env, ledger, open_cases)
        finally:
            await env.shutdown()
        ledger.engine.dispose()
    return 0


async def run(api: httpx.AsyncClient, env, ledger: Ledger, open_cases: int) -> None:
    print(f"{open_cases} other open cases of the category in the district\n")
    new, again, merged = [], [], []
    primaries = []
    for n in range(ROUNDS):
        body = order(*spot(n))
        seconds, response = await timed(lambda: api.post("/hotline/work-orders", json=body))
        assert response.status_code == 201, response.text
        new.append(seconds)
        primaries.append((body, response.json()["case_id"]))
        seconds, response = await timed(lambda: api.post("/hotline/work-orders", json=body))
        assert response.json()["outcome"] == "existing"
        again.append(seconds)
    for body, case_id in primaries:
        while ledger.case(case_id) is None:
            await asyncio.sleep(0.01)
        lat, lng = body["address"]["lat"], body["address"]["lng"]
        repeat = order(lat + 0.0002, lng)
        seconds, response = await timed(lambda: api.post("/hotline/work-orders", json=repeat))
        assert response.json()["outcome"] == "merged", response.text
        merged.append(seconds)
    summary("new ticket (case opened, routed)", new)
    summary("same ticket again (existing)", again)
    summary("repeat ticket merged (并单)", merged)

    case_id = primaries[0][1]
    events = [e async for e in env.client.get_workflow_handle(case_id).fetch_history_events()]
    print(f"{'history events of a case with one merged ticket':<52} {len(events)}")

    for fmt in ("json", "xml"):
        reads = []
        for _ in range(10):
            seconds, response = await timed(lambda: api.get(f"/open311/v2/requests.{fmt}"))
            assert response.status_code == 200
            reads.append(seconds)
        count = len(response.json()) if fmt == "json" else response.text.count("<request>")
        summary(f"Open311 GET requests.{fmt} ({count} requests)", reads)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/callbacks"
    # Two callbacks per case: accepted, rectified.
    officer = {"Authorization": f"Bearer {mint_token(Settings(), OFFICER)}"}
    for _, case_id in primaries:
        for kind, fields in (("accept", {}), ("submit_rectification", {"report": "已清运"})):
            response = await api.post(f"/cases/{case_id}/actions/{kind}", json=fields,
                                      headers={**officer, "Idempotency-Key": uuid.uuid4().hex})
            assert response.status_code == 200, response.text
    async with WebhookSender("bench-secret") as sender:
        relay = OutboxRelay(ledger.engine, [endpoint], sender, retry=RetryPolicy(),
                            outbox=Outbox(ledger.engine, audiences=["hotline"]))
        started = time.perf_counter()
        counts = await relay.drain_once()
        elapsed = time.perf_counter() - started
    server.shutdown()
    print(f"{'hotline callbacks delivered to a local receiver':<52} {counts.delivered} in "
          f"{elapsed:.2f} s ({counts.delivered / elapsed:.0f}/s)")


if __name__ == "__main__":
    cases = int(sys.argv[sys.argv.index("--cases") + 1]) if "--cases" in sys.argv else 500
    code = 1
    try:
        code = asyncio.run(main(cases))
    except Exception:  # noqa: BLE001 - reported before the hard exit below swallows it
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        # The SDK runtime can crash at interpreter exit after a good run (see TEMPORAL-NOTES).
        os._exit(code)

"""Talking to the API in tests: identities, tokens and the requests every test makes."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn

from api.main import create_app
from api.service import CaseService
from config.settings import Settings
from runtime.devserver import free_port  # noqa: F401 - the tests' one import of it
from tests.factories import bearer

HOTLINE = {"id": "hotline-12345", "name": "12345热线平台", "role": "hotline"}
DISPATCHER = {"id": "d001", "name": "次仁", "role": "dispatcher"}
OFFICER = {"id": "o017", "name": "扎西", "role": "officer", "team": "环境卫生"}
INSPECTOR = {"id": "i003", "name": "卓玛", "role": "inspector"}
SUPERVISOR = {"id": "s001", "name": "督查室", "role": "supervisor"}


def in_process(client, ledger, catalog, settings: Settings | None = None) -> httpx.AsyncClient:
    """The real app over `client` (Temporal; None where nothing asked talks to it) and
    `ledger`, called in this process: no socket, no server."""
    settings = settings or Settings()
    app = create_app(settings, CaseService(client, ledger, catalog, settings))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bihuan")


def ticket() -> str:
    return f"2026112{uuid.uuid4().int % 10**9:09d}"


def new_case(**overrides) -> dict:
    body = {"source": "hotline", "external_id": ticket(), "category": "暴露垃圾",
            "description": "吉日巷口垃圾堆积三天无人清运，气味很大", "urgency": "normal",
            "location": {"district": "城关区", "street": "八廓街道", "address": "吉日巷12号旁"},
            "reporter": {"name": "王女士", "phone": "13800000000"}}
    body.update(overrides)
    return body


async def post_case(api: httpx.AsyncClient, body: dict, who: dict = HOTLINE) -> httpx.Response:
    return await api.post("/cases", json=body, headers=bearer(who))


async def open_case(api: httpx.AsyncClient, who: dict = HOTLINE, **overrides) -> dict:
    response = await post_case(api, new_case(**overrides), who)
    assert response.status_code == 201, response.text
    return response.json()


async def act(api: httpx.AsyncClient, case_id: str, action: str, body: dict, who: dict,
              key: str | None = None, expect: int = 200) -> dict:
    headers = {"Idempotency-Key": key or uuid.uuid4().hex, **bearer(who)}
    response = await api.post(f"/cases/{case_id}/actions/{action}", json=body, headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


async def get(api: httpx.AsyncClient, path: str, who: dict = SUPERVISOR) -> httpx.Response:
    return await api.get(path, headers=bearer(who))


async def history(api: httpx.AsyncClient, case_id: str, who: dict = SUPERVISOR) -> list[dict]:
    response = await get(api, f"/cases/{case_id}/history", who)
    assert response.status_code == 200, response.text
    return response.json()["events"]


@asynccontextmanager
async def served(app, **config) -> AsyncIterator[str]:
    """`app` on a real HTTP server (uvicorn, on a free port, in this event loop, with `config`
    for uvicorn); yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           **config))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "uvicorn stopped before it started"
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving

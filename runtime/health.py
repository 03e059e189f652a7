"""The worker's health endpoint: a minimal HTTP server on its own port (the worker serves no
other HTTP), answering GET /healthz with 200 while the worker polls and Temporal answers, 503
otherwise; `bihuan worker-health` asks it, for container health checks."""

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable

from sqlalchemy import Engine
from temporalio.client import Client

from ledger.metrics import ping
from runtime.logging import get_logger

log = get_logger("worker.health")
CHECK_TIMEOUT_SECONDS = 5.0

Check = Callable[[], Awaitable[dict[str, str]]]


async def serve_health(host: str, port: int, check: Check) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), CHECK_TIMEOUT_SECONDS)
            while (await asyncio.wait_for(reader.readline(), CHECK_TIMEOUT_SECONDS)) not in (
                    b"\r\n", b"\n", b""):
                pass  # headers: nothing in them matters
            parts = request_line.decode("latin-1").split()
            if len(parts) < 2 or parts[0] != "GET" or parts[1] != "/healthz":
                status, body = 404, {"code": "not_found", "message": "Only GET /healthz is served."}
            else:
                checks = await check()
                healthy = all(v == "ok" for v in checks.values())
                status = 200 if healthy else 503
                body = {"status": "ok" if healthy else "unhealthy", "checks": checks}
            payload = json.dumps(body, ensure_ascii=False).encode()
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
                         .encode() + payload)
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host, port)
    log.info("worker health endpoint", address=f"http://{host}:{port}/healthz")
    return server


async def timed(awaitable: Awaitable) -> str:
    try:
        await asyncio.wait_for(awaitable, CHECK_TIMEOUT_SECONDS)
        return "ok"
    except Exception as err:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(err).__name__}: {err}"[:300]


async def dependency_checks(client: Client, engine: Engine) -> dict[str, str]:
    """Whether Temporal and the ledger answer, both asked at once: "ok" or why not."""
    temporal, ledger = await asyncio.gather(timed(client.service_client.check_health()),
                                            timed(asyncio.to_thread(ping, engine)))
    return {"temporal": temporal, "ledger": ledger}


def probe(host: str, port: int, timeout: float = 10.0) -> tuple[int, str]:
    """(HTTP status, body) of the worker's /healthz; status 0 when nothing answers."""
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError as err:
        return 0, str(err)

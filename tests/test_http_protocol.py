"""The API sends each answer in one write (api/http_protocol.py): on a real uvicorn server and
real sockets, with the transport's writes noted as they reach it."""

import asyncio
import json
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from api.http_protocol import OneWriteHttpToolsProtocol
from tests.api_client import served

CASE = {"case_id": "hotline-2026112200123", "stage": "rectifying", "note": "已签收，今日安排清运"}
PARTS = [b"case_id,stage\n", b"hotline-1,closed\n", b"hotline-2,rectifying\n"]


class _Noted:
    """The server's real transport, every write noted before it is made."""

    def __init__(self, transport, writes: list[bytes]) -> None:
        self._transport, self._writes = transport, writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


def noting(writes: list[bytes]) -> type:
    class NotedProtocol(OneWriteHttpToolsProtocol):
        def connection_made(self, transport) -> None:
            super().connection_made(_Noted(transport, writes))
    return NotedProtocol


def app() -> FastAPI:
    app = FastAPI()

    @app.get("/case")
    async def case() -> dict:
        return CASE

    @app.get("/export")
    async def export() -> StreamingResponse:
        async def parts():
            for part in PARTS:
                yield part
                await asyncio.sleep(0)  # the next part is made in a later turn of the loop
        return StreamingResponse(parts(), media_type="text/csv")

    return app


async def test_each_answer_is_written_once_its_head_and_body_together():
    writes: list[bytes] = []
    async with served(app(), http=noting(writes)) as url:
        async with httpx.AsyncClient(base_url=url) as client:  # one kept-alive connection
            answers = [await client.get("/case") for _ in range(3)]
    assert [a.json() for a in answers] == [CASE] * 3
    assert len(writes) == 3
    for write in writes:
        head, _, body = write.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK") and json.loads(body) == CASE


async def test_a_streamed_answer_still_leaves_part_by_part_and_arrives_whole():
    writes: list[bytes] = []
    async with served(app(), http=noting(writes)) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            answer = await client.get("/export")
    assert answer.status_code == 200 and answer.content == b"".join(PARTS)
    # Not held back until the end: each part left in the turn it was made.
    assert len(writes) >= len(PARTS)
    assert PARTS[1] in writes[1] and PARTS[2] in writes[2]


async def test_a_connection_closed_after_its_answer_gets_all_of_it_first():
    writes: list[bytes] = []
    async with served(app(), http=noting(writes)) as url:
        address = urlsplit(url)
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        writer.write(b"GET /case HTTP/1.1\r\nhost: bihuan\r\nconnection: close\r\n\r\n")
        received = await asyncio.wait_for(reader.read(), timeout=10)  # to the server's close
        writer.close()
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and json.loads(body) == CASE
    assert writes == [received]

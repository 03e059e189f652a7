"""uvicorn's httptools protocol, sending each answer in one write.

uvicorn writes an answer's status line and headers, then its body: two writes. On uvloop each
write is a send() made at once, with the GIL held, and on the loopback the kernel delivers the
segment to the reader inside that call; under load each cost the API about 0.1 ms of CPU
(bench/README.md), and the client read two segments. Here what is written during one turn of
the event loop is joined and sent at its end: an answer's head and body, sent in the same turn,
go out as one write, and a body streamed in parts still leaves part by part.
"""

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _JoinedWrites:
    """A transport whose writes within one turn of the loop go out together. Everything but
    writing and closing is the transport's own."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        # What was written before the close is sent before it, as the transport itself does.
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_JoinedWrites(transport, self.loop))  # type: ignore[arg-type]

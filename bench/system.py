"""The whole system in real processes for a benchmark: a dev server, a worker and the API, on
their embedded defaults, in a temporary directory of their own and on free loopback ports."""

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cli.supervisor import stop_process, wait_for_temporal
from config.settings import Settings
from ledger.migrate import upgrade
from runtime.devserver import free_port, server_command

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_mib(pid: int) -> float:
    """The process's high-water mark of resident memory (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class System:
    settings: Settings
    env: dict[str, str]
    metrics_url: str
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return self.settings.api_url

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each process, this one (the load) included."""
        used = {name: cpu_seconds(proc.pid) for name, proc in self.processes.items()}
        used["load"] = cpu_seconds(os.getpid())
        return used

    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.settings.data_dir / f"{name}.log", "w")  # noqa: SIM115 - closed with the dir
        proc = subprocess.Popen([sys.executable, *args], env=self.env, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = proc
        return proc

    def restart_worker(self) -> None:
        """Stop the worker and start a new one: its cache is empty, every case replays."""
        stop_process(self.processes.pop("worker"))
        self.spawn("worker", "-m", "cli.main", "worker")

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.settings.data_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def running_system(extra_env: dict[str, str] | None = None) -> Iterator[System]:
    """Dev server (SQLite file), worker and API as `make run` starts them, with logs at WARNING
    so the measurement is not of the log writer."""
    with tempfile.TemporaryDirectory(prefix="bihuan-bench-") as tmp:
        metrics_port = free_port()
        env = {**os.environ, "BIHUAN_DATA_DIR": tmp, "BIHUAN_API_PORT": str(free_port()),
               "BIHUAN_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
               "BIHUAN_TEMPORAL_UI_PORT": str(free_port()), "BIHUAN_LOG_LEVEL": "WARNING",
               "BIHUAN_ENVIRONMENT": "development", "PYTHONUNBUFFERED": "1",
               **(extra_env or {})}
        settings = Settings(data_dir=Path(tmp), api_port=int(env["BIHUAN_API_PORT"]),
                            temporal_address=env["BIHUAN_TEMPORAL_ADDRESS"],
                            temporal_ui_port=int(env["BIHUAN_TEMPORAL_UI_PORT"]))
        system = System(settings, env, f"http://127.0.0.1:{metrics_port}/metrics")
        upgrade(settings.ledger_url)
        try:
            server = subprocess.Popen(
                [*server_command(settings), "--headless", "--metrics-port", str(metrics_port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            system.processes["temporal"] = server
            wait_for_temporal(settings, server)
            system.spawn("worker", "-m", "cli.main", "worker")
            system.spawn("api", "-m", "cli.main", "api")
            wait_healthy(system)
            yield system
        except BaseException:
            for name in ("api", "worker"):
                if name in system.processes:
                    print(f"--- last lines of the {name}'s log:\n{system.log_tail(name)}",
                          file=sys.stderr)
            raise
        finally:
            for name in ("api", "worker", "floor", "temporal"):
                if name in system.processes:
                    stop_process(system.processes[name])


def wait_healthy(system: System) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        for name, proc in system.processes.items():
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited ({proc.returncode}):\n{system.log_tail(name)}")
        try:
            if httpx.get(f"{system.api_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("the API did not come up within 90 s")


def server_metric(system: System, name: str) -> float:
    """The sum of a Prometheus counter over all its labels, from the dev server's /metrics."""
    text = httpx.get(system.metrics_url, timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total

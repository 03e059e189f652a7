"""Sampling the worker and the API with py-spy while a benchmark phase runs (--profile DIR).

Only samples holding the GIL are kept: where the CPU goes, not where the process waits.
py-spy is not a dependency of the project: `.venv/bin/pip install py-spy` to use it. It writes
collapsed stacks (DIR/<process>.txt, one `frame;frame;… count` line per stack) and a summary of
where the samples fall is printed: the leaf functions and the project's own functions that the
time is spent under.
"""

import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runtime.devserver import installed_binary

OWN_PACKAGES = ("api/", "activities/", "domain/", "ledger/", "workflows/", "runtime/",
                "notifications/")


@contextmanager
def sampled(directory: Path | None, pids: dict[str, int]) -> Iterator[None]:
    if directory is None:
        yield
        return
    spy = installed_binary("py-spy")
    directory.mkdir(parents=True, exist_ok=True)
    samplers = [subprocess.Popen([spy, "record", "--pid", str(pid), "--format", "raw",
                                  "--rate", "100", "--nonblocking", "--gil",
                                  "--output", str(directory / f"{name}.txt")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for name, pid in pids.items()]
    try:
        yield
    finally:
        for sampler in samplers:
            sampler.send_signal(signal.SIGINT)
            sampler.wait(timeout=60)
    for name in pids:
        summarise(name, directory / f"{name}.txt")


def summarise(name: str, path: Path, top: int = 12) -> None:
    leaves: Counter = Counter()
    own: Counter = Counter()
    total = 0
    for line in _samples(path):
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = stack.split(";")
        total += n
        leaves[frames[-1]] += n
        for frame in set(f for f in frames if any(p in f for p in OWN_PACKAGES)):
            own[frame] += n
    print(f"\n== profile of the {name}: {total} samples ({path})")
    print("   where the samples end (leaf frames):")
    for frame, n in leaves.most_common(top):
        print(f"   {100 * n / max(total, 1):5.1f}%  {frame}")
    print("   the project's own functions, time spent under each:")
    for frame, n in own.most_common(top):
        print(f"   {100 * n / max(total, 1):5.1f}%  {frame}")


def _samples(path: Path) -> Iterator[str]:
    """The lines of a collapsed-stack file, each ending in its count; a frame's name may hold a
    newline (a SQL statement's text does), which splits its stack over several lines."""
    pending = ""
    for line in path.read_text().splitlines():
        pending += line
        if pending.rpartition(" ")[2].isdigit():
            yield pending
            pending = ""
        else:
            pending += " "

"""Leaving a script that used the Temporal SDK."""

import asyncio
import os
import sys
import traceback
from collections.abc import Callable, Coroutine
from typing import NoReturn

import uvloop


def run_and_exit(main: Coroutine[None, None, int]) -> NoReturn:
    """Run the script's coroutine and leave with the status it returns (1 if it raised). On
    uvloop: the worker's loop hands every task and activity between the SDK's threads, and
    uvloop does that for less CPU than asyncio's own loop."""
    def run() -> int:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    exit_with(run)


def exit_with(run: Callable[[], int]) -> NoReturn:
    """Leave with the status `run` returns (1 if it raised). The SDK runtime can crash at
    interpreter exit after a good run: os._exit reports what the script decided, nothing
    else."""
    try:
        code = run()
    except Exception:  # noqa: BLE001 - reported, then the hard exit below
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

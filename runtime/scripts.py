"""Leaving a script that used the Temporal SDK."""

import asyncio
import os
import sys
import traceback
from collections.abc import Coroutine
from typing import NoReturn


def run_and_exit(main: Coroutine[None, None, int]) -> NoReturn:
    """Run the script's coroutine and leave with the status it returns (1 if it raised). The
    SDK runtime can crash at interpreter exit after a good run: os._exit reports what the
    script decided, nothing else."""
    try:
        code = asyncio.run(main)
    except Exception:  # noqa: BLE001 - reported, then the hard exit below
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

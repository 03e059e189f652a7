"""Python's cyclic garbage collector in a long-running process.

What start-up builds (the modules, the app and its routes, the Temporal client and worker,
SQLAlchemy's compiled statements, pydantic's schemas) lives as long as the process, yet every
full collection walked all of it again. Frozen once start-up is done, it is left out of the
collector's walks, which then cover what requests and workflow tasks create. In the API a full
collection had taken about 100 ms; full runs of the case loop went from 0.68 of the floor's
speed to 0.67–0.73, 0.70 on average, with the same peak memory (bench/README.md).
"""

import gc


def freeze_start_up() -> None:
    """Collect start-up's garbage, then keep what is left out of every later collection."""
    gc.collect()
    gc.freeze()

"""Python's cyclic garbage collector in a long-running process.

What start-up builds (the modules, the app and its routes, the Temporal client and worker,
SQLAlchemy's compiled statements, pydantic's schemas) lives as long as the process, yet every
full collection walked all of it again. Frozen once start-up is done, it is left out of the
collector's walks, which then cover what requests and workflow tasks create: the case loop ran
at 0.72 of the floor's speed against 0.68 (bench/README.md), for some 15 MiB more at peak.
"""

import gc


def freeze_start_up() -> None:
    """Collect start-up's garbage, then keep what is left out of every later collection."""
    gc.collect()
    gc.freeze()

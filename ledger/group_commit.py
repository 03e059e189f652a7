"""Group commit: writers that arrive while a transaction is being written go together into the
next one.

Under load the worker writes many ledger entries at once, one per officer action. A
transaction costs the same whether it holds one entry or many, and the roll-up rows of entries
written together are added up once (`rollups.combined`): with 50 officers acting, a batch does
the work of one write for the city's and each team's rows.

Entries that queue while a write is under way are few (1.2 a batch with 50 officers acting), so
while batches keep finding company the writer of the next one first lingers a moment for more.
With 20 ms the batches grew to 2.7 entries and the worker's CPU a step fell by a tenth
(bench/README.md). A writer whose last batch was alone, as on a quiet day, is written at once.

No thread of our own: the first writer to find nobody writing writes the batch, its own entry
first, and hands over to the next one waiting, whose entry it did not take. Every writer returns
only when its own entry is committed, and raises if that entry could not be.
"""

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class _Waiting(Generic[T]):
    __slots__ = ("item", "done", "writes", "error")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = threading.Event()
        # Set instead of `error` when this writer is to write the next batch.
        self.writes = False
        self.error: BaseException | None = None


class GroupCommit(Generic[T]):
    def __init__(self, write_many: Callable[[Sequence[T]], None], limit: int = 64,
                 linger: float = 0.0) -> None:
        self._write_many = write_many
        self._limit = limit
        self._linger = linger
        self._mutex = threading.Lock()
        self._queue: deque[_Waiting[T]] = deque()
        self._writing = False
        # Whether the last batch held more than one entry; only the writer of a batch reads or
        # sets it.
        self._company = False

    def write(self, item: T) -> None:
        """Return once `item` is committed; raise what its write raised."""
        me = _Waiting(item)
        with self._mutex:
            self._queue.append(me)
            waits, self._writing = self._writing, True
        if waits:
            me.done.wait()
            if not me.writes:
                if me.error is not None:
                    raise me.error
                return
        # This writer's entry is first in line: nobody takes from the queue while one writes.
        if self._company and self._linger:
            time.sleep(self._linger)
        with self._mutex:
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), self._limit))]
        self._company = len(batch) > 1
        try:
            self._commit(batch)
        finally:
            with self._mutex:
                if self._queue:
                    following = self._queue[0]
                    following.writes = True
                    following.done.set()
                else:
                    self._writing = False
        if me.error is not None:
            raise me.error

    def _commit(self, batch: list[_Waiting[T]]) -> None:
        try:
            self._write_many([w.item for w in batch])
        except BaseException as err:  # noqa: BLE001 — each writer gets its own entry's error
            if len(batch) == 1:
                batch[0].error = err
            else:
                # One entry that cannot be written must not fail the others: each alone.
                for waiting in batch:
                    try:
                        self._write_many([waiting.item])
                    except BaseException as own:  # noqa: BLE001
                        waiting.error = own
        for waiting in batch[1:]:
            waiting.done.set()

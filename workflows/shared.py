"""What the case and whistle workflows do the same way: turn a refusal into the update's
failure, wait for the next timer or a change, and hand an entry to the ledger."""

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LEDGER_RETRY, LEDGER_WRITE_TIMEOUT
    from domain.errors import Refusal


def refused(refusal: Refusal) -> ApplicationError:
    """The update fails with the refusal's code as its type; non-retryable, so nothing is
    retried and the workflow task itself succeeds."""
    return ApplicationError(refusal.message, {"code": refusal.code, **refusal.details},
                            type=refusal.code, non_retryable=True)


async def timer_fired(due: datetime | None, moved: Callable[[], bool]) -> bool:
    """Wait until `due` or until `moved()`; True when the time came first."""
    # Never a zero timeout: wait_condition reads 0 as "no timeout".
    timeout = max(due - workflow.now(), timedelta(seconds=1)) if due else None
    try:
        await workflow.wait_condition(moved, timeout=timeout)
        return False
    except asyncio.TimeoutError:
        return True


class Alarm:
    """One durable timer kept across changes of plan. Moved only for an earlier time: a stage
    change then costs no TimerCanceled and TimerStarted, and an alarm that rings early (the
    deadline it was set for has moved on) is simply set again."""

    def __init__(self) -> None:
        self._due: datetime | None = None
        self._sleep: asyncio.Task | None = None

    def ring_by(self, due: datetime) -> None:
        if self._sleep is not None and not self._sleep.done() and self._due <= due:
            return
        if self._sleep is not None:
            self._sleep.cancel()
        self._due = due
        # Never a zero timer: the server may refuse one, and the old loop waited 1 s as well.
        seconds = max((due - workflow.now()).total_seconds(), 1.0)
        self._sleep = asyncio.create_task(asyncio.sleep(seconds))

    @property
    def rang(self) -> bool:
        return self._sleep is not None and self._sleep.done() and not self._sleep.cancelled()

    def clear(self) -> None:
        self._due = self._sleep = None


async def write_ledger(activity: Callable, entry) -> None:
    await workflow.execute_local_activity_method(
        activity, entry, start_to_close_timeout=LEDGER_WRITE_TIMEOUT, retry_policy=LEDGER_RETRY)

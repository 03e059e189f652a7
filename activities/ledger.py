from contextlib import contextmanager
from datetime import timedelta

import structlog
from temporalio import activity
from temporalio.common import RetryPolicy

from domain.models import LedgerEntry
from domain.whistles import WhistleEntry
from ledger.group_commit import GroupCommit
from ledger.repository import Ledger
from runtime.logging import get_logger

log = get_logger("activities.ledger")

LEDGER_WRITE_TIMEOUT = timedelta(seconds=10)
# How long a case entry's writer waits for company while batches are finding it
# (ledger/group_commit.py): a few per cent of an action's time under load, none when quiet.
LEDGER_LINGER_SECONDS = 0.02
# The ledger must end up with every row: keep retrying until the database is back.
LEDGER_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1),
                           maximum_interval=timedelta(minutes=1), backoff_coefficient=2.0)


class LedgerActivities:
    """Projects each case and whistle transition, with the notifications it causes, into the
    SQL ledger. Synchronous: run on a thread pool, where case entries that arrive together are
    committed together.

    A write, once begun, runs to its end (no_thread_cancel_exception): the SDK would otherwise
    raise its cancellation inside the thread wherever it stands, as it does when a workflow
    leaves the worker's cache. A writer waiting in the group commit's line may have just been
    handed the next batch, and the entries behind it have no other writer: raised there, it
    left them all waiting for good. The write is idempotent, so finishing it is harmless."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._case_entries = GroupCommit(ledger.record_many, linger=LEDGER_LINGER_SECONDS)

    @activity.defn(name="record_case_event", no_thread_cancel_exception=True)
    def record(self, entry: LedgerEntry) -> None:
        with _logged(entry.event, to_stage=entry.event.to_stage.value):
            self._case_entries.write(entry)

    @activity.defn(name="record_whistle_event", no_thread_cancel_exception=True)
    def record_whistle(self, entry: WhistleEntry) -> None:
        with _logged(entry.event, whistle_no=entry.event.whistle_no):
            self._ledger.record_whistle(entry)


@contextmanager
def _logged(event, **fields):
    """Every line logged while the entry is written names its case, request, actor and action;
    a failed attempt is logged before Temporal retries it."""
    info = activity.info()
    with structlog.contextvars.bound_contextvars(
            case_id=event.case_id, workflow_id=info.workflow_id, request_id=event.request_id,
            actor=event.actor.id, action=event.action.value):
        try:
            yield
        except Exception as err:
            log.warning("ledger write failed; retried", attempt=info.attempt, error=str(err)[:300],
                        seq=event.seq, **fields)
            raise
        log.info("ledger write", seq=event.seq, attempt=info.attempt, **fields)

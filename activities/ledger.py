from datetime import timedelta

from temporalio import activity
from temporalio.common import RetryPolicy

from domain.models import LedgerEntry
from domain.whistles import WhistleEntry
from ledger.repository import Ledger

LEDGER_WRITE_TIMEOUT = timedelta(seconds=10)
# The ledger must end up with every row: keep retrying until the database is back.
LEDGER_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1),
                           maximum_interval=timedelta(minutes=1), backoff_coefficient=2.0)


class LedgerActivities:
    """Projects each case and whistle transition, with the notifications it causes, into the
    SQL ledger. Synchronous: run on a thread pool."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    @activity.defn(name="record_case_event")
    def record(self, entry: LedgerEntry) -> None:
        self._ledger.record(entry)

    @activity.defn(name="record_whistle_event")
    def record_whistle(self, entry: WhistleEntry) -> None:
        self._ledger.record_whistle(entry)

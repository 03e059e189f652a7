from temporalio import activity

from domain.models import LedgerEntry
from ledger.repository import Ledger


class LedgerActivities:
    """Projects each case transition into the SQL ledger. Synchronous: run on a thread pool."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    @activity.defn(name="record_case_event")
    def record(self, entry: LedgerEntry) -> None:
        self._ledger.record(entry)

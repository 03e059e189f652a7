"""Ledger entries that arrive together are committed together (ledger/group_commit.py), on a
real SQLite ledger with real threads, as the worker's activity threads write them: every writer
returns only once its own entry is in the ledger, and an entry that cannot be written fails
its own writer alone."""

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from temporalio.testing import ActivityEnvironment

from activities.ledger import LedgerActivities
from domain import lifecycle
from domain.models import LedgerEntry
from ledger.group_commit import GroupCommit
from tests.factories import OFFICER, cmd, intake, policy
from tests.test_ledger import event_rows

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
WRITERS = 8


def accepted_cases(catalog, count: int) -> list[tuple[LedgerEntry, LedgerEntry]]:
    """Per case, its opening and an officer's accept, as the workflow would hand them over."""
    cases = []
    for _ in range(count):
        state, opened = lifecycle.open_case(intake(policy(catalog), opened_at=T0))
        first = LedgerEntry(event=opened, state=state.snapshot())
        accepted = lifecycle.apply(state, cmd("accept", OFFICER), T0 + timedelta(minutes=5),
                                   catalog.calendar)
        cases.append((first, LedgerEntry(event=accepted, state=state.snapshot())))
    return cases


class Watched:
    """The ledger's batch write, keeping the size of every batch. The first batch waits until
    the other writers are queued behind it, as they are when a write takes a while. With
    `fail_one`, the second entry of the first batch of several can never be written."""

    def __init__(self, ledger, queued: int, limit: int = 64, fail_one: bool = False,
                 linger: float = 0.0) -> None:
        self.ledger, self.queued, self.fail_one = ledger, queued, fail_one
        self.group = GroupCommit(self, limit, linger)
        self.batches: list[int] = []
        self.failing: str | None = None

    def __call__(self, entries) -> None:
        if not self.batches:
            deadline = time.monotonic() + 5
            while len(self.group._queue) < self.queued and time.monotonic() < deadline:
                time.sleep(0.005)
        self.batches.append(len(entries))
        if self.fail_one and self.failing is None and len(entries) > 1:
            self.failing = entries[1].event.case_id
        if any(e.event.case_id == self.failing for e in entries):
            raise RuntimeError(f"cannot write {self.failing}")
        self.ledger.record_many(entries)


def write_from_threads(group: GroupCommit, entries) -> dict[str, BaseException | None]:
    outcomes: dict[str, BaseException | None] = {}
    start = threading.Barrier(len(entries))

    def writer(entry):
        start.wait()
        try:
            group.write(entry)
            # Returned: the entry must already be readable by anyone.
            outcomes[entry.event.case_id] = None
        except Exception as err:  # noqa: BLE001
            outcomes[entry.event.case_id] = err

    threads = [threading.Thread(target=writer, args=(e,)) for e in entries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_writers_arriving_together_share_a_transaction(ledger, catalog):
    cases = accepted_cases(catalog, WRITERS)
    for first, _ in cases:
        ledger.record(first)
    watched = Watched(ledger, queued=WRITERS - 1)
    outcomes = write_from_threads(watched.group, [accepted for _, accepted in cases])
    assert outcomes == {first.event.case_id: None for first, _ in cases}
    # The first writer alone, then everyone who queued behind it in one batch.
    assert watched.batches == [1, WRITERS - 1]
    for first, accepted in cases:
        assert ledger.case(first.event.case_id) == accepted.state
        assert event_rows(ledger, first.event.case_id) == 2


def test_a_batch_larger_than_the_limit_is_handed_on(ledger, catalog):
    cases = accepted_cases(catalog, WRITERS)
    watched = Watched(ledger, queued=WRITERS - 1, limit=3)
    outcomes = write_from_threads(watched.group, [first for first, _ in cases])
    assert set(outcomes.values()) == {None}
    assert watched.batches == [1, 3, 3, 1]
    assert all(ledger.case(first.event.case_id) is not None for first, _ in cases)


def test_an_entry_that_cannot_be_written_fails_only_its_writer(ledger, catalog):
    cases = accepted_cases(catalog, WRITERS)
    watched = Watched(ledger, queued=WRITERS - 1, fail_one=True)
    outcomes = write_from_threads(watched.group, [first for first, _ in cases])
    failing = watched.failing
    assert isinstance(outcomes.pop(failing), RuntimeError)
    assert set(outcomes.values()) == {None}
    # The batch holding it was written again entry by entry: all but that one are in.
    assert watched.batches[:2] == [1, WRITERS - 1] and len(watched.batches) == 2 + WRITERS - 1
    assert ledger.case(failing) is None and event_rows(ledger, failing) == 0
    assert all(ledger.case(case_id) is not None for case_id in outcomes)


def test_a_writer_alone_is_written_at_once(ledger, catalog):
    (first, accepted), = accepted_cases(catalog, 1)
    group = GroupCommit(ledger.record_many)
    group.write(first)
    assert ledger.case(first.event.case_id) == first.state
    with pytest.raises(Exception):
        # A write that fails raises to its writer, and the next writer is not kept waiting.
        group.write(None)
    group.write(accepted)
    assert ledger.case(first.event.case_id) == accepted.state


def test_while_batches_find_company_the_writer_lingers_for_the_next(ledger, catalog):
    entries = [first for first, _ in accepted_cases(catalog, 7)]
    linger = 1.0
    watched = Watched(ledger, queued=2, linger=linger)
    # A quiet start: the first writer is written at once, the two queued behind it together.
    write_from_threads(watched.group, entries[:3])
    assert watched.batches == [1, 2]

    # Batches are finding company: a writer alone now waits, and one arriving meanwhile joins
    # its transaction.
    def arrives_meanwhile():
        time.sleep(linger / 10)
        watched.group.write(entries[4])

    joined = threading.Thread(target=arrives_meanwhile)
    joined.start()
    started = time.monotonic()
    watched.group.write(entries[3])
    assert time.monotonic() - started >= linger
    joined.join(timeout=10)
    assert watched.batches == [1, 2, 2]

    # Its wait found company; the next one's finds none, and the writer after it is written at
    # once again.
    watched.group.write(entries[5])
    started = time.monotonic()
    watched.group.write(entries[6])
    assert time.monotonic() - started < linger / 2
    assert watched.batches == [1, 2, 2, 1, 1]
    assert all(ledger.case(e.event.case_id) == e.state for e in entries)


def test_a_cancelled_ledger_activity_still_writes_the_batch_handed_to_it(ledger, catalog):
    """A local activity is cancelled when its workflow leaves the worker's cache. Cancelled while
    it waited in line, its thread must still write the batch handed to it: the entries queued
    behind it have no other writer."""
    first, second, third = (entry for entry, _ in accepted_cases(catalog, 3))
    activities = LedgerActivities(ledger)
    group = activities._case_entries
    envs = {e.event.case_id: ActivityEnvironment() for e in (first, second, third)}

    def record(entry):
        envs[entry.event.case_id].run(activities.record, entry)

    threads = [threading.Thread(target=record, args=(e,), daemon=True)
               for e in (first, second, third)]
    with ledger._one_writer:  # the first writer is held inside its transaction
        threads[0].start()
        until(lambda: group._writing and not group._queue)
        for queued, thread in enumerate(threads[1:], start=1):
            thread.start()
            until(lambda: len(group._queue) == queued)
        envs[second.event.case_id].cancel()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert all(ledger.case(e.event.case_id) == e.state for e in (first, second, third))


def until(condition, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)

"""The monthly roll-ups behind GET /stats (ledger/rollups.py), on SQLite and PostgreSQL: every
ledger write keeps them equal to a rebuild from the cases — whatever order entries arrive in,
however often — statistics read from them equal statistics read from the cases, and migration
0007 builds them for a ledger that already holds cases."""

import random
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import select, text

from ledger import rollups, stats
from ledger.migrate import alembic_config, upgrade
from ledger.tables import StageTimeRollupRow, StatsRollupRow
from domain.models import Actor
from domain.roles import Role
from tests.factories import MUNICIPAL_OFFICER, OFFICER, SUPERVISOR
from tests.test_stats import (DUILONG_COMMUNITY, NOVEMBER, figures, lhasa,  # noqa: F401
                              stage_times, tell_stories, told)

GROUPINGS = (None, "team", "district", "street", "category", "source")
DISTRICT_INSPECTOR = Actor(id="i-9", name="区督查", role=Role.INSPECTOR, district="城关区")


class Capture:
    """Stands where a ledger would and keeps what it is handed, to hand it on later."""

    def __init__(self) -> None:
        self.entries, self.whistle_entries = [], []

    def record(self, entry) -> None:
        self.entries.append(entry)

    def record_whistle(self, entry) -> None:
        self.whistle_entries.append(entry)


def late_and_twice(entries: list, seed: int) -> list:
    """The entries with 40 of them repeated, in a shuffled order: as a worker's retries and
    concurrent writes deliver them."""
    delivered = entries + random.Random(seed).sample(entries, 40)
    random.Random(seed + 1).shuffle(delivered)
    return delivered


def tables(ledger) -> tuple[dict, dict]:
    """Both roll-ups as {key: figures}, leaving out rows every case has left."""
    with ledger.engine.connect() as conn:
        counts = {tuple(r[:5]): tuple(r[5:])
                  for r in conn.execute(select(StatsRollupRow)) if any(r[5:])}
        bands = {(*r[:5], r.stage, r.bucket): (r.spans, r.micros, r.min_seconds, r.max_seconds)
                 for r in conn.execute(select(StageTimeRollupRow)) if r.spans}
    return counts, bands


def rebuilt(ledger) -> tuple[dict, dict]:
    with ledger.engine.begin() as conn:
        rollups.recompute(conn)
    return tables(ledger)


def assert_same_rollups(kept: tuple[dict, dict], fresh: tuple[dict, dict]) -> None:
    (kept_counts, kept_bands), (fresh_counts, fresh_bands) = kept, fresh
    assert kept_counts == fresh_counts
    assert {k: v[:2] for k, v in kept_bands.items()} == {k: v[:2] for k, v in fresh_bands.items()}
    for key, (_, _, low, high) in kept_bands.items():
        # Bounds kept through departures may be wider than a rebuild's, never outside the band.
        _, _, fresh_low, fresh_high = fresh_bands[key]
        assert low <= fresh_low <= fresh_high <= high
        assert rollups.bucket(low) == rollups.bucket(high) == key[6]


def test_every_write_keeps_the_rollups_equal_to_a_rebuild(any_ledger, catalog):
    tell_stories(any_ledger, catalog)
    kept = tables(any_ledger)
    # What the stories hold: November's and October's and December's cases, for every scope
    # and by every grouping.
    city = ("2026-11", "all", "")
    assert kept[0][(*city, "all", "")][0] == 12
    assert {k[3] for k in kept[0]} == set(rollups.DIMS)
    assert {k[1] for k in kept[0]} == set(rollups.SCOPES)
    assert kept[0][(*city, "team", "")][0] == 1  # N1 waits for a dispatcher
    assert kept[0][("2026-11", "district", "城关区", "all", "")][0] == 7
    assert not [k for k in kept[0] if k[1] == "team" and k[2] == ""]  # no team, no team scope
    assert_same_rollups(kept, rebuilt(any_ledger))


def test_entries_late_and_twice_give_the_same_rollups(any_ledger, catalog):
    """The worker retries a write and may deliver an older entry after a newer one: the rows
    and the roll-ups end up as if each came once, in order."""
    capture = Capture()
    tell_stories(capture, catalog)
    for entry in late_and_twice(capture.entries, seed=7):
        any_ledger.record(entry)
    for entry in capture.whistle_entries:
        any_ledger.record_whistle(entry)
    shuffled = tables(any_ledger)
    assert_same_rollups(shuffled, rebuilt(any_ledger))
    assert shuffled[0][("2026-11", "all", "", "all", "")][0] == 12


def test_entries_written_in_batches_give_the_same_rollups(any_ledger, catalog):
    """The worker commits entries that arrive together in one transaction, their roll-up
    changes added up (ledger.group_commit): batches of any size, a case's entries out of order
    or twice within one batch, give what writing them one by one gives."""
    capture = Capture()
    tell_stories(capture, catalog)
    entries = late_and_twice(capture.entries, seed=3)
    sizes = random.Random(9)
    while entries:
        size = sizes.randint(1, 16)
        any_ledger.record_many(entries[:size])
        entries = entries[size:]
    for entry in capture.whistle_entries:
        any_ledger.record_whistle(entry)
    batched = tables(any_ledger)
    assert_same_rollups(batched, rebuilt(any_ledger))
    assert batched[0][("2026-11", "all", "", "all", "")][0] == 12
    latest = {e.event.case_id: e for e in sorted(capture.entries, key=lambda e: e.event.seq)}
    for case_id, entry in latest.items():
        assert any_ledger.case(case_id) == entry.state


def test_rollups_give_the_figures_read_from_the_cases(told):  # noqa: F811
    periods = [NOVEMBER, (lhasa(10, 1), lhasa(12, 1)), (lhasa(10, 31, 12), lhasa(12, 1, 8)),
               (lhasa(9, 1), lhasa(1, 1, year=2027))]
    readers = [SUPERVISOR, OFFICER, MUNICIPAL_OFFICER, DISTRICT_INSPECTOR, DUILONG_COMMUNITY,
               Actor(id="i-8", name="堆龙督查", role=Role.INSPECTOR, district="堆龙德庆区")]
    for reader in readers:
        for group_by in GROUPINGS:
            for interval in (None, "month"):
                for period in periods:
                    fast = stats.case_stats(told.engine, *period, group_by, interval, reader)
                    slow = stats.case_stats(told.engine, *period, group_by, interval, reader,
                                            use_rollups=False)
                    assert [(r.group, r.period, figures(r), stage_times(r)) for r in fast] == \
                        [(r.group, r.period, figures(r), stage_times(r)) for r in slow], \
                        (reader.id, group_by, interval, period)


def test_whole_months_come_from_the_rollups_and_the_rest_from_the_cases(any_ledger, catalog):
    tell_stories(any_ledger, catalog)
    asked = {
        "november": (NOVEMBER, SUPERVISOR, None),
        "october and november": ((lhasa(10, 1), lhasa(12, 1)), SUPERVISOR, None),
        "most of november": ((lhasa(11, 1), lhasa(11, 30)), SUPERVISOR, None),
        "november by week": (NOVEMBER, SUPERVISOR, "week"),
        "november, a district's inspector": (NOVEMBER, DISTRICT_INSPECTOR, None),
        "november, a team's officer": (NOVEMBER, OFFICER, None),
        "november, a street's community staff": (NOVEMBER, DUILONG_COMMUNITY, None),
    }

    def found() -> dict[str, int]:
        return {name: sum(r.found for r in stats.case_stats(any_ledger.engine, *period, None,
                                                             interval, actor))
                for name, (period, actor, interval) in asked.items()}

    def tamper(scope: str) -> set[str]:
        """Which answers change when November's roll-up of one scope is tampered with: only
        a read that uses it can see the change."""
        honest = found()
        with any_ledger.engine.begin() as conn:
            conn.execute(text("UPDATE stats_rollup SET found = found + 100 WHERE month = "
                              f"'2026-11' AND scope = '{scope}' AND dim = 'all'"))
        return {name for name, value in found().items() if value != honest[name]}

    assert tamper("all") == {"november", "october and november"}
    assert tamper("district") == {"november, a district's inspector"}
    assert tamper("team") == {"november, a team's officer"}


def test_the_migration_builds_rollups_for_a_ledger_that_has_cases(any_ledger, catalog):
    tell_stories(any_ledger, catalog)
    before_figures = [(figures(r), stage_times(r)) for r in stats.case_stats(
        any_ledger.engine, *NOVEMBER, "team", None, SUPERVISOR)]
    before = rebuilt(any_ledger)
    with any_ledger.engine.connect() as conn:
        counters = conn.execute(text(
            "SELECT case_id, accept_signed, accept_on_time, rectify_submitted, rectify_on_time "
            "FROM cases ORDER BY case_id")).all()
        bands = conn.execute(text("SELECT case_id, seq, bucket FROM stage_spans "
                                  "ORDER BY case_id, seq")).all()
    assert any(c[1] for c in counters) and bands
    state = any_ledger.case("hotline-E5")
    url = any_ledger.engine.url.render_as_string(hide_password=False)
    any_ledger.engine.dispose()

    command.downgrade(alembic_config(url), "0006")
    with any_ledger.engine.connect() as conn:
        assert "accept_signed" not in {c[1] for c in conn.execute(text(
            "SELECT 0, column_name FROM information_schema.columns WHERE table_name = 'cases' "
            "AND table_schema = current_schema()"
            if any_ledger.engine.dialect.name == "postgresql" else "PRAGMA table_info(cases)"))}
    upgrade(url)

    with any_ledger.engine.connect() as conn:
        assert conn.execute(text(
            "SELECT case_id, accept_signed, accept_on_time, rectify_submitted, rectify_on_time "
            "FROM cases ORDER BY case_id")).all() == counters
        assert conn.execute(text("SELECT case_id, seq, bucket FROM stage_spans "
                                 "ORDER BY case_id, seq")).all() == bands
    assert tables(any_ledger) == before
    assert any_ledger.case("hotline-E5") == state and state.rebounds == 2
    assert [(figures(r), stage_times(r)) for r in stats.case_stats(
        any_ledger.engine, *NOVEMBER, "team", None, SUPERVISOR)] == before_figures


@pytest.mark.parametrize("seconds", [0, 0.5, 1, 59.9, 60, 3600, 86400 * 3.7, 86400 * 400])
def test_a_duration_lies_in_its_band(seconds):
    band = rollups.bucket(seconds)
    if seconds < 1:
        assert band == 0
    else:
        assert rollups.GAMMA ** (band - 1) <= seconds * 1.000001
        assert seconds < rollups.GAMMA ** band * 1.000001


def test_the_percentile_is_exact_at_a_bands_ends_and_inside_it_otherwise():
    bands = {10: [3, 30, 9.0, 11.0], 20: [1, 50, 50.0, 50.0], 30: [4, 400, 95.0, 104.0]}
    assert rollups.percentile(bands, 1) == 9.0
    assert rollups.percentile(bands, 3) == 11.0
    assert rollups.percentile(bands, 2) == 10.0      # halfway between the band's bounds
    assert rollups.percentile(bands, 4) == 50.0
    assert rollups.percentile(bands, 5) == 95.0
    assert rollups.percentile(bands, 8) == 104.0
    assert 95.0 < rollups.percentile(bands, 6) < 104.0
    with pytest.raises(ValueError):
        rollups.percentile(bands, 9)


def test_months_are_cut_in_lhasa_time():
    assert rollups.month_of(lhasa(11, 30, 23, 30)) == "2026-11"
    assert rollups.month_of(lhasa(12, 1) - timedelta(microseconds=1)) == "2026-11"
    assert rollups.month_of(lhasa(12, 1)) == "2026-12"
    months, rest = stats.whole_months(lhasa(10, 31, 12), lhasa(12, 1, 8))
    assert months == ["2026-11"]
    assert rest == [(lhasa(10, 31, 12), lhasa(11, 1)), (lhasa(12, 1), lhasa(12, 1, 8))]
    assert stats.whole_months(lhasa(11, 2), lhasa(11, 30)) == (
        [], [(lhasa(11, 2), lhasa(11, 30))])

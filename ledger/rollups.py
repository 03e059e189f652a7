"""Monthly roll-ups of the supervisors' figures, kept current by every ledger write.

A year of statistics for a whole city would otherwise read every case and every stay in a stage
it had (100,000 cases, 700,000 stays): seconds, not the moment a supervisor expects. Instead each
case *contributes* to a few rows — its Lhasa creation month × each scope a reader may have (the
whole city, its team, its district) × each grouping (all cases, its team, district, street,
category, source) — in `stats_rollup` (counts) and `stage_time_rollup` (stays per stage, counted
per duration band). `Ledger.record` computes the case's contribution before and after the
write and adds the difference in the same transaction, so the roll-ups always equal what `recompute` would build from the cases themselves; whatever changes a case — a new
stage, a re-dispatch to another team, a late older entry, a case turned invalid — moves its
contribution exactly.

Durations are counted in bands 5 % wide on a logarithmic scale, each band with its count, total,
shortest and longest stay; means stay exact, and the 90th percentile is exact when it is the
shortest or longest stay of its band and otherwise lies inside the band (`within_band`).
"""

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from itertools import groupby

from sqlalchemy import Connection, bindparam, case, delete, func, insert, null, select

from domain.calendar import LHASA
from domain.models import SATISFIED_RATINGS
from ledger.prepared import Prepared
from ledger.tables import (ROLLUP_COUNTS, CaseRow, StageSpanRow, StageTimeRollupRow,
                           StatsRollupRow)

GAMMA = 1.05
_LOG_GAMMA = math.log(GAMMA)
# The readers' scopes a roll-up is kept for (ledger.queries.rollup_scope), and the groupings;
# 'all' is the whole city.
SCOPES = ("all", "team", "district")
DIMS = ("all", "team", "district", "street", "category", "source")
FACT_COLUMNS = ("created_at", "stage", "team", "district", "street", "category", "source",
                "rating", "evaluation", "first_verification", "rebounds", "rechecks",
                "accept_signed", "accept_on_time", "rectify_submitted", "rectify_on_time")
_SATISFIED = frozenset(r.value for r in SATISFIED_RATINGS)

Key = tuple[str, str, str, str, str]                 # month, scope, its value, dim, value
StageKey = tuple[str, str, str, str, str, str, int]  # … stage, bucket
Span = tuple[str, int, float]              # stage, bucket, seconds
# What a write adds: counts per key; per key, stage and band [stays, µs, min, max seconds].
Change = tuple[dict[Key, list[int]], dict[StageKey, list]]


def bucket(seconds: float) -> int:
    """The duration band: 0 below a second, then b for [GAMMA^(b-1), GAMMA^b) seconds."""
    return 0 if seconds < 1 else 1 + int(math.log(seconds) / _LOG_GAMMA)


def micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def month_of(moment: datetime) -> str:
    return moment.astimezone(LHASA).strftime("%Y-%m")


def percentile(bands: Mapping[int, Sequence[float]], rank: int) -> float:
    """The `rank`-th shortest stay (1-based) from bands {bucket: (count, µs, min, max)}."""
    seen = 0
    for number in sorted(bands):
        count, _, shortest, longest = bands[number]
        if rank <= seen + count:
            return within_band(rank - seen, count, shortest, longest)
        seen += count
    raise ValueError(f"rank {rank} beyond {seen} stays")


def within_band(position: int, count: int, shortest: float, longest: float) -> float:
    """The `position`-th shortest (1-based) of a band's `count` stays: exact when it is the
    band's first or last, else interpolated between the band's bounds."""
    if position == count or count == 1:
        return longest
    if position == 1:
        return shortest
    return shortest + (longest - shortest) * (position - 1) / (count - 1)


# ---- one case's contribution --------------------------------------------------------------------

def case_counts(facts: Mapping) -> list[int]:
    """A case's figures in ROLLUP_COUNTS order. Invalid cases count in found and invalid only."""
    stage, rating, verification = facts["stage"], facts["rating"], facts["first_verification"]
    figures = {"found": 1, "open": int(stage not in ("closed", "invalid")),
               "closed": int(stage == "closed"), "invalid": int(stage == "invalid")}
    if stage != "invalid":
        figures.update(
            rated=int(rating is not None), satisfied=int(rating in _SATISFIED),
            no_response=int(facts["evaluation"] == "no_response"),
            passed=int(verification == "passed"), verified=int(verification is not None),
            **{name: int(facts[name] or 0) for name in (
                "rebounds", "rechecks", "accept_signed", "accept_on_time", "rectify_submitted",
                "rectify_on_time")})
    return [figures.get(name, 0) for name in ROLLUP_COUNTS]


def _keys(facts: Mapping) -> list[Key]:
    month = month_of(facts["created_at"])
    values = {dim: "" if dim == "all" else (facts[dim] or "") for dim in DIMS}
    # A case with no team is in no team's scope (a team's officer reads none of them).
    return [(month, scope, values[scope], dim, values[dim])
            for scope in SCOPES if scope == "all" or values[scope] for dim in DIMS]


def contribution(facts: Mapping | None, spans: Iterable[Span]
                 ) -> tuple[dict[Key, list[int]], dict[StageKey, tuple]]:
    """What one case adds to the roll-ups: counts per key, and per key, stage and band
    [stays, microseconds, min seconds, max seconds]. Nothing for a case not in the ledger yet."""
    if facts is None:
        return {}, {}
    keys = _keys(facts)
    counts = case_counts(facts)
    stages: dict[StageKey, tuple] = {}
    if facts["stage"] != "invalid" and spans:
        # Each band once, then under every key: the same stays count in each of them.
        bands: dict[tuple[str, int], list] = {}
        for stage, band, seconds in spans:
            found = bands.get((stage, band))
            if found is None:
                bands[stage, band] = [1, micros(seconds), seconds, seconds]
            else:
                found[0] += 1
                found[1] += micros(seconds)
                found[2], found[3] = min(found[2], seconds), max(found[3], seconds)
        stages = {(*key, stage, band): tuple(values)
                  for (stage, band), values in bands.items() for key in keys}
    return {key: counts for key in keys}, stages


def difference(before, after) -> tuple[dict[Key, list[int]], dict[StageKey, list]]:
    """after − before, leaving out what did not change. A band that gained stays carries its
    bounds after the change; one that only lost stays carries none."""
    (counts_before, stages_before), (counts_after, stages_after) = before, after
    counts = {}
    for key in counts_before.keys() | counts_after.keys():
        old, new = counts_before.get(key), counts_after.get(key)
        delta = [b - a for a, b in zip(old or [0] * len(ROLLUP_COUNTS),
                                       new or [0] * len(ROLLUP_COUNTS))]
        if any(delta):
            counts[key] = delta
    stages = {}
    for key in stages_before.keys() | stages_after.keys():
        old, new = stages_before.get(key, [0, 0, None, None]), stages_after.get(key)
        new = new or [0, 0, None, None]
        if new[0] != old[0] or new[1] != old[1]:
            grew = new[0] > old[0]
            stages[key] = [new[0] - old[0], new[1] - old[1],
                           new[2] if grew else None, new[3] if grew else None]
    return counts, stages


# ---- reading and writing ------------------------------------------------------------------------

_FACTS = select(*(getattr(CaseRow, c) for c in FACT_COLUMNS)).where(
    CaseRow.case_id == bindparam("case_id"))
_SPANS = select(StageSpanRow.seq, StageSpanRow.stage, StageSpanRow.bucket,
                StageSpanRow.seconds).where(
    StageSpanRow.case_id == bindparam("case_id"))
_KEY_COLUMNS = ("month", "scope", "scope_value", "dim", "value")
# The two upserts per dialect's insert construct, built once: every ledger write runs them.
_UPSERTS: dict[Callable, tuple] = {}


def read_facts(connection: Connection, case_id: str) -> dict | None:
    """The case's row as the roll-ups see it, before the write about to change it."""
    row = connection.execute(_FACTS, {"case_id": case_id}).first()
    return dict(row._mapping) if row else None


def change(connection: Connection, case_id: str, before: Mapping | None, after: Mapping | None,
           added: tuple[int, Span] | None) -> Change:
    """What a write adds to the roll-ups: the case's facts went from `before` to `after`, and
    its stays gained `added` (its seq and the stay, already stored). A case that keeps its keys
    and its validity changes its counts under the same keys and adds the new stay there; its
    other stays count as they did, so they are not read. Otherwise every stay moves: read, and
    taken out of the old keys and put into the new."""
    keys = _keys(after) if after is not None else None
    if (before is not None and keys is not None and _keys(before) == keys
            and (before["stage"] == "invalid") == (after["stage"] == "invalid")):
        delta = [b - a for a, b in zip(case_counts(before), case_counts(after))]
        counts = {key: delta for key in keys} if any(delta) else {}
        stages = {}
        if added is not None and after["stage"] != "invalid":
            stage, band, seconds = added[1]
            # The band's bounds: its rows hold the case's earlier stays already.
            stages = {(*key, stage, band): [1, micros(seconds), seconds, seconds]
                      for key in keys}
        return counts, stages
    rows = connection.execute(_SPANS, {"case_id": case_id}).all()
    spans = [(row.stage, row.bucket, row.seconds) for row in rows]
    earlier = [(row.stage, row.bucket, row.seconds) for row in rows
               if added is None or row.seq != added[0]]
    return difference(contribution(before, earlier), contribution(after, spans))


def combined(changes: Sequence[Change]) -> Change:
    """Several writes' changes as one: counts added up, and a band's stays and microseconds
    added up with the widest bounds any of them offers. A band that one write empties and
    another refills keeps its earlier bounds too: wider than a rebuild's, as bounds kept through
    departures already are, and never outside the band."""
    if len(changes) == 1:
        # A writer alone, the usual case: nothing to add up.
        return changes[0]
    counts: dict[Key, list[int]] = {}
    stages: dict[StageKey, list] = {}
    for write_counts, write_stages in changes:
        for key, delta in write_counts.items():
            found = counts.get(key)
            counts[key] = list(delta) if found is None else [a + b for a, b in zip(found, delta)]
        for key, band in write_stages.items():
            found = stages.get(key)
            if found is None:
                stages[key] = list(band)
            else:
                found[0] += band[0]
                found[1] += band[1]
                found[2] = _lowest(found[2], band[2])
                found[3] = _highest(found[3], band[3])
    return ({key: delta for key, delta in counts.items() if any(delta)},
            {key: band for key, band in stages.items() if band[0] or band[1]})


def _lowest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _highest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def facts_of(values: Mapping) -> dict:
    return {column: values[column] for column in FACT_COLUMNS}


def _upserts(insert: Callable) -> tuple[Prepared, Prepared]:
    found = _UPSERTS.get(insert)
    if found is None:
        counts = insert(StatsRollupRow.__table__)
        counts = counts.on_conflict_do_update(
            index_elements=list(_KEY_COLUMNS),
            set_={c: getattr(StatsRollupRow, c) + counts.excluded[c] for c in ROLLUP_COUNTS})
        bands = insert(StageTimeRollupRow.__table__)
        t, new = StageTimeRollupRow, bands.excluded
        bands = bands.on_conflict_do_update(
            index_elements=[*_KEY_COLUMNS, "stage", "bucket"],
            set_={"spans": t.spans + new.spans, "micros": t.micros + new.micros,
                  "min_seconds": _bound(t.min_seconds, new.min_seconds, lambda a, b: a < b),
                  "max_seconds": _bound(t.max_seconds, new.max_seconds, lambda a, b: a > b)})
        found = _UPSERTS[insert] = (Prepared(counts), Prepared(bands))
    return found


def add(connection: Connection, insert: Callable, change: Change) -> None:
    """Add a difference to the roll-ups, in key order (so two writers take row locks in the
    same order and never deadlock)."""
    counts, stages = change
    if not counts and not stages:
        return
    counts_upsert, bands_upsert = _upserts(insert)
    if counts:
        counts_upsert.run(connection,
                          [_count_row(k, delta) for k, delta in sorted(counts.items())])
    if stages:
        bands_upsert.run(connection, [_band_row(k, d) for k, d in sorted(stages.items())])
        if any(d[0] < 0 for d in stages.values()):
            # A band left empty forgets its bounds, so stays added later set them afresh.
            months = sorted({k[0] for k, d in stages.items() if d[0] < 0})
            connection.execute(delete(StageTimeRollupRow).where(
                StageTimeRollupRow.month.in_(months), StageTimeRollupRow.spans <= 0))


def _count_row(key: Key, counts: Sequence[int]) -> dict:
    return dict(zip(_KEY_COLUMNS, key), **dict(zip(ROLLUP_COUNTS, counts)))


def _band_row(key: StageKey, band: Sequence) -> dict:
    return dict(zip(_KEY_COLUMNS, key), stage=key[5], bucket=key[6], spans=band[0],
                micros=band[1], min_seconds=band[2], max_seconds=band[3])


def _bound(current, offered, better: Callable):
    return case((offered.is_(None), current), (current.is_(None), offered),
                (better(offered, current), offered), else_=current)


def recompute(connection: Connection) -> int:
    """Build both roll-ups afresh from the cases and their stays (a migration, a rebuilt or
    bulk-loaded ledger); the caller commits. Cases are read a batch at a time with their stays,
    so memory holds the roll-ups, not the ledger. Returns the cases read."""
    connection.execute(delete(StatsRollupRow))
    connection.execute(delete(StageTimeRollupRow))
    counts: dict[Key, list[int]] = defaultdict(lambda: [0] * len(ROLLUP_COUNTS))
    stages: dict[StageKey, list] = {}
    # One row per stay (or one for a case without any), a case's rows side by side: compared
    # for equality only, since the database's collation may order ids unlike Python.
    rows = connection.execute(
        select(CaseRow.case_id, *(getattr(CaseRow, c) for c in FACT_COLUMNS),
               StageSpanRow.stage.label("span_stage"), StageSpanRow.bucket,
               StageSpanRow.seconds)
        .outerjoin(StageSpanRow, StageSpanRow.case_id == CaseRow.case_id)
        .order_by(CaseRow.case_id)).yield_per(10_000)
    cases = 0
    for _, group in groupby(rows, key=lambda r: r.case_id):
        group = list(group)
        cases += 1
        own: list[Span] = [(r.span_stage, r.bucket, r.seconds) for r in group
                           if r.span_stage is not None]
        row = group[0]
        facts = {c: row._mapping[c] for c in FACT_COLUMNS}
        case_counts_, case_stages = contribution(facts, own)
        for key, values in case_counts_.items():
            total = counts[key]
            for i, v in enumerate(values):
                total[i] += v
        for key, (n, total, low, high) in case_stages.items():
            found = stages.get(key)
            if found is None:
                stages[key] = [n, total, low, high]
            else:
                found[0] += n
                found[1] += total
                found[2], found[3] = min(found[2], low), max(found[3], high)
    if counts:
        connection.execute(insert(StatsRollupRow),
                           [_count_row(k, v) for k, v in sorted(counts.items())])
    if stages:
        connection.execute(insert(StageTimeRollupRow),
                           [_band_row(k, v) for k, v in sorted(stages.items())])
    return cases


def rows_for(months: Sequence[str], scope: tuple[str, str], dim: str, by_month: bool):
    """The counts of these months for one reader's scope and one grouping, summed over the
    months unless `by_month`: (month or None, value, *ROLLUP_COUNTS)."""
    r = StatsRollupRow
    month = r.month if by_month else null()
    return (select(month, r.value, *(func.sum(getattr(r, c)) for c in ROLLUP_COUNTS))
            .where(r.month.in_(months), r.scope == scope[0], r.scope_value == scope[1],
                   r.dim == dim)
            .group_by(*([r.month] if by_month else []), r.value)
            .having(func.sum(r.found) > 0))


def bands_for(months: Sequence[str], scope: tuple[str, str], dim: str, period):
    """The stays of these months by band, as ledger.stats reads every source of stays: (grp —
    None for none, period — `period(month column)`, stage, bucket, n, us, lo, hi)."""
    t = StageTimeRollupRow
    return (select(func.nullif(t.value, "").label("grp"), period(t.month).label("period"),
                   t.stage, t.bucket, t.spans.label("n"), t.micros.label("us"),
                   t.min_seconds.label("lo"), t.max_seconds.label("hi"))
            .where(t.month.in_(months), t.scope == scope[0], t.scope_value == scope[1],
                   t.dim == dim, t.spans > 0))

"""A year of a city's cases written straight into a ledger, for benchmarks.

The rows look like what the projection writes (ledger/repository.py) — cases with their stage
times, 签收/整改/核查/回头看 steps, time spent per stage, events, whistles and summons — with
distributions a supervisor would recognise: most cases closed, a tail still open, a few late,
invalid, rebounded or whistled, the old town busier than the counties. They are made by a seeded
random generator, not by running workflows: 100,000 cases through Temporal would take hours, and
the queries read only the ledger.

Bulk path: PostgreSQL takes the rows through COPY, SQLite through executemany in one transaction.
"""

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, insert, text

from config.catalog import Catalog
from domain.calendar import LHASA
from ledger import rollups
from ledger.tables import (STAGE_TIME_COLUMNS, CaseEventRow, CaseRow, CaseStateRow, CaseStepRow,
                           StageSpanRow, WhistleSummonsRow)

SOURCES = {"hotline": 55, "grid": 20, "snapshot": 12, "patrol": 5, "device": 5, "other": 3}
URGENCIES = {"normal": 85, "urgent": 12, "emergency": 3}
RATINGS = {"very_satisfied": 40, "satisfied": 35, "basically_satisfied": 12, "unsatisfied": 5,
           "very_unsatisfied": 2, None: 6}
# Where a case still open waits, for cases young enough to be open at all.
OPEN_STAGES = {"reported": 3, "assigned": 8, "rectifying": 30, "escalated": 3, "verifying": 10,
               "evaluating": 8, "reviewing": 2, "recheck_pending": 30, "rechecking": 6}
# Typical hours spent in each stage (median of a log-normal).
STAGE_HOURS = {"reported": 1.5, "assigned": 3, "rectifying": 40, "escalated": 20, "verifying": 18,
               "evaluating": 30, "reviewing": 48, "recheck_pending": 24 * 25, "rechecking": 6}
DESCRIPTIONS = ["背街小巷垃圾堆放未清运", "路灯不亮已有三天", "人行道上私搭乱建彩钢棚",
                "商户占道经营，行人无法通行", "下水道井盖破损", "小区门口污水外溢", "绿化带树木枯死",
                "广告牌松动有坠落危险", "飞线充电存在安全隐患", "建筑垃圾随意倾倒"]


@dataclass
class Seeded:
    cases: int = 0
    events: int = 0
    steps: int = 0
    spans: int = 0
    summons: int = 0
    teams: list[str] = field(default_factory=list)
    districts: list[str] = field(default_factory=list)


def _pick(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


class _Generator:
    def __init__(self, catalog: Catalog, now: datetime, days: int, events: int, seed: int):
        self.rng = random.Random(seed)
        self.now, self.days, self.events = now, days, events
        # A few categories carry most reports (garbage, stalls, lights), as on any hotline.
        self.categories = list(catalog.categories.values())
        self.category_weights = [1 / (rank + 1) for rank in range(len(self.categories))]
        self.places = []
        for rank, district in enumerate(catalog.districts.values()):
            for street in district.streets or []:
                communities = [c.name for c in street.communities] or [None]
                for community in communities:
                    # 城关区 first and busiest; every further district less so.
                    self.places.append(((district.name, street.name, community),
                                        1 / (rank + 1) / len(communities)))
        self.place_weights = [w for _, w in self.places]
        self.departments = sorted(catalog.departments)

    def hours(self, stage: str) -> float:
        return STAGE_HOURS[stage] * self.rng.lognormvariate(0, 0.8)

    def case(self, n: int) -> tuple[dict, dict, list[dict], list[dict], list[dict], list[dict]]:
        rng = self.rng
        age_days = rng.random() * self.days
        created = self.now - timedelta(days=age_days)
        # Office hours: 09:00–21:00 Lhasa time for most reports.
        local = created.astimezone(LHASA)
        created = local.replace(hour=rng.choice(range(9, 21)), minute=rng.randrange(60),
                                second=rng.randrange(60), microsecond=0).astimezone(timezone.utc)
        if created >= self.now:
            created -= timedelta(days=1)
        category = rng.choices(self.categories, weights=self.category_weights)[0]
        (district, street, community) = rng.choices(self.places, weights=self.place_weights)[0][0]
        source = _pick(rng, SOURCES)
        case_id = f"{source}-{n:07d}"
        stage = self._final_stage(age_days)
        known = stage != "reported" and not (stage == "invalid" and rng.random() < 0.5)

        # Walk the lifecycle up to the final stage, timing each stay.
        path = ["reported", "assigned", "rectifying", "verifying", "evaluating",
                "recheck_pending", "rechecking", "closed"]
        whistled = stage == "escalated" or rng.random() < 0.05
        if whistled:
            path.insert(3, "escalated")
            path.insert(4, "rectifying")
        if stage == "invalid":
            path = ["reported", "invalid"]
        elif stage == "reviewing":
            path = path[:path.index("evaluating") + 1] + ["reviewing"]
        elif stage != "closed":
            path = path[:path.index(stage) + 1]
        rebounds = 0
        if stage == "closed" and rng.random() < 0.05:
            rebounds = 2 if rng.random() < 0.1 else 1
            again = ["rectifying", "verifying", "evaluating", "recheck_pending", "rechecking"]
            path = path[:-1] + again * rebounds + ["closed"]
        failed_first = "verifying" in path and rng.random() < 0.12
        if failed_first:
            at = path.index("verifying") + 1
            path = path[:at] + ["rectifying", "verifying"] + path[at:]

        moment, stage_times, spans, steps, summons = created, {}, [], [], []
        events = [("open", None, "reported", created)]
        for position, (left, entered) in enumerate(zip(path, path[1:])):
            stage_times[left] = moment
            leaving = moment + timedelta(hours=self.hours(left))
            if leaving >= self.now:
                leaving = self.now - timedelta(minutes=len(path) - position)
            seconds = (leaving - moment).total_seconds()
            spans.append(dict(case_id=case_id, seq=position + 2, stage=left, entered_at=moment,
                              left_at=leaving, seconds=seconds, bucket=rollups.bucket(seconds)))
            step = {"assigned": "accept", "rectifying": "rectify", "verifying": "verify",
                    "reviewing": "review", "rechecking": "recheck"}.get(left)
            if step:
                limit = STAGE_HOURS[left] * 1.6
                due = moment + timedelta(hours=limit)
                extended = step == "rectify" and rng.random() < 0.04
                final_due = due + timedelta(hours=limit) if extended else due
                done_by = {"accept": "accept", "rectify": "submit_rectification",
                           "verify": "verify", "review": "review", "recheck": "recheck"}[step]
                steps.append(dict(case_id=case_id, position=len(steps), step=step, round=1,
                                  limit=f"{limit:.0f}h", started_at=moment, due_at=final_due,
                                  original_due_at=due, overdue_at=None, overdue=False,
                                  extensions=int(extended), completed_at=leaving,
                                  completed_by=done_by, late=leaving > final_due))
            events.append((f"to_{entered}", left, entered, leaving))
            moment = leaving
        stage_times[path[-1]] = moment
        overdue = False
        if stage not in ("closed", "invalid", "reported"):
            step = {"assigned": "accept", "rectifying": "rectify", "escalated": "rectify",
                    "verifying": "verify", "reviewing": "review",
                    "rechecking": "recheck"}.get(stage)
            if step:
                due = moment + timedelta(hours=STAGE_HOURS[stage] * 1.6)
                overdue = due < self.now
                steps.append(dict(case_id=case_id, position=len(steps), step=step, round=1,
                                  limit="1d", started_at=moment, due_at=due, original_due_at=due,
                                  overdue_at=due if overdue else None, overdue=overdue,
                                  extensions=0, completed_at=None, completed_by=None,
                                  late=overdue))
        if whistled and "escalated" in stage_times:
            blown = stage_times["escalated"]
            for department in rng.sample(self.departments, 2):
                reported = blown + timedelta(minutes=rng.lognormvariate(3.2, 0.7))
                due = blown + timedelta(hours=2)
                summons.append(dict(case_id=case_id, whistle_no=1, department=department,
                                    kind="tough", summoned_at=blown, due_at=due,
                                    reported_at=reported, late=reported > due, reminders=0,
                                    done_at=reported + timedelta(hours=6)))

        rating = evaluation = None
        if "recheck_pending" in stage_times or stage == "reviewing":
            rating = _pick(rng, RATINGS)
            evaluation = "rated" if rating else "no_response"
        verified = "evaluating" in stage_times or failed_first
        rechecks = path.count("rechecking") - (1 if stage == "rechecking" else 0)
        due_at = steps[-1]["due_at"] if steps and steps[-1]["completed_at"] is None else None
        signed = [s for s in steps if s["completed_by"] == "accept"]
        submitted = [s for s in steps if s["completed_by"] == "submit_rectification"]
        row = dict(
            case_id=case_id, source=source, external_id=f"T{n:09d}" if source == "hotline" else None,
            category=category.code if known else None, team=category.team if known else None,
            urgency=_pick(rng, URGENCIES), district=district, street=street, community=community,
            address=f"{district}{street}{rng.randrange(1, 300)}号附近",
            description=f"{rng.choice(DESCRIPTIONS)}（{n}）", stage=stage,
            round=1 + rebounds + int(failed_first), rebounds=rebounds, rating=rating,
            overdue=overdue, due_at=due_at, whistles=int(whistled),
            opened_by="hotline-12345" if source == "hotline" else f"{source}-{n % 400}",
            departments=f"|{'|'.join(sorted(set(category.departments) | {s['department'] for s in summons}))}|",
            rechecks=rechecks,
            first_verification=("failed" if failed_first else "passed") if verified else None,
            evaluation=evaluation, accept_signed=len(signed),
            accept_on_time=sum(not s["late"] for s in signed), rectify_submitted=len(submitted),
            rectify_on_time=sum(not s["late"] for s in submitted),
            created_at=created, updated_at=moment, last_seq=len(events))
        for column in STAGE_TIME_COLUMNS:
            row[f"{column}_at"] = stage_times.get(column)
        state = dict(case_id=case_id, last_seq=len(events),
                     state=self._state(case_id, stage, category.code, district, street))
        return row, state, self._events(case_id, events), steps, spans, summons

    def _final_stage(self, age_days: float) -> str:
        rng = self.rng
        if rng.random() < 0.03:
            return "invalid"
        # Open cases are mostly young; a few old ones linger (the overdue tail).
        open_chance = 0.85 * max(0.0, 1 - age_days / 40) + 0.01
        return _pick(rng, OPEN_STAGES) if rng.random() < open_chance else "closed"

    def _events(self, case_id: str, moves: list[tuple]) -> list[dict]:
        # Pad with supplements and 督办 notes (they change no stage) up to the count asked for.
        rows = []
        while len(moves) < self.events:
            at = moves[-1][3]
            moves.append(("supplement", moves[-1][2], moves[-1][2], at))
        for seq, (action, from_stage, to_stage, at) in enumerate(moves[:self.events], start=1):
            actor = {"id": f"u{seq % 50}", "name": "办理人", "role": "officer"}
            rows.append(dict(
                case_id=case_id, seq=seq, request_id=f"{case_id}:{seq}", action=action[:32],
                actor_id=actor["id"], actor_name=actor["name"], actor_role=actor["role"],
                actor_team=None, actor_department=None, from_stage=from_stage,
                to_stage=to_stage, round=1, occurred_at=at, note="已现场处置" if seq % 3 else "",
                evidence=[], payload={}, actor=actor))
        return rows

    def _state(self, case_id: str, stage: str, category: str, district: str,
               street: str) -> dict:
        # As large as a real case's state JSON (~2 KB).
        return {"case_id": case_id, "stage": stage, "category": category,
                "location": {"district": district, "street": street},
                "policy": {"limits": {s: "2wd" for s in ("accept", "rectify", "verify")}},
                "padding": "x" * 1600}


def seed(engine: Engine, catalog: Catalog, cases: int, events_per_case: int = 10,
         days: int = 365, now: datetime | None = None, seed: int = 20261201,
         batch: int = 5000) -> Seeded:
    """Write `cases` cases created over the `days` before `now` into an empty, migrated ledger."""
    now = now or datetime.now(timezone.utc)
    gen = _Generator(catalog, now, days, events_per_case, seed)
    done = Seeded()
    tables = (CaseRow, CaseStateRow, CaseEventRow, CaseStepRow, StageSpanRow, WhistleSummonsRow)
    for start in range(0, cases, batch):
        chunks: list[list[dict]] = [[] for _ in tables]
        for n in range(start, min(cases, start + batch)):
            for chunk, rows in zip(chunks, gen.case(n)):
                if isinstance(rows, dict):
                    chunk.append(rows)
                else:
                    chunk.extend(rows)
        _write(engine, dict(zip(tables, chunks)))
        done.cases += len(chunks[0])
        done.events += len(chunks[2])
        done.steps += len(chunks[3])
        done.spans += len(chunks[4])
        done.summons += len(chunks[5])
    with engine.begin() as conn:
        # Rows written behind the projection's back: build the roll-ups as a migration would.
        rollups.recompute(conn)
    with engine.begin() as conn:
        # What a maintained database has: planner statistics (autovacuum does it on PostgreSQL).
        conn.execute(text("ANALYZE"))
    done.teams = sorted({c.team for c in catalog.categories.values()})
    done.districts = list(catalog.districts)
    return done


def _write(engine: Engine, rows: dict) -> None:
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            for table, chunk in rows.items():
                if chunk:
                    conn.execute(insert(table), chunk)
        return
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            for table, chunk in rows.items():
                if not chunk:
                    continue
                columns = list(chunk[0])
                names = ", ".join(f'"{c}"' for c in columns)
                with cursor.copy(f"COPY {table.__tablename__} ({names}) FROM STDIN") as copy:
                    for row in chunk:
                        copy.write_row([_copy_value(row[c]) for c in columns])
        raw.commit()
    finally:
        raw.close()


def _copy_value(value):
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


"""Counts for Prometheus, read from the ledger when /metrics is scraped.

The ledger is the one place every worker replica writes to, so figures read from it are the
same whichever API replica is scraped, survive restarts and are never counted twice.
"""

from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from domain.stages import TERMINAL_STAGES
from ledger.outbox import PENDING
from ledger.tables import CaseEventRow, CaseRow, CaseStepRow, OutboxDeliveryRow, WhistleRow


@dataclass
class LedgerCounts:
    cases_by_source: dict[str, int] = field(default_factory=dict)
    open_cases_by_stage: dict[str, int] = field(default_factory=dict)
    # (action, to_stage) -> events
    transitions: dict[tuple[str, str], int] = field(default_factory=dict)
    overdue_steps_by_step: dict[str, int] = field(default_factory=dict)
    overdue_cases: int = 0
    whistles_by_status: dict[str, int] = field(default_factory=dict)
    deliveries_by_status: dict[str, int] = field(default_factory=dict)
    # Pending deliveries whose last attempt failed: waiting for their next try.
    deliveries_retrying: int = 0


def read_counts(engine: Engine) -> LedgerCounts:
    counts = LedgerCounts()
    with Session(engine) as session:
        def grouped(*columns, where=None):
            query = select(*columns, func.count()).group_by(*columns)
            if where is not None:
                query = query.where(where)
            return session.execute(query).all()

        counts.cases_by_source = {s: n for s, n in grouped(CaseRow.source)}
        counts.open_cases_by_stage = {
            s: n for s, n in grouped(CaseRow.stage,
                                     where=CaseRow.stage.not_in(TERMINAL_STAGES))}
        counts.transitions = {(a, s): n for a, s, n in grouped(CaseEventRow.action,
                                                               CaseEventRow.to_stage)}
        counts.overdue_steps_by_step = {
            s: n for s, n in grouped(CaseStepRow.step, where=CaseStepRow.overdue.is_(True))}
        counts.overdue_cases = session.scalar(
            select(func.count()).select_from(CaseRow).where(CaseRow.overdue.is_(True))) or 0
        counts.whistles_by_status = {s: n for s, n in grouped(WhistleRow.status)}
        counts.deliveries_by_status = {s: n for s, n in grouped(OutboxDeliveryRow.status)}
        counts.deliveries_retrying = session.scalar(
            select(func.count()).select_from(OutboxDeliveryRow)
            .where(OutboxDeliveryRow.status == PENDING,
                   OutboxDeliveryRow.last_error.is_not(None))) or 0
    return counts


def ping(engine: Engine) -> None:
    """Raises if the ledger database cannot be reached."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))

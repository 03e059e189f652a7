"""What the supervisors' dashboard reads beyond the case list and the statistics: the steps
past their deadline now, and where the open cases are. Scoped like every other listing
(ledger.queries.visible_to), plain SQL that runs the same on SQLite and PostgreSQL."""

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import Engine, func, select

from domain.models import Actor
from domain.stages import OPEN_STAGES, Stage
from ledger.queries import visible_to
from ledger.tables import CaseRow, CaseStateRow, CaseStepRow

class OverdueStep(BaseModel):
    case_id: str
    step: str
    round: int
    due_at: datetime
    stage: Stage
    team: str | None
    district: str
    street: str | None
    address: str
    description: str
    urgency: str


class OverdueSteps(BaseModel):
    items: list[OverdueStep]
    total: int


class CasePlace(BaseModel):
    case_id: str
    district: str
    street: str | None
    address: str
    overdue: bool
    lat: float | None
    lng: float | None


def overdue_steps(engine: Engine, actor: Actor, limit: int = 500) -> OverdueSteps:
    """Every step still waiting and already past its deadline, oldest deadline first."""
    where = [CaseStepRow.overdue, CaseStepRow.completed_at.is_(None),
             CaseRow.stage.in_(OPEN_STAGES), visible_to(actor, engine.dialect.name)]
    steps = (select(CaseStepRow.case_id, CaseStepRow.step, CaseStepRow.round,
                    CaseStepRow.due_at, CaseRow.stage, CaseRow.team, CaseRow.district,
                    CaseRow.street, CaseRow.address, CaseRow.description, CaseRow.urgency)
             .join(CaseRow, CaseRow.case_id == CaseStepRow.case_id).where(*where))
    with engine.connect() as conn:
        total = conn.scalar(steps.with_only_columns(func.count()))
        rows = conn.execute(steps.order_by(CaseStepRow.due_at.asc(), CaseStepRow.case_id.asc())
                            .limit(limit)).all()
    return OverdueSteps(items=[OverdueStep.model_validate(r._mapping) for r in rows],
                        total=total)


def open_case_places(engine: Engine, actor: Actor, limit: int = 2000) -> list[CasePlace]:
    """The open cases `actor` may read with their coordinates, where the report gave them."""
    # Coordinates are only in the state JSON: read for the open cases alone.
    lat = CaseStateRow.state[("location", "lat")].as_float()
    lng = CaseStateRow.state[("location", "lng")].as_float()
    query = (select(CaseRow.case_id, CaseRow.district, CaseRow.street, CaseRow.address,
                    CaseRow.overdue, lat.label("lat"), lng.label("lng"))
             .join(CaseStateRow, CaseStateRow.case_id == CaseRow.case_id)
             .where(CaseRow.stage.in_(OPEN_STAGES), visible_to(actor, engine.dialect.name))
             .order_by(CaseRow.created_at.desc(), CaseRow.case_id.desc()).limit(limit))
    with engine.connect() as conn:
        return [CasePlace.model_validate(r._mapping) for r in conn.execute(query)]

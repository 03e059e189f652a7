"""The ledger's record of 12345 work orders: which case each ticket belongs to, the callers to
call back, the follow-up results the platform posted, and the callbacks owed to the platform
(written to the outbox with the event that causes them, in `Ledger.record`'s transaction)."""

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, Engine, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from domain import hotline
from domain.models import CaseState, LedgerEntry, Notification, Source
from domain.stages import TERMINAL_STAGES
from ledger.tables import CaseRow, CaseStateRow, HotlineFollowUpRow, HotlineTicketRow

_INSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


# Built once: every ledger write that owes a callback runs it.
_MERGED_TICKETS = (select(HotlineTicketRow.ticket_no)
                   .where(HotlineTicketRow.case_id == bindparam("case_id"),
                          HotlineTicketRow.merged)
                   .order_by(HotlineTicketRow.received_at, HotlineTicketRow.ticket_no))


def callbacks(session: Session | Connection, entry: LedgerEntry) -> list[Notification]:
    """The hotline callback the entry's event causes, if the case has work orders behind it."""
    event, state = entry.event, entry.state
    if hotline.callback_kind(event) is None:
        return []
    tickets = [state.external_id] if state.source == Source.HOTLINE and state.external_id else []
    tickets += session.scalars(_MERGED_TICKETS, {"case_id": state.case_id}).all()
    notice = hotline.callback(event, state, tickets)
    return [notice] if notice else []


@dataclass(frozen=True)
class Ticket:
    ticket_no: str
    case_id: str
    merged: bool
    caller_name: str | None
    caller_phone: str | None
    call_time: datetime
    appeal_type: str
    hotline_code: str
    received_at: datetime


@dataclass(frozen=True)
class StoredFollowUp:
    id: int
    case_id: str
    stage: str
    outcome: str


class HotlineRecords:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = _INSERT[engine.dialect.name]

    # ---- work orders ---------------------------------------------------------------------------

    def ticket(self, ticket_no: str) -> Ticket | None:
        with Session(self.engine) as session:
            row = session.get(HotlineTicketRow, ticket_no)
            return _ticket(row) if row else None

    def add_ticket(self, order: hotline.WorkOrder, case_id: str, merged: bool) -> Ticket:
        """Store the work order against its case; a ticket already stored keeps its case (a
        redelivery racing the first delivery must not move it). Returns what is stored."""
        values = dict(ticket_no=order.ticket_no, case_id=case_id, merged=merged,
                      caller_name=order.caller.name, caller_phone=order.caller.phone,
                      call_time=order.call_time, appeal_type=order.appeal_type,
                      hotline_code=order.category_code, content=order.content,
                      received_at=datetime.now(timezone.utc))
        with Session(self.engine) as session, session.begin():
            session.execute(self._insert(HotlineTicketRow).values(**values)
                            .on_conflict_do_nothing(index_elements=["ticket_no"]))
            return _ticket(session.get(HotlineTicketRow, order.ticket_no))

    def tickets_of(self, case_id: str) -> list[Ticket]:
        """The case's work orders, its own first, then the merged ones as they came in."""
        with Session(self.engine) as session:
            rows = session.scalars(select(HotlineTicketRow)
                                   .where(HotlineTicketRow.case_id == case_id)
                                   .order_by(HotlineTicketRow.merged,
                                             HotlineTicketRow.received_at)).all()
            return [_ticket(r) for r in rows]

    def open_cases(self, category: str, district: str) -> list[CaseState]:
        """Cases still open in the category and district: where a repeat report is looked for."""
        with Session(self.engine) as session:
            states = session.scalars(select(CaseStateRow.state).join(
                CaseRow, CaseRow.case_id == CaseStateRow.case_id).where(
                CaseRow.category == category, CaseRow.district == district,
                CaseRow.stage.not_in([s.value for s in TERMINAL_STAGES]))).all()
        return [CaseState.model_validate(s) for s in states]

    # ---- follow-up results ---------------------------------------------------------------------

    def store_follow_up(self, ticket_no: str, request_key: str, case_id: str, stage: str,
                        result: hotline.FollowUpResult) -> StoredFollowUp:
        """Store the result once per (ticket, request key); a resend returns the stored one."""
        values = dict(ticket_no=ticket_no, request_key=request_key, case_id=case_id,
                      rating=result.rating.value, resolved=result.resolved,
                      comment=result.comment, called_at=result.called_at,
                      received_at=datetime.now(timezone.utc), stage=stage, outcome="received")
        with Session(self.engine) as session, session.begin():
            session.execute(self._insert(HotlineFollowUpRow).values(**values)
                            .on_conflict_do_nothing(index_elements=["ticket_no", "request_key"]))
            row = session.scalars(select(HotlineFollowUpRow).where(
                HotlineFollowUpRow.ticket_no == ticket_no,
                HotlineFollowUpRow.request_key == request_key)).one()
            return StoredFollowUp(id=row.id, case_id=row.case_id, stage=row.stage,
                                  outcome=row.outcome)

    def set_follow_up_outcome(self, follow_up_id: int, outcome: str) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(update(HotlineFollowUpRow).where(HotlineFollowUpRow.id == follow_up_id)
                            .values(outcome=outcome))

    def follow_ups(self, case_id: str) -> list[dict]:
        with Session(self.engine) as session:
            rows = session.scalars(select(HotlineFollowUpRow)
                                   .where(HotlineFollowUpRow.case_id == case_id)
                                   .order_by(HotlineFollowUpRow.id)).all()
            return [dict(id=r.id, ticket_no=r.ticket_no, rating=r.rating, resolved=r.resolved,
                         comment=r.comment, called_at=r.called_at, received_at=r.received_at,
                         stage=r.stage, outcome=r.outcome) for r in rows]


def _ticket(row: HotlineTicketRow) -> Ticket:
    return Ticket(ticket_no=row.ticket_no, case_id=row.case_id, merged=row.merged,
                  caller_name=row.caller_name, caller_phone=row.caller_phone,
                  call_time=row.call_time, appeal_type=row.appeal_type,
                  hotline_code=row.hotline_code, received_at=row.received_at)

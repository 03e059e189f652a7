from datetime import datetime, timezone

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer,
                        MetaData, String, Text, TypeDecorator, UniqueConstraint, text)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


def sqlite_text_of(value: datetime | None) -> str | None:
    """What UTCDateTime and SQLite's DATETIME together store for a moment, in one C call
    rather than their two Python ones: the ledger's hot path (ledger.prepared) writes some 30
    moments an entry."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the ledger")
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


# SQLite only autoincrements INTEGER PRIMARY KEY.
EventId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "pk": "pk_%(table_name)s"}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


STAGE_TIME_COLUMNS = ("reported", "assigned", "rectifying", "escalated", "verifying",
                      "evaluating", "reviewing", "recheck_pending", "rechecking", "closed",
                      "invalid")


class CaseRow(Base):
    __tablename__ = "cases"

    case_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(128))
    category: Mapped[str | None] = mapped_column(String(64), index=True)
    team: Mapped[str | None] = mapped_column(String(64))
    urgency: Mapped[str] = mapped_column(String(16))
    district: Mapped[str] = mapped_column(String(64))
    street: Mapped[str | None] = mapped_column(String(64))
    community: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(24), index=True)
    round: Mapped[int] = mapped_column(Integer)
    rebounds: Mapped[int] = mapped_column(Integer)
    rating: Mapped[str | None] = mapped_column(String(24))
    # The step the case waits on now is past its deadline, and that deadline.
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # What the supervisors' statistics count (see api/stats docs for the definitions).
    whistles: Mapped[int] = mapped_column(Integer, default=0)
    # Who may list the case: the hotline/reporter who opened it, and the departments concerned
    # (the category's and every summoned one) as "|name|name|" for a LIKE match.
    opened_by: Mapped[str] = mapped_column(String(200), index=True, default="")
    departments: Mapped[str] = mapped_column(Text, default="")
    rechecks: Mapped[int] = mapped_column(Integer, default=0)
    first_verification: Mapped[str | None] = mapped_column(String(8))
    evaluation: Mapped[str | None] = mapped_column(String(16))
    # Its 签收 steps ended by signing and its 整改 steps ended by submitting, and how many of
    # each were in time: 及时签收率 and 按时办结率 without reading case_steps.
    accept_signed: Mapped[int] = mapped_column(Integer, default=0)
    accept_on_time: Mapped[int] = mapped_column(Integer, default=0)
    rectify_submitted: Mapped[int] = mapped_column(Integer, default=0)
    rectify_on_time: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the case last entered each stage; null until it has.
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rectifying_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verifying_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    evaluating_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recheck_pending_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rechecking_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    invalid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Sequence number of the newest event applied: older projections never overwrite newer.
    last_seq: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_cases_source_external_id", "source", "external_id"),
                      # A team's or a district's cases in some stages, counted in the index.
                      Index("ix_cases_team_stage", "team", "stage"),
                      Index("ix_cases_district_stage", "district", "stage"),
                      # The overdue board, whole or by district or team: counted in the index.
                      Index("ix_cases_overdue_district_team", "overdue", "district", "team"),
                      # The case list's keyset pages by last update (ledger/queries.py).
                      Index("ix_cases_updated_at_case_id", "updated_at", "case_id"),
                      # Statistics read a period's cases from the index alone (ledger/stats.py).
                      Index("ix_cases_stats_cohort", "created_at", "stage", "team", "district",
                            "street", "community", "category", "source", "rating", "evaluation",
                            "first_verification", "rebounds", "rechecks", "accept_signed",
                            "accept_on_time", "rectify_submitted", "rectify_on_time", "case_id"))


class CaseStateRow(Base):
    """A case's whole state as of cases.last_seq, as JSON (~2 KB). Kept apart so the lists and
    counts that read `cases` row by row read narrow rows."""
    __tablename__ = "case_states"

    case_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    state: Mapped[dict] = mapped_column(JSON)


class CaseEventRow(Base):
    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(128))
    seq: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32), index=True)
    actor_id: Mapped[str] = mapped_column(String(200))
    actor_name: Mapped[str] = mapped_column(String(100))
    actor_role: Mapped[str] = mapped_column(String(16))
    actor_team: Mapped[str | None] = mapped_column(String(200))
    actor_department: Mapped[str | None] = mapped_column(String(200))
    from_stage: Mapped[str | None] = mapped_column(String(24))
    to_stage: Mapped[str] = mapped_column(String(24))
    round: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    note: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list] = mapped_column(JSON)
    payload: Mapped[dict] = mapped_column(JSON)
    actor: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_case_events_case_id_seq"),)


class CaseStartRow(Base):
    """A case recorded by the API whose workflow may not have started yet. Written in the
    transaction of its opening and deleted once Temporal holds the workflow, so a case taken in
    while Temporal is away, or by an API that dies before starting it, is started later by
    the worker (runtime/case_starts.py) instead of being lost."""
    __tablename__ = "case_starts"

    case_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    intake: Mapped[dict] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxRow(Base):
    """A notification owed to the outside world, written in the transaction of its event."""
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(200))
    case_id: Mapped[str] = mapped_column(String(200), index=True)
    audience: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict] = mapped_column(JSON)
    # The fan-out's cursor only passes rows this old: see ledger/outbox.py.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxDeliveryRow(Base):
    """One outbox row on its way to one webhook endpoint."""
    __tablename__ = "outbox_deliveries"

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(
        String(200), ForeignKey("outbox.event_id", name="fk_outbox_deliveries_event_id"))
    endpoint: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(16))  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer)
    # When a pending delivery may next be tried; a claim pushes it out by a lease, so a relay
    # that dies mid-send leaves the delivery due again once the lease runs out.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("event_id", "endpoint", name="uq_outbox_deliveries_event_id_endpoint"),
        # Delivered and failed rows pile up forever; only the pending ones are ever polled.
        Index("ix_outbox_deliveries_due", "next_attempt_at",
              postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
    )


class OutboxCursorRow(Base):
    """Per endpoint: every outbox row up to this id has its delivery row, so fan-out starts
    after it instead of comparing the whole outbox with the deliveries on every poll."""
    __tablename__ = "outbox_cursors"

    endpoint: Mapped[str] = mapped_column(String(2000), primary_key=True)
    outbox_id: Mapped[int] = mapped_column(EventId)


class WhistleRow(Base):
    """One 吹哨: its status and, as JSON, its whole record as of its newest event."""
    __tablename__ = "whistles"

    case_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    whistle_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    blown_by: Mapped[str] = mapped_column(String(200))
    blown_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seq: Mapped[int] = mapped_column(Integer)
    state: Mapped[dict] = mapped_column(JSON)


class WhistleSummonsRow(Base):
    """A department's part in a whistle: what the 吹哨报到双考核 counts."""
    __tablename__ = "whistle_summons"

    case_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    whistle_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    department: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    summoned_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    late: Mapped[bool] = mapped_column(Boolean)
    reminders: Mapped[int] = mapped_column(Integer)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WhistleEventRow(Base):
    __tablename__ = "whistle_events"

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(128), index=True)
    whistle_no: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list] = mapped_column(JSON)
    payload: Mapped[dict] = mapped_column(JSON)
    actor: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (UniqueConstraint("case_id", "whistle_no", "seq",
                                       name="uq_whistle_events_case_id_whistle_no_seq"),)


class CaseStepRow(Base):
    """Every time-limited step of every case (StepClock): 及时签收率 and 按时办结率 count these."""
    __tablename__ = "case_steps"

    case_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)  # index in the case's steps
    step: Mapped[str] = mapped_column(String(16))
    round: Mapped[int] = mapped_column(Integer)
    limit: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    original_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue: Mapped[bool] = mapped_column(Boolean)
    extensions: Mapped[int] = mapped_column(Integer)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by: Mapped[str | None] = mapped_column(String(32))
    # Completed (or still open) after the deadline as finally agreed.
    late: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (Index("ix_case_steps_step_completed_at", "step", "completed_at"),
                      # 及时签收率/按时办结率 per case without reading the rows (ledger/stats.py).
                      Index("ix_case_steps_stats", "case_id", "step", "completed_by", "late"))


class StageSpanRow(Base):
    """How long a case stayed in a stage, one row per stage left (time per stage figures)."""
    __tablename__ = "stage_spans"

    case_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)  # the event that left the stage
    stage: Mapped[str] = mapped_column(String(24))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    seconds: Mapped[float] = mapped_column(Float)
    # The duration's band on a logarithmic scale (ledger/rollups.py), for the p90.
    bucket: Mapped[int] = mapped_column(Integer)

    # Time per stage of a period's cases without reading the rows (ledger/stats.py).
    __table_args__ = (Index("ix_stage_spans_stats", "case_id", "stage", "bucket", "seconds"),)


ROLLUP_COUNTS = ("found", "open", "closed", "invalid", "rated", "no_response", "passed",
                 "verified", "satisfied", "rebounds", "rechecks", "accept_signed",
                 "accept_on_time", "rectify_submitted", "rectify_on_time")


class StatsRollupRow(Base):
    """The figures of every case created in a Lhasa month (ledger/rollups.py), for a reader's
    scope — scope 'all' (value ''), or the cases of one team or one district — per grouping:
    dim 'all' with value '', or team / district / street / category / source with the case's
    value ('' where it has none). Kept current by every ledger write."""
    __tablename__ = "stats_rollup"
    __table_args__ = {"sqlite_with_rowid": False}

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # "2026-11"
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    scope_value: Mapped[str] = mapped_column(String(64), primary_key=True)
    dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    found: Mapped[int] = mapped_column(Integer)
    open: Mapped[int] = mapped_column(Integer)
    closed: Mapped[int] = mapped_column(Integer)
    invalid: Mapped[int] = mapped_column(Integer)
    rated: Mapped[int] = mapped_column(Integer)
    no_response: Mapped[int] = mapped_column(Integer)
    passed: Mapped[int] = mapped_column(Integer)
    verified: Mapped[int] = mapped_column(Integer)
    satisfied: Mapped[int] = mapped_column(Integer)
    rebounds: Mapped[int] = mapped_column(Integer)
    rechecks: Mapped[int] = mapped_column(Integer)
    accept_signed: Mapped[int] = mapped_column(Integer)
    accept_on_time: Mapped[int] = mapped_column(Integer)
    rectify_submitted: Mapped[int] = mapped_column(Integer)
    rectify_on_time: Mapped[int] = mapped_column(Integer)


class StageTimeRollupRow(Base):
    """Stays in a stage of the valid cases created in a Lhasa month, per scope and grouping as
    in stats_rollup, counted per duration band: how many, their total, shortest and longest."""
    __tablename__ = "stage_time_rollup"
    # SQLite: rows live in the primary key's order, so a month's grouping is one range read.
    __table_args__ = {"sqlite_with_rowid": False}

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    scope_value: Mapped[str] = mapped_column(String(64), primary_key=True)
    dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    stage: Mapped[str] = mapped_column(String(24), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    spans: Mapped[int] = mapped_column(Integer)
    # Total in whole microseconds: sums of integers come out the same in any order.
    micros: Mapped[int] = mapped_column(BigInteger)
    # Bounds of the stays counted; after stays leave (a re-dispatch moves a case to another
    # team), they may be wider than what remains, but never outside the band.
    min_seconds: Mapped[float | None] = mapped_column(Float)
    max_seconds: Mapped[float | None] = mapped_column(Float)


class HotlineTicketRow(Base):
    """A 12345 work order and the case it belongs to: the one it opened, or an open case it
    repeats (并单, `merged`), whose follow-up list its caller joins."""
    __tablename__ = "hotline_tickets"

    ticket_no: Mapped[str] = mapped_column(String(100), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(128), index=True)
    merged: Mapped[bool] = mapped_column(Boolean)
    caller_name: Mapped[str | None] = mapped_column(String(100))
    caller_phone: Mapped[str | None] = mapped_column(String(20))
    call_time: Mapped[datetime] = mapped_column(UTCDateTime)
    appeal_type: Mapped[str] = mapped_column(String(20))
    hotline_code: Mapped[str] = mapped_column(String(32))
    content: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HotlineFollowUpRow(Base):
    """A follow-up result (回访) the platform posted, kept whether or not the case was waiting
    for one; keyed by the platform's request key so a resend is stored once."""
    __tablename__ = "hotline_follow_ups"

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    ticket_no: Mapped[str] = mapped_column(String(100))
    request_key: Mapped[str] = mapped_column(String(200))
    case_id: Mapped[str] = mapped_column(String(128), index=True)
    rating: Mapped[str] = mapped_column(String(24))
    resolved: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str] = mapped_column(Text)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The case's stage when it arrived, and what became of it: evaluated (it fed the 评价
    # step) or not_awaiting (stored only).
    stage: Mapped[str] = mapped_column(String(24))
    outcome: Mapped[str] = mapped_column(String(16))

    __table_args__ = (UniqueConstraint("ticket_no", "request_key",
                                       name="uq_hotline_follow_ups_ticket_no_request_key"),)

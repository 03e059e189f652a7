from datetime import datetime, timezone

from sqlalchemy import (JSON, BigInteger, DateTime, Index, Integer, MetaData, String, Text,
                        TypeDecorator, UniqueConstraint)
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
    team: Mapped[str | None] = mapped_column(String(64), index=True)
    urgency: Mapped[str] = mapped_column(String(16))
    district: Mapped[str] = mapped_column(String(64), index=True)
    street: Mapped[str | None] = mapped_column(String(64))
    community: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(24), index=True)
    round: Mapped[int] = mapped_column(Integer)
    rebounds: Mapped[int] = mapped_column(Integer)
    rating: Mapped[str | None] = mapped_column(String(24))
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
    state: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (Index("ix_cases_source_external_id", "source", "external_id"),)


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

"""The transactional outbox: notifications stored with the event that caused them, and their
deliveries to webhook endpoints.

`add` runs inside `Ledger.record`'s transaction, so a notification exists exactly when its event
does, and a retried record adds nothing. `Outbox` serves the relay (notifications/relay.py) and
keeps to short transactions of its own, so it never holds up the ledger's writers.
"""

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, Engine, exists, func, literal, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from domain.models import Notification
from ledger.prepared import Prepared
from ledger.tables import OutboxCursorRow, OutboxDeliveryRow, OutboxRow, UTCDateTime

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
MAX_ERROR_CHARS = 500

_INSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
# outbox.add's statement per dialect's insert construct: it runs in every ledger write.
_ADDS: dict[Callable, Prepared] = {}
# A literal, not a bound parameter: only then can PostgreSQL's cached generic plans (and SQLite)
# prove the query matches the partial index ix_outbox_deliveries_due.
_IS_PENDING = OutboxDeliveryRow.status == literal_column(f"'{PENDING}'")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def add(connection: Connection, notifications: list[Notification], insert: Callable) -> None:
    """Store notifications in the caller's transaction; one already stored (same event_id) is
    left as it is. `insert` is the dialect's insert (sqlite.insert or postgresql.insert)."""
    if not notifications:
        return
    created_at = _now()
    rows = [dict(event_id=n.event_id, kind=n.kind, case_id=n.case_id, audience=n.audience.value,
                 recipient=n.recipient, title=n.title, body=n.body, occurred_at=n.occurred_at,
                 data=n.model_dump(mode="json", include={"data"})["data"], created_at=created_at)
            for n in notifications]
    # Rows as parameters, not values(): one statement, built once per dialect, whatever their
    # number.
    statement = _ADDS.get(insert)
    if statement is None:
        statement = _ADDS[insert] = Prepared(insert(OutboxRow.__table__).on_conflict_do_nothing(
            index_elements=["event_id"]))
    statement.run(connection, rows)


@dataclass(frozen=True)
class Claim:
    """A delivery the relay has taken to send now; `attempt` counts this one."""
    delivery_id: int
    endpoint: str
    attempt: int
    notification: Notification


@dataclass(frozen=True)
class Delivery:
    endpoint: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    created_at: datetime
    notification: Notification
    deliveries: tuple[Delivery, ...]


class Outbox:
    """The relay's side of the outbox. Safe with several relays on one database: fan-out is
    idempotent and a claim takes each delivery for one relay only, for the length of a lease.

    Fan-out keeps a cursor per endpoint so a poll looks only at recent rows. Ids are not
    committed in id order on PostgreSQL (a transaction may commit id 10 after another committed
    id 11), so the cursor passes only rows older than `settle`; rows above it are compared with
    the deliveries on every poll, which costs one index probe each.
    """

    def __init__(self, engine: Engine, settle: timedelta = timedelta(minutes=5),
                 fan_out_batch: int = 1000, audiences: Collection[str] | None = None,
                 excluded_audiences: Collection[str] = ()) -> None:
        self.engine = engine
        self.settle = settle
        self.fan_out_batch = fan_out_batch
        self._insert = _INSERT[engine.dialect.name]
        # Which rows this outbox's endpoints get: the hotline's callbacks go to the hotline's
        # endpoint only. An endpoint must keep its audiences: its cursor assumes them.
        self._audiences = [OutboxRow.audience.in_(list(audiences))] if audiences else []
        if excluded_audiences:
            self._audiences.append(OutboxRow.audience.not_in(list(excluded_audiences)))

    # ---- fan-out ---------------------------------------------------------------------------

    def fan_out(self, endpoints: Sequence[str]) -> int:
        """Give every outbox row a pending delivery for each endpoint; returns how many were
        made. A new endpoint starts from the beginning of the outbox."""
        return sum(self._fan_out(endpoint) for endpoint in endpoints)

    def _fan_out(self, endpoint: str) -> int:
        now = _now()
        with Session(self.engine) as session:
            cursor = session.scalar(select(OutboxCursorRow.outbox_id)
                                    .where(OutboxCursorRow.endpoint == endpoint)) or 0
        made, position = 0, cursor
        # In batches of ids, each its own transaction: a new endpoint's backlog must not hold
        # SQLite's single write lock against the ledger for long.
        while (upper := self._batch_end(position)) is not None:
            made += self._fan_out_range(endpoint, position, upper, now)
            position = upper
        self._advance_cursor(endpoint, cursor, position, now - self.settle)
        return made

    def _batch_end(self, after: int) -> int | None:
        ids = (select(OutboxRow.id).where(OutboxRow.id > after).order_by(OutboxRow.id)
               .limit(self.fan_out_batch).subquery())
        with Session(self.engine) as session:
            return session.scalar(select(func.max(ids.c.id)))

    def _fan_out_range(self, endpoint: str, after: int, upto: int, now: datetime) -> int:
        o, d = OutboxRow, OutboxDeliveryRow
        done = exists().where(d.event_id == o.event_id, d.endpoint == endpoint)
        rows = select(o.event_id, literal(endpoint), literal(PENDING), literal(0),
                      literal(now, UTCDateTime)).where(o.id > after, o.id <= upto, ~done,
                                                       *self._audiences)
        insert = (self._insert(d)
                  .from_select(["event_id", "endpoint", "status", "attempts", "next_attempt_at"],
                               rows)
                  # Another relay may fan out the same rows at the same moment.
                  .on_conflict_do_nothing(index_elements=["event_id", "endpoint"])
                  # Counted from RETURNING: rowcount is not reliable for INSERT ... SELECT.
                  .returning(d.id))
        with Session(self.engine) as session, session.begin():
            return len(session.execute(insert).all())

    def _advance_cursor(self, endpoint: str, cursor: int, position: int,
                        settled_before: datetime) -> None:
        with Session(self.engine) as session, session.begin():
            settled = session.scalar(select(func.max(OutboxRow.id)).where(
                OutboxRow.id > cursor, OutboxRow.id <= position,
                OutboxRow.created_at <= settled_before))
            if settled is None:
                return
            upsert = self._insert(OutboxCursorRow).values(endpoint=endpoint, outbox_id=settled)
            session.execute(upsert.on_conflict_do_update(
                index_elements=["endpoint"], set_={"outbox_id": upsert.excluded.outbox_id},
                where=OutboxCursorRow.outbox_id < upsert.excluded.outbox_id))

    # ---- delivery --------------------------------------------------------------------------

    def claim(self, endpoints: Sequence[str], due_by: datetime, limit: int,
              lease: timedelta) -> list[Claim]:
        """Take up to `limit` pending deliveries due by `due_by` to the given endpoints, counting
        an attempt for each and hiding them from other claims for `lease` (after which a
        delivery whose relay died is due again)."""
        if not endpoints:
            return []
        d = OutboxDeliveryRow
        due = (select(d.id).where(_IS_PENDING, d.next_attempt_at <= due_by,
                                  d.endpoint.in_(list(endpoints)))
               .order_by(d.next_attempt_at).limit(limit)
               # PostgreSQL: concurrent relays take disjoint rows. SQLite ignores it and
               # serialises the whole statement instead.
               .with_for_update(skip_locked=True))
        take = (update(d).where(d.id.in_(due))
                .values(attempts=d.attempts + 1, next_attempt_at=_now() + lease)
                .returning(d.id, d.event_id, d.endpoint, d.attempts)
                .execution_options(synchronize_session=False))
        with Session(self.engine) as session, session.begin():
            taken = session.execute(take).all()
            if not taken:
                return []
            rows = session.scalars(select(OutboxRow).where(
                OutboxRow.event_id.in_({t.event_id for t in taken}))).all()
            notifications = {r.event_id: _notification(r) for r in rows}
        return [Claim(delivery_id=t.id, endpoint=t.endpoint, attempt=t.attempts,
                      notification=notifications[t.event_id]) for t in taken]

    def mark_delivered(self, claim: Claim) -> None:
        # Unconditional: even if a slow send outlived its lease and the delivery was taken
        # again, it did arrive.
        self._update(claim, guarded=False, status=DELIVERED, delivered_at=_now(),
                     last_error=None)

    def mark_retry(self, claim: Claim, error: str, next_attempt_at: datetime) -> None:
        self._update(claim, guarded=True, next_attempt_at=next_attempt_at,
                     last_error=error[:MAX_ERROR_CHARS])

    def mark_failed(self, claim: Claim, error: str) -> None:
        self._update(claim, guarded=True, status=FAILED, last_error=error[:MAX_ERROR_CHARS])

    def _update(self, claim: Claim, guarded: bool, **values) -> None:
        d = OutboxDeliveryRow
        statement = update(d).where(d.id == claim.delivery_id)
        if guarded:
            # A failure reported after the lease ran out must not undo what the relay that
            # took the delivery next has recorded.
            statement = statement.where(_IS_PENDING, d.attempts == claim.attempt)
        with Session(self.engine) as session, session.begin():
            session.execute(statement.values(**values)
                            .execution_options(synchronize_session=False))

    # ---- reading ---------------------------------------------------------------------------

    def for_case(self, case_id: str) -> list[OutboxEntry]:
        """The case's notifications in the order they were stored, each with its deliveries."""
        with Session(self.engine) as session:
            rows = session.scalars(select(OutboxRow).where(OutboxRow.case_id == case_id)
                                   .order_by(OutboxRow.id)).all()
            deliveries: dict[str, list[Delivery]] = {r.event_id: [] for r in rows}
            if rows:
                for d in session.scalars(select(OutboxDeliveryRow)
                                         .where(OutboxDeliveryRow.event_id.in_(list(deliveries)))
                                         .order_by(OutboxDeliveryRow.id)):
                    deliveries[d.event_id].append(_delivery(d))
        return [OutboxEntry(id=r.id, created_at=r.created_at, notification=_notification(r),
                            deliveries=tuple(deliveries[r.event_id])) for r in rows]


@dataclass(frozen=True)
class DeliveryEntry:
    notification: Notification
    delivery: Delivery


def deliveries(engine: Engine, status: str, audience: str | None = None,
               case_id: str | None = None, limit: int = 100) -> list[DeliveryEntry]:
    """Deliveries in `status`, the ones due soonest (or, for failed ones, the latest) first."""
    o, d = OutboxRow, OutboxDeliveryRow
    query = select(o, d).join(d, d.event_id == o.event_id).where(d.status == status)
    if audience:
        query = query.where(o.audience == audience)
    if case_id:
        query = query.where(o.case_id == case_id)
    order = d.next_attempt_at if status == PENDING else d.id.desc()
    with Session(engine) as session:
        rows = session.execute(query.order_by(order).limit(limit)).all()
        return [DeliveryEntry(_notification(row), _delivery(dl)) for row, dl in rows]


def status_counts(engine: Engine, audience: str | None = None) -> dict[str, int]:
    o, d = OutboxRow, OutboxDeliveryRow
    query = select(d.status, func.count()).group_by(d.status)
    if audience:
        query = query.join(o, o.event_id == d.event_id).where(o.audience == audience)
    with Session(engine) as session:
        found = dict(session.execute(query).all())
    return {s: found.get(s, 0) for s in (PENDING, FAILED, DELIVERED)}


def _delivery(row: OutboxDeliveryRow) -> Delivery:
    return Delivery(endpoint=row.endpoint, status=row.status, attempts=row.attempts,
                    next_attempt_at=row.next_attempt_at, last_error=row.last_error,
                    delivered_at=row.delivered_at)


def _notification(row: OutboxRow) -> Notification:
    return Notification(event_id=row.event_id, kind=row.kind, case_id=row.case_id,
                        audience=row.audience, recipient=row.recipient, title=row.title,
                        body=row.body, occurred_at=row.occurred_at, data=row.data)

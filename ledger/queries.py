"""The supervisors' case list (整改台账) over the ledger's `cases` table: filters, the caller's
scope, keyset pages and a streamed iteration for exports.

Pages are keyset, never OFFSET: a cursor is the last row's sort value and case_id, and the next
page starts after it instead of counting the rows before it, so rows inserted between two
fetches neither repeat nor push others out of the listing. Everything here is plain SQL that
runs the same on SQLite and PostgreSQL.
"""

import base64
import binascii
import operator
from collections.abc import Iterator
from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated, Literal, TypeVar

from pydantic import (AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field,
                      ValidationError, ValidationInfo, field_validator)
from sqlalchemy import Engine, and_, exists, false, func, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from domain.access import READ_ALL
from domain.lifecycle import STEP_LABELS
from domain.models import Actor, Rating, Source, Urgency
from domain.roles import Role
from domain.stages import Stage
from ledger.tables import CaseRow, CaseStepRow

DEFAULT_LIMIT, MAX_LIMIT = 50, 200
# psycopg refuses strings holding NUL; refusing them here keeps both backends answering alike.
_NO_NUL = r"^[^\x00]*$"


def _utc(value: datetime) -> datetime:
    # A bound far from UTC near year 1 or 9999 cannot be stored; say so instead of failing later.
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("the time is out of range") from None


T = TypeVar("T")
Choices = Annotated[list[T], Field(max_length=50)]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=_NO_NUL)]
Moment = Annotated[AwareDatetime, AfterValidator(_utc)]
Step = Literal[tuple(STEP_LABELS)]  # accept, rectify, verify, review, recheck


class CaseFilter(BaseModel):
    """Which cases to list. Lists match any of their values; every given field must hold."""
    model_config = ConfigDict(extra="forbid")

    stage: Choices[Stage] = Field([], description="Current stage")
    team: Choices[Name] = Field([], description="Team (专班) the case is assigned to")
    category: Choices[Name] = Field([], description="Category code, e.g. exposed_garbage")
    source: Choices[Source] = Field([], description="Where the case came from")
    urgency: Choices[Urgency] = Field([], description="Urgency")
    district: Name | None = None
    street: Name | None = None
    community: Name | None = None
    overdue: bool | None = Field(None, description="The step the case waits on now is past its "
                                                   "deadline")
    overdue_step: Step | None = Field(None, description="Some step of this name was late: done "
                                                        "after its deadline, or still past it")
    rebounded: bool | None = Field(None, description="A 回头看 found the problem back at least once")
    whistled: bool | None = Field(None, description="A whistle (吹哨) was blown at least once")
    created_from: Moment | None = Field(None, description="Opened at or after (with a zone)")
    created_to: Moment | None = Field(None, description="Opened before (with a zone)")
    closed_from: Moment | None = Field(None, description="Closed at or after (with a zone)")
    closed_to: Moment | None = Field(None, description="Closed before (with a zone)")
    q: Annotated[str, Field(max_length=100, pattern=_NO_NUL)] | None = Field(
        None, description="Text in the description or address (case-insensitive)")

    @field_validator("q")
    @classmethod
    def _blank_is_no_search(cls, q: str | None) -> str | None:
        # Search forms send an empty box as q=; that asks for nothing.
        if q is None:
            return None
        return q.strip() or None

    @field_validator("created_to", "closed_to")
    @classmethod
    def _after_start(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get(info.field_name.replace("_to", "_from"))
        if end is not None and start is not None and end <= start:
            raise ValueError(f"must be after {info.field_name.replace('_to', '_from')}")
        return end


class Sort(StrEnum):
    CREATED = "created"
    DEADLINE = "deadline"  # the current step's deadline; cases without one come last
    UPDATED = "updated"


class Order(StrEnum):
    ASC = "asc"
    DESC = "desc"


class CaseSummary(BaseModel):
    """One case as the list shows it: no reporter, no history, no state JSON."""
    case_id: str
    stage: Stage
    team: str | None
    category: str | None
    source: Source
    urgency: Urgency
    district: str
    street: str | None
    community: str | None
    address: str
    description: str
    round: int
    rebounds: int
    overdue: bool
    due_at: datetime | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    rating: Rating | None


class Page(BaseModel):
    items: list[CaseSummary]
    total: int
    next_cursor: str | None


class InvalidCursor(ValueError):
    pass


_COLUMNS = [getattr(CaseRow, name) for name in CaseSummary.model_fields]
_SORT_FIELDS = {Sort.CREATED: "created_at", Sort.DEADLINE: "due_at", Sort.UPDATED: "updated_at"}


def list_cases(engine: Engine, filter: CaseFilter, scope_actor: Actor,
               sort: Sort = Sort.CREATED, order: Order = Order.DESC,
               limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> Page:
    """One page of the cases `scope_actor` may read that match `filter`, and how many match in
    all. Raises InvalidCursor for a cursor this listing did not hand out."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be 1..{MAX_LIMIT}, got {limit}")
    where = _where(engine, filter, scope_actor)
    page = select(*_COLUMNS).where(*where)
    if cursor is not None:
        page = page.where(_after(sort, order, _decode(cursor, sort, order)))
    # One row more than asked tells whether another page exists without a second query.
    page = page.order_by(*_order_by(sort, order)).limit(limit + 1)
    with engine.connect() as conn:
        total = conn.scalar(select(func.count()).select_from(CaseRow).where(*where))
        rows = conn.execute(page).all()
    items = [CaseSummary.model_validate(row._mapping) for row in rows[:limit]]
    next_cursor = _encode(sort, order, items[-1]) if len(rows) > limit else None
    return Page(items=items, total=total, next_cursor=next_cursor)


def count_cases(engine: Engine, filter: CaseFilter, scope_actor: Actor) -> int:
    """How many cases `scope_actor` may read match `filter`: list_cases' total alone."""
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(CaseRow)
                           .where(*_where(engine, filter, scope_actor)))


def _where(engine: Engine, filter: CaseFilter, scope_actor: Actor) -> list[ColumnElement[bool]]:
    return [visible_to(scope_actor, engine.dialect.name), *_conditions(filter)]


def iter_cases(engine: Engine, filter: CaseFilter, scope_actor: Actor,
               sort: Sort = Sort.CREATED, order: Order = Order.DESC,
               batch: int = 500) -> Iterator[CaseSummary]:
    """Every matching case in list order, fetched `batch` rows at a time (a server-side cursor on
    PostgreSQL), so an export of any size holds one batch in memory. The connection is taken at
    the first row and given back when the iteration ends or the generator is closed."""
    query = (select(*_COLUMNS).where(*_where(engine, filter, scope_actor))
             .order_by(*_order_by(sort, order)))
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=batch).execute(query):
            yield CaseSummary.model_validate(row._mapping)


def sees_everything(actor: Actor) -> bool:
    """Whether `visible_to` lets the actor read every case."""
    return actor.role in READ_ALL or (actor.role == Role.INSPECTOR and actor.district is None)


def rollup_scope(actor: Actor) -> tuple[str, str] | None:
    """The statistics roll-up (ledger/rollups.py) holding exactly the cases `visible_to` lets
    the actor read, as (scope, value); None when no roll-up is kept for that scope."""
    if sees_everything(actor):
        return "all", ""
    if actor.role == Role.OFFICER and actor.team is not None:
        return "team", actor.team
    if (actor.role in (Role.COMMUNITY, Role.INSPECTOR) and actor.district is not None
            and actor.street is None and actor.community is None):
        return "district", actor.district
    return None


def visible_to(actor: Actor, dialect: str) -> ColumnElement[bool]:
    """The cases `actor` may read, as SQL: the twin of domain.access.read_refusal, which decides
    the same for one case in Python. A change there must be made here too."""
    role = actor.role
    if sees_everything(actor):
        return true()
    if role in (Role.HOTLINE, Role.REPORTER):
        return CaseRow.opened_by == actor.id
    if role == Role.OFFICER:
        return CaseRow.team == actor.team if actor.team is not None else false()
    if role == Role.DEPARTMENT:
        # "|name|name|": an exact, case-sensitive substring test. Not LIKE: SQLite's LIKE ignores
        # ASCII case, and a name holding % or _ would need escaping. A name holding the separator
        # could span two entries, and names no single department.
        if actor.department is None or "|" in actor.department:
            return false()
        position = func.strpos if dialect == "postgresql" else func.instr
        return position(CaseRow.departments, f"|{actor.department}|") > 0
    if role in (Role.COMMUNITY, Role.INSPECTOR):
        if actor.district is None:
            # Inspectors without an area check everywhere (above); community staff, nowhere.
            return false()
        # Each claim narrows; a case lacking a claimed field (NULL) matches none.
        claims = ((CaseRow.district, actor.district), (CaseRow.street, actor.street),
                  (CaseRow.community, actor.community))
        return and_(*(column == value for column, value in claims if value is not None))
    return false()


def _conditions(f: CaseFilter) -> list[ColumnElement[bool]]:
    c = CaseRow
    # str(): enum members bind as their plain values, whatever the driver makes of an Enum.
    where = [column.in_([str(v) for v in values]) for column, values in (
        (c.stage, f.stage), (c.team, f.team), (c.category, f.category), (c.source, f.source),
        (c.urgency, f.urgency)) if values]
    where += [column == value for column, value in (
        (c.district, f.district), (c.street, f.street), (c.community, f.community),
        (c.overdue, f.overdue)) if value is not None]
    if f.overdue_step is not None:
        where.append(exists().where(CaseStepRow.case_id == c.case_id,
                                    CaseStepRow.step == f.overdue_step,
                                    or_(CaseStepRow.late, CaseStepRow.overdue)))
    for column, wanted in ((c.rebounds, f.rebounded), (c.whistles, f.whistled)):
        if wanted is not None:
            where.append(column > 0 if wanted else column == 0)
    for column, start, end in ((c.created_at, f.created_from, f.created_to),
                               (c.closed_at, f.closed_from, f.closed_to)):
        if start is not None:
            where.append(column >= start)
        if end is not None:
            where.append(column < end)
    if f.q is not None:
        # autoescape: a % or _ typed into the search box is looked for literally.
        where.append(or_(c.description.icontains(f.q, autoescape=True),
                         c.address.icontains(f.q, autoescape=True)))
    return where


def _order_by(sort: Sort, order: Order) -> tuple:
    # case_id breaks ties in the same direction, so (sort key, case_id) is one index range,
    # walked forwards or backwards.
    column, case_id = getattr(CaseRow, _SORT_FIELDS[sort]), CaseRow.case_id
    key, tie = (column.asc(), case_id.asc()) if order == Order.ASC else (column.desc(),
                                                                          case_id.desc())
    return (key.nulls_last() if sort == Sort.DEADLINE else key), tie


def _after(sort: Sort, order: Order, position: "_Position") -> ColumnElement[bool]:
    """The rows that come after `position` in (sort key, case_id) order."""
    column = getattr(CaseRow, _SORT_FIELDS[sort])
    beyond = operator.gt if order == Order.ASC else operator.lt
    if position.value is None:  # within the deadline-less tail, which comes last either way
        return and_(column.is_(None), beyond(CaseRow.case_id, position.case_id))
    value = position.value
    # The leading `column >= value` (or <=) is what lets both databases seek in an index on the
    # sort key instead of scanning from the start and filtering.
    reached = column >= value if order == Order.ASC else column <= value
    after = and_(reached, or_(beyond(column, value), beyond(CaseRow.case_id, position.case_id)))
    return or_(after, column.is_(None)) if sort == Sort.DEADLINE else after


class _Position(BaseModel, frozen=True):
    """What a cursor holds. Not signed: it only says where to resume, and filters and scope are
    applied afresh on every page, so a forged one shows nothing a caller could not list anyway."""
    model_config = ConfigDict(extra="forbid")
    sort: Sort
    order: Order
    value: Moment | None
    case_id: Annotated[str, Field(min_length=1, max_length=128, pattern=_NO_NUL)]


def _encode(sort: Sort, order: Order, last: CaseSummary) -> str:
    position = _Position(sort=sort, order=order, value=getattr(last, _SORT_FIELDS[sort]),
                         case_id=last.case_id)
    return base64.urlsafe_b64encode(position.model_dump_json().encode()).rstrip(b"=").decode()


def _decode(cursor: str, sort: Sort, order: Order) -> _Position:
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        position = _Position.model_validate_json(raw)
    except (binascii.Error, ValueError, ValidationError):
        raise InvalidCursor("it is not a cursor this listing handed out") from None
    if (position.sort, position.order) != (sort, order):
        raise InvalidCursor(f"it continues a listing sorted by {position.sort.value} "
                            f"{position.order.value}, not {sort.value} {order.value}")
    if position.value is None and sort != Sort.DEADLINE:
        raise InvalidCursor("it lacks the position's sort value")
    return position

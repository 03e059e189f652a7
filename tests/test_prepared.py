"""Statements run on the driver's cursor (ledger.prepared) write exactly what SQLAlchemy would,
on SQLite and on PostgreSQL."""

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import String, bindparam, cast, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError, OperationalError

from ledger.db import make_engine
from ledger.prepared import Prepared
from ledger.repository import _INSERT as INSERT
from ledger.tables import CaseStepRow, OutboxRow
from tests.conftest import POSTGRES_URL, postgres_ledger

# Not UTC: the ledger stores every moment in UTC and gives it back aware.
LHASA = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 20, 9, 30, 15, 123456, tzinfo=LHASA)


def steps(case_id: str) -> list[dict]:
    common = dict(case_id=case_id, step="accept", round=1, limit="2h", started_at=T0,
                  due_at=T0 + timedelta(hours=2), original_due_at=T0 + timedelta(hours=2),
                  extensions=0)
    return [dict(common, position=0, overdue_at=None, overdue=False,
                 completed_at=T0 + timedelta(minutes=40), completed_by="accept", late=False),
            dict(common, position=1, overdue_at=T0 + timedelta(hours=2), overdue=True,
                 completed_at=None, completed_by=None, late=True)]


def read_steps(engine, case_id: str, as_stored: bool = False) -> list[dict]:
    """The case's step rows; `as_stored`: every column as the database's text of it, so that a
    moment stored in another zone or format shows even where reading would mend it."""
    table = CaseStepRow.__table__
    columns = [cast(c, String).label(c.name) if as_stored else c
               for c in table.c if c.name != "case_id"]
    with engine.connect() as connection:
        rows = connection.execute(select(*columns).where(table.c.case_id == case_id)
                                  .order_by(table.c.position)).mappings().all()
    return [dict(row) for row in rows]


def notice(event_id: str) -> dict:
    return dict(event_id=event_id, kind="reminder", case_id="hotline-1", audience="team",
                recipient="环境卫生", title="催办：吉日巷口垃圾", body="签收时限将于17:00到期",
                occurred_at=T0, created_at=T0,
                data={"team": "环境卫生", "due": "2026-11-20T11:30:15+08:00", "round": 1,
                      "departments": ["拉萨市住房和城乡建设局"], "late": None})


def test_rows_written_on_the_cursor_read_back_as_those_sqlalchemy_writes(any_ledger):
    engine = any_ledger.engine
    statement = INSERT[engine.dialect.name](CaseStepRow.__table__)
    with engine.begin() as connection:
        assert Prepared(statement).run(connection, steps("on-the-cursor")) == []
        connection.execute(statement, steps("through-sqlalchemy"))
    assert (read_steps(engine, "on-the-cursor", as_stored=True)
            == read_steps(engine, "through-sqlalchemy", as_stored=True))
    ours, theirs = read_steps(engine, "on-the-cursor"), read_steps(engine, "through-sqlalchemy")
    assert ours == theirs and len(ours) == 2
    assert ours[0]["started_at"] == T0 and ours[0]["started_at"].tzinfo is not None
    assert (ours[1]["completed_at"], ours[1]["overdue"], ours[1]["late"]) == (None, True, True)


def test_returning_gives_the_row_only_when_it_was_inserted(any_ledger):
    engine = any_ledger.engine
    insert = INSERT[engine.dialect.name](OutboxRow.__table__)
    new_only = Prepared(insert.on_conflict_do_nothing(index_elements=["event_id"])
                        .returning(OutboxRow.event_id))
    with engine.begin() as connection:
        assert new_only.run(connection, notice("hotline-1:reminder:1")) == [
            ("hotline-1:reminder:1",)]
        again = dict(notice("hotline-1:reminder:1"), title="changed")
        assert new_only.run(connection, again) == []
    with engine.connect() as connection:
        row = connection.execute(select(OutboxRow.title, OutboxRow.data, OutboxRow.occurred_at)
                                 .where(OutboxRow.event_id == "hotline-1:reminder:1")).one()
    assert row.title == "催办：吉日巷口垃圾"
    assert row.data == notice("x")["data"] and row.occurred_at == T0


def test_a_statement_needing_a_parameter_it_is_not_given_is_refused_and_writes_nothing(
        any_ledger):
    engine = any_ledger.engine
    insert = INSERT[engine.dialect.name](CaseStepRow.__table__)
    upsert = insert.on_conflict_do_update(
        index_elements=["case_id", "position"], set_={"late": insert.excluded.late},
        where=CaseStepRow.round < bindparam("before_round"))
    with engine.begin() as connection:
        with pytest.raises(ValueError, match="before_round"):
            Prepared(upsert).run(connection, steps("refused"))
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(CaseStepRow).where(
            CaseStepRow.case_id == "refused")).scalar() == 0


def test_a_row_the_database_refuses_raises_sqlalchemys_error_and_writes_nothing(any_ledger):
    engine = any_ledger.engine
    statement = Prepared(INSERT[engine.dialect.name](CaseStepRow.__table__))
    refused = steps("refused-row")
    refused[1]["step"] = None  # NOT NULL
    with pytest.raises(IntegrityError) as raised:
        with engine.begin() as connection:
            statement.run(connection, refused)
    assert isinstance(raised.value.orig, engine.dialect.loaded_dbapi.IntegrityError)
    assert read_steps(engine, "refused-row") == []


@pytest.mark.postgres
def test_a_connection_lost_mid_write_is_invalidated_and_the_next_write_succeeds():
    with postgres_ledger() as ledger:
        engine, admin = ledger.engine, make_engine(POSTGRES_URL)
        statement = Prepared(postgresql.insert(CaseStepRow.__table__))
        try:
            with engine.connect() as connection:
                pid = connection.execute(select(func.pg_backend_pid())).scalar()
                with admin.begin() as other:
                    other.execute(select(func.pg_terminate_backend(pid)))
                with pytest.raises(OperationalError) as raised:
                    statement.run(connection, steps("lost"))
                assert raised.value.connection_invalidated and connection.invalidated
            with engine.begin() as connection:
                statement.run(connection, steps("after"))
        finally:
            admin.dispose()
        assert read_steps(engine, "lost") == [] and len(read_steps(engine, "after")) == 2

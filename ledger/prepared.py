"""Write statements of the ledger's hot path, run on the database driver's own cursor.

A ledger write runs about ten statements. Through `Connection.execute` each one cost SQLAlchemy
more bookkeeping (an execution context, a result object, parameter processing per call) than
the database's own work. A `Prepared` statement is compiled once per dialect and set of
columns, with SQLAlchemy's own bind processors (UTC datetimes, JSON), and runs in the
connection's transaction like any other statement.
"""

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql import Executable

from ledger.tables import UTCDateTime, sqlite_text_of

# The SQL text, and what turns a row of parameters into the driver's.
_Compiled = tuple[str, Callable[[Mapping[str, Any]], list | dict]]


class Prepared:
    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def run(self, connection: Connection,
            params: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[tuple]:
        """Execute with one row of parameters (its RETURNING rows are returned) or with
        several (executemany; nothing returned)."""
        many = not isinstance(params, Mapping)
        first = params[0] if many else params
        sql, convert = self._compile(connection, tuple(first))
        cursor = connection.connection.cursor()
        try:
            if many:
                cursor.executemany(sql, [convert(row) for row in params])
                return []
            cursor.execute(sql, convert(params))
            # Read to the end: SQLite finishes a RETURNING statement only then.
            return cursor.fetchall() if cursor.description else []
        except Exception as err:  # noqa: BLE001 - raised again, as SQLAlchemy raises it
            # As for any statement: SQLAlchemy's exception types (the API answers 503 for a
            # ledger that is away, the CLI names the ledger), and a lost connection is
            # invalidated rather than handed out again.
            connection._handle_dbapi_exception(err, sql, params, cursor, None)
        finally:
            cursor.close()

    def _compile(self, connection: Connection, columns: tuple[str, ...]) -> _Compiled:
        dialect = connection.dialect
        key = (dialect.name, columns)
        found = self._compiled.get(key)
        if found is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=list(columns))
            positional = bool(compiled.positional)
            names = tuple(compiled.positiontup) if positional else tuple(compiled.binds)
            unknown = set(names) - set(columns)
            if unknown or compiled.escaped_bind_names or compiled.literal_execute_params \
                    or compiled.post_compile_params:
                raise ValueError(f"statement needs parameters it cannot be given here: "
                                 f"{sorted(unknown) or 'escaped or expanded names'}")
            # The processors SQLAlchemy applies itself: a private attribute, so
            # tests/test_prepared.py holds what they write to what SQLAlchemy writes.
            processors = dict(compiled._bind_processors)
            if dialect.name == "sqlite":
                processors.update({n: sqlite_text_of for n in names
                                   if isinstance(compiled.binds[n].type, UTCDateTime)})
            found = self._compiled[key] = (compiled.string, _converter(
                tuple((n, processors.get(n)) for n in names), positional))
        return found


def _converter(pairs: tuple[tuple[str, Callable | None], ...], positional: bool
               ) -> Callable[[Mapping[str, Any]], list | dict]:
    # Every write converts about 250 parameters: the values are picked in C (itemgetter) and
    # only those with a processor (moments, JSON) go through Python.
    names = tuple(n for n, _ in pairs)
    processed = tuple((i, p) for i, (_, p) in enumerate(pairs) if p is not None)
    pick = itemgetter(*names) if len(names) > 1 else lambda row: tuple(row[n] for n in names)

    def values(row: Mapping[str, Any]) -> list:
        picked = list(pick(row))
        for i, process in processed:
            picked[i] = process(picked[i])
        return picked

    if positional:
        return values
    return lambda row: dict(zip(names, values(row)))

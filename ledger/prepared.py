"""Write statements of the ledger's hot path, run on the database driver's own cursor.

A ledger write runs about ten statements. Through `Connection.execute` each one cost SQLAlchemy
more bookkeeping (an execution context, a result object, parameter processing per call) than
the database's own work. A `Prepared` statement is compiled once per dialect and set of
columns, with SQLAlchemy's own bind processors (UTC datetimes, JSON), and runs in the
connection's transaction like any other statement.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql import Executable

_Compiled = tuple[str, tuple[str, ...], tuple[Callable[[Any], Any] | None, ...], bool]


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
        sql, names, processors, positional = self._compile(connection, tuple(first))
        convert = _converter(names, processors, positional)
        cursor = connection.connection.cursor()
        try:
            if many:
                cursor.executemany(sql, [convert(row) for row in params])
                return []
            cursor.execute(sql, convert(params))
            # Read to the end: SQLite finishes a RETURNING statement only then.
            return cursor.fetchall() if cursor.description else []
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
            processors = compiled._bind_processors
            found = (compiled.string, names, tuple(processors.get(n) for n in names), positional)
            self._compiled[key] = found
        return found


def _converter(names: tuple[str, ...], processors: tuple, positional: bool
               ) -> Callable[[Mapping[str, Any]], tuple | dict]:
    pairs = tuple(zip(names, processors))
    if positional:
        return lambda row: tuple(row[n] if p is None else p(row[n]) for n, p in pairs)
    return lambda row: {n: row[n] if p is None else p(row[n]) for n, p in pairs}

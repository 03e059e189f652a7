from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:
        # WAL lets the API read while the worker writes; the wait covers brief write locks.
        # FULL syncs the log at every commit: with NORMAL a power cut could take back commits
        # whose activities had already reported them written, and nothing writes those again.
        # It cost a write alone 0-15 % more CPU and 0.75 ms more wall time, the worker's
        # batches of several less (bench/README.md).
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    return engine


def in_schema(url: str, schema: str) -> str:
    """A PostgreSQL URL whose connections work in `schema` (a schema of their own for a test or
    a benchmark run)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"

"""Streamed spreadsheet downloads: (headers, rows) to CSV or xlsx without holding the rows.

Rows are sequences of cells (str, int, float or None), produced lazily by the caller, typically
straight from a ledger query. Both formats are for people opening them in Excel or WPS.
"""

import csv
import io
import re
import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Literal
from urllib.parse import quote

import anyio
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

Format = Literal["csv", "xlsx"]
Cell = str | int | float | None
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
CHUNK_BYTES = 64 * 1024
# A finished workbook up to this size stays in memory; a bigger one goes to a temporary file.
SPOOL_BYTES = 8 * 1024 * 1024
# Excel runs a CSV cell starting with one of these as a formula; report texts come from the public.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_stream(headers: Sequence[str], rows: Iterable[Sequence[Cell]]) -> Iterator[bytes]:
    """UTF-8 with a BOM (without it Excel reads Chinese as mojibake), in chunks of some
    CHUNK_BYTES characters: one chunk per row would cost a thread hop per row when served."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([_inert(cell) for cell in row])
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def xlsx_stream(headers: Sequence[str], rows: Iterable[Sequence[Cell]],
                sheet_title: str) -> Iterator[bytes]:
    """A write-only workbook keeps no rows in memory (openpyxl writes them to a temporary file
    as they come); a zip cannot be sent before it is finished, so the first chunk comes after
    the last row."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=sheet_title)
    sheet.append(list(headers))
    for row in rows:
        sheet.append([_xlsx_cell(sheet, cell) for cell in row])
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        workbook.save(spool)
        spool.seek(0)
        while chunk := spool.read(CHUNK_BYTES):
            yield chunk


def export_response(format: Format, filename: str, headers: Sequence[str],
                    rows: Iterable[Sequence[Cell]], sheet_title: str = "Sheet1"
                    ) -> StreamingResponse:
    """The download of `rows` as `filename`.csv or .xlsx. Nothing is read from `rows` until the
    response is sent; each step runs in the thread pool, so `rows` may do blocking I/O."""
    chunks = (csv_stream(headers, rows) if format == "csv"
              else xlsx_stream(headers, rows, sheet_title))
    name = f"{filename}.{format}"
    # filename= for old clients (ASCII only), filename*= (RFC 6266) for the real name.
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"
    return StreamingResponse(_in_threads(chunks, rows), media_type=MEDIA_TYPES[format],
                             headers={"Content-Disposition": disposition})


async def _in_threads(chunks: Iterator[bytes], rows: Iterable) -> AsyncIterator[bytes]:
    # Unlike Starlette's own iteration of a sync iterator, this closes the rows when the client
    # goes away mid-download, which gives a query's database connection back at once.
    try:
        while (chunk := await run_in_threadpool(next, chunks, None)) is not None:
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_close, chunks, rows)


def _close(*iterators: Iterable) -> None:
    for iterator in iterators:
        if hasattr(iterator, "close"):
            iterator.close()


def _inert(cell: Cell) -> Cell:
    if isinstance(cell, str) and cell.startswith(_FORMULA_START):
        return "'" + cell
    return cell


def _xlsx_cell(sheet, cell: Cell):
    if not isinstance(cell, str):
        return cell
    # openpyxl refuses control characters, which free text may hold; drop them.
    cell = ILLEGAL_CHARACTERS_RE.sub("", cell)
    if cell.startswith("="):
        # openpyxl would store it as a formula; typed as a string, Excel shows it as text.
        text = WriteOnlyCell(sheet, cell)
        text.data_type = "s"
        return text
    return cell

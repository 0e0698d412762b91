"""Turn an uploaded CSV or Parquet file into a clean Parquet file, in bounded memory.

A CSV is read twice, as text, by pyarrow's streaming reader:

1. the first pass checks the rows and settles each column's type: the narrowest of
   int64, float64, bool, datetime (naive or with offset) and string that fits every
   value, so a column that is numeric for 100,000 rows and then says "abc" becomes
   text instead of failing halfway through;
2. the second pass casts each block to those types and appends it to a Parquet file.

The first pass also gathers, for every column, which number formats, date formats and
boolean spellings fit *every* value (``reading.FormatEvidence``): the result carries each
column's reading (``IngestResult.readings``). A column that is only readable with a format
(decimal commas, ``dd.mm.yyyy`` dates) or that several formats read differently (``1.234``)
is stored as text, so that its reading, or the one a user picks, is applied when it is used.

Casting the same cleaned text with the same function in both passes is what makes
the second pass unable to disagree with the first. Memory stays at a few blocks plus
one row group, whatever the size of the file.

Everything is written to a temporary file next to ``dest_path`` and moved into place
at the end, so a failed ingest leaves nothing behind.
"""
from __future__ import annotations

import codecs
import csv
import io
import os
import re
import shutil
import tempfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from training.ml.columns import BOOLEAN, DATETIME, NA_TOKENS, NUMERIC  # noqa: F401  (NA_TOKENS: re-exported)
from training.ml.errors import MLInputError
from training.ml.reading import (
    ISO8601, ColumnReading, FormatEvidence, clean_text, is_european, reading_of_arrow_type,
)

DELIMITERS = (",", ";", "\t", "|")
DEFAULT_BLOCK_SIZE = 4 * 2**20
SNIFF_BYTES = 64 * 2**10
HEAD_BYTES = 2**20  # the header must fit in the first MB
ROW_GROUP_ROWS = 250_000
ROW_GROUP_BYTES = 64 * 2**20

_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed"),
    (b"PK\x03\x04", "a ZIP archive (or an Excel .xlsx workbook)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"BZh", "bzip2-compressed"),
    (b"\xfd7zXZ\x00", "xz-compressed"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel .xls workbook"),
    (b"%PDF", "a PDF document"),
)
_ENCODING_LABELS = {
    "utf-8": "UTF-8", "utf-8-sig": "UTF-8 with byte-order mark",
    "cp1252": "Windows-1252", "latin-1": "Latin-1",
}
_FIELD = "file"
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # not tab, newlines or form feeds
_NO_ROWS = "the file has a header but no data rows"
_CODE_LIKE = "^[+-]?0[0-9xX]"


@dataclass
class IngestResult:
    rows: int
    columns: list[str]
    file_format: str  # "csv" or "parquet"
    delimiter: str | None  # None for Parquet
    encoding: str | None  # "utf-8", "utf-8-sig", "cp1252", "latin-1"; None for Parquet
    size_bytes: int  # bytes read from the upload
    notes: list[str] = field(default_factory=list)  # things the user may want to know
    #: column -> ``ColumnReading.as_dict()`` for columns whose storage type or values say how to read them
    #: (plain text columns have none: the profile tells categories, identifiers and free text apart)
    readings: dict[str, dict] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def ingest_to_parquet(
    src: BinaryIO | str | os.PathLike,
    dest_path: str | os.PathLike,
    *,
    filename: str,
    max_bytes: int,
    max_columns: int = 1000,
    block_size: int = DEFAULT_BLOCK_SIZE,
    as_text: frozenset[str] | set[str] = frozenset(),
) -> IngestResult:
    """Validate ``src`` (CSV or Parquet, by content) and write it as Parquet to ``dest_path``.

    ``src`` is a path or a readable binary file object (read from its current position).
    ``filename`` is only used in messages. Columns named in ``as_text`` are stored as text
    whatever they hold (a batch input read later with a model's readings). Raises
    ``MLInputError`` with status 400, 413 or 415 for anything the user can fix;
    ``dest_path`` is then left untouched.
    """
    dest_path = Path(dest_path)
    dest_dir = dest_path.parent
    dest_dir.mkdir(parents=True, exist_ok=True)
    temps: list[Path] = []

    def new_temp(suffix: str) -> Path:
        fd, name = tempfile.mkstemp(dir=dest_dir, prefix=f".{dest_path.name}.", suffix=suffix)
        os.close(fd)
        temps.append(Path(name))
        return temps[-1]

    try:
        with _Source(src, max_bytes=max_bytes, spool=lambda: new_temp(".upload")) as source:
            source.check_size()
            head, at_eof = source.read_head(HEAD_BYTES)
            if not head:
                raise MLInputError("the file is empty", field=_FIELD)
            out = new_temp(".parquet.tmp")
            if head.startswith(b"PAR1"):
                result = _ingest_parquet(source, out, new_temp, filename=filename, max_columns=max_columns,
                                         as_text=as_text)
            else:
                result = _ingest_csv(
                    source, out, head, at_eof,
                    filename=filename, max_columns=max_columns, block_size=block_size, as_text=as_text,
                )
        os.replace(out, dest_path)
        temps.remove(out)
        return result
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)


# --- reading the upload -----------------------------------------------------------

class _TooLarge(Exception):
    pass


class _LimitedReader(io.RawIOBase):
    """Counts the bytes read and stops past the limit, whatever size the upload claimed."""

    def __init__(self, raw: BinaryIO, limit: int):
        self._raw = raw
        self._limit = limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        self.count += len(data)
        if self.count > self._limit:
            raise _TooLarge()
        buffer[: len(data)] = data
        return len(data)


def _megabytes(n: int) -> str:
    mb = f"{n / 2**20:.2f}".rstrip("0").rstrip(".")
    return f"{mb} MB" if mb != "0" else f"{n} bytes"


def _too_large(max_bytes: int) -> MLInputError:
    return MLInputError(f"the file is larger than the upload limit of {_megabytes(max_bytes)}",
                        field=_FIELD, status=413)


class _Source:
    """The upload, readable from its start as many times as needed.

    A path is opened; a seekable file object is used from its current position; anything
    else (a pipe, a socket) is copied once, counting, into a spool file next to the output.
    """

    def __init__(self, src, *, max_bytes: int, spool: Callable[[], Path]):
        self._src = src
        self._max_bytes = max_bytes
        self._spool = spool
        self._file: BinaryIO | None = None
        self._path: str | None = None
        self._start = 0
        self.size_bytes = 0  # bytes read in the longest pass

    def __enter__(self) -> "_Source":
        if isinstance(self._src, (str, os.PathLike)):
            self._path = os.fspath(self._src)
        elif _seekable(self._src):
            self._file, self._start = self._src, self._src.tell()
        else:
            self._path = str(self._spool())
            with open(self._path, "wb") as copy:
                self._copy_to(self._src, copy)
        if self._path is not None:
            self._file = open(self._path, "rb")
        return self

    def __exit__(self, *exc) -> None:
        if self._path is not None and self._file is not None:
            self._file.close()

    @property
    def path(self) -> str | None:
        """A file name pyarrow can open, if the upload is one."""
        return self._path

    def check_size(self) -> None:
        """Fail early on a file whose real size (not a declared one) is over the limit."""
        here = self._file.seek(0, os.SEEK_END)
        self._file.seek(self._start)
        if here - self._start > self._max_bytes:
            raise _too_large(self._max_bytes)

    @contextmanager
    def reading(self) -> Iterator[BinaryIO]:
        """The upload from its start, through a counter that turns "too much" into a 413."""
        self._file.seek(self._start)
        counter = _LimitedReader(self._file, self._max_bytes)
        try:
            yield io.BufferedReader(counter, 2**20)
        except BaseException as exc:
            if _caused_by(exc, _TooLarge):
                raise _too_large(self._max_bytes) from None
            raise
        finally:
            self.size_bytes = max(self.size_bytes, counter.count)

    def read_head(self, n: int) -> tuple[bytes, bool]:
        """The first ``n`` bytes, and whether that is the whole file."""
        with self.reading() as stream:
            head = stream.read(n)
            at_eof = len(head) < n or not stream.read(1)
        return head, at_eof

    def copy_to(self, out: BinaryIO) -> None:
        with self.reading() as stream:
            shutil.copyfileobj(stream, out, 2**20)

    def _copy_to(self, src: BinaryIO, out: BinaryIO) -> None:
        counter = _LimitedReader(src, self._max_bytes)
        try:
            shutil.copyfileobj(io.BufferedReader(counter, 2**20), out, 2**20)
        except _TooLarge:
            raise _too_large(self._max_bytes) from None
        self.size_bytes = counter.count


def _caused_by(exc: BaseException | None, kind: type) -> bool:
    while exc is not None:
        if isinstance(exc, kind):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _seekable(f) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False


# --- CSV ----------------------------------------------------------------------------

def _ingest_csv(source: _Source, out: Path, head: bytes, at_eof: bool, *,
                filename: str, max_columns: int, block_size: int, as_text=frozenset()) -> IngestResult:
    _reject_binary(head, filename)
    encoding, notes = _detect_encoding(head, at_eof, filename)
    text = _decode_head(head, encoding, at_eof)
    if not text.strip():
        raise MLInputError("the file is empty", field=_FIELD)
    delimiter = _detect_delimiter(text[:SNIFF_BYTES], complete=at_eof or len(text) <= SNIFF_BYTES)
    names, header_lines = _parse_header(text, delimiter, complete=at_eof)
    _check_names(names, max_columns)

    # The first 64 KB decoded, but a later byte may not: fall back to the next encoding.
    fallbacks = {"utf-8": "cp1252", "utf-8-sig": "cp1252", "cp1252": "latin-1"}
    while True:
        try:
            types, evidence, rows = _settle_types(
                source, names, delimiter, encoding, header_lines, block_size)
            break
        except _DecodeFailed:
            if encoding not in fallbacks:
                raise MLInputError(f"'{filename}' is not readable text", field=_FIELD, status=415) from None
            encoding = fallbacks[encoding]
            notes = [f"the file is not valid {_ENCODING_LABELS['utf-8']} throughout, so it was "
                     f"read as {_ENCODING_LABELS[encoding]}"]
            names, header_lines = _parse_header(_decode_head(head, encoding, at_eof), delimiter,
                                                complete=at_eof)
            _check_names(names, max_columns)
    if rows == 0:
        raise MLInputError(_NO_ROWS, field=_FIELD)
    readings, reading_notes = _decide_readings(names, types, evidence, is_european(delimiter, evidence), as_text)
    type_notes = types.notes(skip={name for name, r in readings.items() if r["kind"] in (NUMERIC, DATETIME)})

    schema = pa.schema([pa.field(name, types.arrow_type(i)) for i, name in enumerate(names)])
    written = 0
    with source.reading() as stream, _RowGroupWriter(out, schema) as writer:
        for batch in _csv_batches(stream, names, delimiter, encoding, header_lines, block_size):
            arrays = [types.cast(i, clean_text(column)) for i, column in enumerate(batch.columns)]
            writer.write(pa.RecordBatch.from_arrays(arrays, schema=schema))
            written += batch.num_rows
    if written != rows:  # the file changed between the two passes
        raise MLInputError("the file changed while it was being read; upload it again", field=_FIELD)
    return IngestResult(
        rows=rows, columns=names, file_format="csv", delimiter=delimiter, encoding=encoding,
        size_bytes=source.size_bytes, notes=notes + type_notes + reading_notes, readings=readings,
    )


def _decide_readings(names: list[str], types: "_ColumnTypes", evidence: list[FormatEvidence], european: bool,
                     as_text) -> tuple[dict[str, dict], list[str]]:
    """Each column's reading from its settled type and its evidence; a column whose values need the reading
    (decimal commas, non-ISO dates, numbers several formats read differently) is switched to text storage."""
    readings: dict[str, dict] = {}
    notes: list[str] = []
    for i, name in enumerate(names):
        if name in as_text:
            types.store_as_text(i)
            continue
        state = types.state(i)
        reading: ColumnReading | None = None
        if state in ("int", "float"):
            numbers = evidence[i].number_reading(european=european)
            if numbers is not None and (numbers.number_format != "plain" or numbers.ambiguous):
                types.store_as_text(i)
                reading = numbers
            else:
                reading = ColumnReading(kind=NUMERIC, number_format="plain")
        elif state == "bool":
            reading = ColumnReading(kind=BOOLEAN)
        elif state in ("datetime", "datetime_tz"):
            reading = ColumnReading(kind=DATETIME, date_format=ISO8601)
        elif state == "string":
            reading = evidence[i].reading(european=european)
            miss = evidence[i].near_miss(name) if reading is None and not types.demoted(i) else None
            if miss:
                notes.append(miss)
        if reading is not None:
            readings[name] = reading.as_dict()
    return readings, notes


def _reject_binary(head: bytes, filename: str) -> None:
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise MLInputError(
                f"'{filename}' is {what}, not a CSV or Parquet file; "
                "upload the uncompressed CSV or a Parquet file", field=_FIELD, status=415)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise MLInputError(f"'{filename}' is UTF-16 text; save it as UTF-8 CSV and upload it again",
                           field=_FIELD, status=415)
    if b"\x00" in head:
        raise MLInputError(f"'{filename}' contains binary data (NUL bytes), not CSV text",
                           field=_FIELD, status=415)


def _detect_encoding(head: bytes, at_eof: bool, filename: str) -> tuple[str, list[str]]:
    if head.startswith(codecs.BOM_UTF8):
        candidates = ("utf-8-sig", "cp1252", "latin-1")
    else:
        candidates = ("utf-8", "cp1252", "latin-1")
    for encoding in candidates:
        try:
            text = _decode_head(head, encoding, at_eof)
        except UnicodeDecodeError:
            continue
        # Latin-1 decodes any bytes; a text file still has almost no control characters.
        if len(_CONTROL.findall(text)) > max(2, len(text) // 100):
            break
        notes = []
        if encoding == "utf-8-sig":
            notes.append("removed the UTF-8 byte-order mark at the start of the file")
        elif encoding != "utf-8":
            notes.append(f"the file is not UTF-8, so it was read as {_ENCODING_LABELS[encoding]}")
        return encoding, notes
    raise MLInputError(f"'{filename}' does not look like text: it is binary or in an unknown encoding",
                       field=_FIELD, status=415)


def _decode_head(head: bytes, encoding: str, at_eof: bool) -> str:
    return codecs.getincrementaldecoder(encoding)().decode(head, final=at_eof)


def _detect_delimiter(sample: str, *, complete: bool) -> str:
    """csv.Sniffer's guess when it is as consistent as the best candidate, else the best.

    A candidate's score is the share of rows with as many fields as the header, then
    the number of fields: a wrong delimiter splits rows unevenly or not at all.
    """
    scores = {d: _delimiter_score(sample, d, complete) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: scores[d])  # max keeps the first (",") on ties
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    if sniffed in scores and scores[sniffed][1] > 1 and scores[sniffed][0] >= scores[best][0]:
        return sniffed
    return best if scores[best][1] > 1 else ","


def _delimiter_score(sample: str, delimiter: str, complete: bool) -> tuple[float, int]:
    try:
        rows = [r for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter) if r]
    except csv.Error:
        return 0.0, 0
    if not complete and len(rows) > 1:
        rows = rows[:-1]  # probably cut in the middle
    if not rows or len(rows[0]) < 2:
        return 0.0, len(rows[0]) if rows else 0
    width = len(rows[0])
    return sum(len(r) == width for r in rows) / len(rows), width


def _parse_header(text: str, delimiter: str, *, complete: bool) -> tuple[list[str], int]:
    """Column names, and how many physical lines the header takes (blank lines before it too).

    With the whole file in ``text`` (``complete``), a header with nothing after it is refused.
    """
    buffer = io.StringIO(text, newline="")
    reader = csv.reader(buffer, delimiter=delimiter)
    try:
        for record in reader:
            if not record:
                continue
            if not complete and buffer.tell() >= len(text):
                raise MLInputError(f"the header line is longer than {HEAD_BYTES // 2**20} MB", field=_FIELD)
            if complete and not text[buffer.tell():].strip():
                raise MLInputError(_NO_ROWS, field=_FIELD)
            return [name.strip() for name in record], reader.line_num
    except csv.Error as exc:
        raise MLInputError(f"the header line cannot be read: {exc}", field=_FIELD) from None
    raise MLInputError("the file is empty", field=_FIELD)


def _check_names(names: list[str], max_columns: int) -> None:
    if len(names) > max_columns:
        raise MLInputError(f"the file has {len(names)} columns; the limit is {max_columns}", field=_FIELD)
    blank = [str(i) for i, name in enumerate(names, 1) if not name]
    if blank:
        hint = (" (a blank first name usually means the file was saved with its row index)"
                if blank == ["1"] else "")
        raise MLInputError(
            f"column names are blank at position{'s' if len(blank) > 1 else ''} {', '.join(blank)}"
            f"{hint}; give every column a name in the header", field=_FIELD)
    counts = Counter(names)
    duplicates = [name for name, n in counts.items() if n > 1]
    if duplicates:
        described = ", ".join(
            f"'{name}' (columns {', '.join(str(i) for i, n in enumerate(names, 1) if n == name)})"
            for name in duplicates)
        raise MLInputError(f"duplicate column names: {described}; every column needs a distinct name",
                           field=_FIELD)


class _DecodeFailed(Exception):
    pass


class _BadRow(Exception):
    def __init__(self, expected: int, found: int):
        self.expected, self.found = expected, found


def _csv_batches(stream, names: list[str], delimiter: str, encoding: str, header_lines: int,
                 block_size: int, on_invalid: Callable | None = None) -> Iterator[pa.RecordBatch]:
    """Every field as text: types are decided by ``_ColumnTypes``, not per block by pyarrow."""
    reader = pa_csv.open_csv(
        stream,
        read_options=pa_csv.ReadOptions(
            column_names=names, skip_rows=header_lines, block_size=block_size,
            encoding="utf8" if encoding.startswith("utf-8") else encoding),
        parse_options=pa_csv.ParseOptions(
            delimiter=delimiter, quote_char='"', double_quote=True, escape_char=False,
            newlines_in_values=True, ignore_empty_lines=True, invalid_row_handler=on_invalid),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=False, null_values=[], check_utf8=True),
    )
    yield from reader


def _settle_types(source: _Source, names, delimiter, encoding, header_lines, block_size):
    """First pass: count rows, find the first malformed row, settle each column's type, gather each
    column's format evidence."""
    types = _ColumnTypes(names)
    evidence = [FormatEvidence() for _ in names]
    bad_rows: list = []

    def on_invalid(row) -> str:
        bad_rows.append(row)
        return "error"

    rows = 0
    try:
        with source.reading() as stream:
            for batch in _csv_batches(stream, names, delimiter, encoding, header_lines,
                                      block_size, on_invalid):
                for i, column in enumerate(batch.columns):
                    cleaned = clean_text(column)
                    if not types.is_text(i):  # text stays text: no need to look again
                        types.observe(i, cleaned, first_row=rows + 1)
                    typed = _TYPED_KINDS.get(types.state(i))
                    if typed:  # the cast vouches for the values: only what it cannot tell is looked at
                        evidence[i].observe_typed(cleaned, typed)
                    else:
                        evidence[i].observe(cleaned)
                rows += batch.num_rows
    except UnicodeDecodeError:
        raise _DecodeFailed() from None
    except pa.ArrowInvalid as exc:
        message = str(exc)
        if "invalid UTF8" in message:
            raise _DecodeFailed() from None
        if bad_rows or "straddl" in message or "Expected" in message:
            raise _bad_row_error(source, names, delimiter, encoding, block_size) from None
        raise MLInputError(f"the file cannot be read as CSV: {message}", field=_FIELD) from None
    return types, evidence, rows


def _bad_row_error(source: _Source, names, delimiter, encoding, block_size) -> MLInputError:
    """Re-read with the csv module to name the physical line where the first bad row starts.

    Only runs when pyarrow has already found a bad row, so its cost is paid on failure only.
    """
    expected = len(names)
    # The csv module refuses values over 128 KB by default; allow what pyarrow allowed.
    limit = csv.field_size_limit(max(block_size, csv.field_size_limit()))
    try:
        return _first_bad_row(source, expected, delimiter, encoding, block_size)
    finally:
        csv.field_size_limit(limit)


def _first_bad_row(source: _Source, expected: int, delimiter, encoding, block_size) -> MLInputError:
    too_long = f"a row is longer than {_megabytes(block_size)}"
    with source.reading() as stream:
        text = io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        header_seen = False
        while True:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error:
                return MLInputError(
                    f"line {start}: a double quote opened here is never closed, or {too_long}",
                    field=_FIELD)
            if not record:
                continue
            if not header_seen:
                header_seen = True
                continue
            if len(record) != expected:
                lines = reader.line_num - start + 1
                hint = (f" (this row runs over {lines} lines, so a double quote may be missing)"
                        if lines > 1 else "")
                return MLInputError(
                    f"line {start} has {len(record)} field{'s' if len(record) != 1 else ''} but the "
                    f"header has {expected}{hint}; every row needs {expected} fields", field=_FIELD)
    return MLInputError(f"{too_long} or has an unclosed double quote", field=_FIELD)


# Each state lists what to try, narrowest first, when a block has values it has not seen.
_WIDER = {
    "null": ("int", "float", "bool", "datetime", "datetime_tz"),
    "int": ("int", "float"),
    "float": ("float",),
    "bool": ("bool",),
    "datetime": ("datetime",),
    "datetime_tz": ("datetime_tz",),
    "string": (),
}
_ARROW_TYPES = {
    "null": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
    "datetime": pa.timestamp("us"), "datetime_tz": pa.timestamp("us", tz="UTC"), "string": pa.string(),
}
#: Settled types whose cast vouches for a block's values, and the kind of values they are.
_TYPED_KINDS = {"int": NUMERIC, "float": NUMERIC, "bool": BOOLEAN, "datetime": DATETIME, "datetime_tz": DATETIME}
_TYPE_WORDS = {"int": "numbers", "float": "numbers", "bool": "true/false values",
               "datetime": "dates", "datetime_tz": "dates"}


class _ColumnTypes:
    """Each column's type so far; a block whose values do not fit widens it (int -> float -> text)."""

    def __init__(self, names: list[str]):
        self._names = names
        self._states = ["null"] * len(names)
        self._demoted: dict[int, tuple[str, int, str]] = {}  # column -> (old state, row, value)

    def observe(self, i: int, values: pa.Array, *, first_row: int) -> None:
        state = self._states[i]
        if state == "string":
            return
        present = values.drop_null()
        if len(present) == 0:
            return
        for candidate in _WIDER[state]:
            if _castable(present, _ARROW_TYPES[candidate]):
                self._states[i] = candidate
                return
        if state != "null":
            at = _first_failure(values, _ARROW_TYPES[_WIDER[state][-1]])
            self._demoted[i] = (state, first_row + at, values[at].as_py())
        self._states[i] = "string"

    def is_text(self, i: int) -> bool:
        return self._states[i] == "string"

    def state(self, i: int) -> str:
        return self._states[i]

    def demoted(self, i: int) -> bool:
        return i in self._demoted

    def store_as_text(self, i: int) -> None:
        """Keep the column's text as it is (its reading is applied when the column is used)."""
        if self._states[i] != "null":
            self._states[i] = "string"

    def arrow_type(self, i: int) -> pa.DataType:
        return _ARROW_TYPES[self._states[i]]

    def cast(self, i: int, values: pa.Array) -> pa.Array:
        return values.cast(self.arrow_type(i))

    def notes(self, skip: set[str] = frozenset()) -> list[str]:
        return [
            f"column '{self._names[i]}' holds {_TYPE_WORDS[old]} until data row {row}, which has "
            f"'{value}', so the column is stored as text"
            for i, (old, row, value) in self._demoted.items() if self._names[i] not in skip
        ]


def _first_failure(values: pa.Array, to: pa.DataType) -> int:
    """Index of the first value that does not cast, by bisection (a dozen casts, not a loop)."""
    good, bad = 0, len(values)  # values[:good] casts, values[:bad] does not
    while bad - good > 1:
        middle = (good + bad) // 2
        if _castable(values[:middle], to):
            good = middle
        else:
            bad = middle
    return good


def _castable(values: pa.Array, to: pa.DataType) -> bool:
    try:
        values[:64].cast(to)  # fail fast: a failed cast of a whole block is slow
        values.cast(to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    if pa.types.is_integer(to) or pa.types.is_floating(to):
        # Codes such as "007" or "0x1F" cast to numbers but are not quantities.
        return not pc.any(pc.match_substring_regex(values, _CODE_LIKE)).as_py()
    return True


class _RowGroupWriter:
    """Collects blocks into row groups of a useful size before writing them."""

    def __init__(self, path: Path, schema: pa.Schema):
        self._writer = pq.ParquetWriter(path, schema, compression="snappy")
        self._schema = schema
        self._pending: list[pa.RecordBatch] = []
        self._rows = self._bytes = 0

    def __enter__(self) -> "_RowGroupWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        try:
            if exc_type is None:
                self._flush()
        finally:
            self._writer.close()

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        self._pending.append(batch)
        self._rows += batch.num_rows
        self._bytes += batch.nbytes
        if self._rows >= ROW_GROUP_ROWS or self._bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            table = pa.Table.from_batches(self._pending, schema=self._schema)
            self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._pending, self._rows, self._bytes = [], 0, 0


# --- Parquet ------------------------------------------------------------------------

def _ingest_parquet(source: _Source, out: Path, new_temp: Callable[[str], Path], *,
                    filename: str, max_columns: int, as_text=frozenset()) -> IngestResult:
    # pyarrow reads Parquet from its end, so a file object is first copied (counting) to disk.
    path = source.path
    if path is None:
        path = new_temp(".upload")
        with open(path, "wb") as copy:
            source.copy_to(copy)
    size_bytes = os.path.getsize(path)
    unreadable = f"'{filename}' starts like a Parquet file but cannot be read"
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise MLInputError(f"{unreadable}: {exc}", field=_FIELD, status=415) from None

    # pandas stores an unnamed index as __index_level_0__: it is not data.
    kept = [f for f in schema if not (f.name.startswith("__index_level_") and f.name.endswith("__"))]
    names = [f.name.strip() for f in kept]
    _check_names(names, max_columns)
    unsupported = [f"'{f.name}' ({f.type})" for f in kept
                   if pa.types.is_nested(f.type) or pa.types.is_binary(f.type)
                   or pa.types.is_large_binary(f.type) or pa.types.is_fixed_size_binary(f.type)]
    if unsupported:
        raise MLInputError("columns holding lists, structures or binary data are not supported: "
                           f"{', '.join(unsupported)}", field=_FIELD)
    if parquet.metadata.num_rows == 0:
        raise MLInputError("the Parquet file has columns but no data rows", field=_FIELD)

    # Rewrite rather than copy: it proves every page can be read, drops pandas' index,
    # decodes categoricals and gives the row groups the size the profiler samples by.
    schema = pa.schema([
        pa.field(name, pa.string() if name in as_text else
                 f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
        for name, f in zip(names, kept)
    ])
    evidence = {i: FormatEvidence() for i, f in enumerate(schema) if _is_string(f.type)}
    rows = 0
    try:
        with _RowGroupWriter(out, schema) as writer:
            for batch in parquet.iter_batches(batch_size=65_536, columns=[f.name for f in kept],
                                              use_pandas_metadata=False):
                arrays = [column.cast(f.type) for column, f in zip(batch.columns, schema)]
                for i, found in evidence.items():
                    found.observe(clean_text(arrays[i]))
                writer.write(pa.RecordBatch.from_arrays(arrays, schema=schema))
                rows += batch.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise MLInputError(f"{unreadable}: {exc}", field=_FIELD, status=415) from None
    european = is_european(None, evidence.values())
    readings = {}
    for i, f in enumerate(schema):
        reading = (evidence[i].reading(european=european) if i in evidence else None if f.name in as_text
                   else reading_of_arrow_type(f.type))
        if reading is not None:
            readings[f.name] = reading.as_dict()
    return IngestResult(rows=rows, columns=names, file_format="parquet", delimiter=None, encoding=None,
                        size_bytes=size_bytes, notes=[], readings=readings)


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)

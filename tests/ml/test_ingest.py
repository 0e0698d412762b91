"""CSV and Parquet uploads become one clean Parquet file, or a message the user can act on."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from training.ml import ingest as ingest_module
from training.ml.errors import MLInputError
from training.ml.ingest import IngestResult, ingest_to_parquet

MB = 2**20


@pytest.fixture
def upload_dir(tmp_path):
    folder = tmp_path / "datasets"
    folder.mkdir()
    return folder


@pytest.fixture
def ingest(upload_dir):
    """Ingest bytes (or a file object / path) into upload_dir/data.parquet; return result and table."""

    def run(data, *, filename="data.csv", max_bytes=10 * MB, **options) -> tuple[IngestResult, pa.Table]:
        src = io.BytesIO(data) if isinstance(data, bytes) else data
        dest = upload_dir / "data.parquet"
        result = ingest_to_parquet(src, dest, filename=filename, max_bytes=max_bytes, **options)
        return result, pq.read_table(dest)

    return run


@pytest.fixture
def rejected(upload_dir):
    """Ingest that must fail: returns the error and checks nothing was left in the folder."""

    def run(data, *, filename="data.csv", max_bytes=10 * MB, **options) -> MLInputError:
        src = io.BytesIO(data) if isinstance(data, bytes) else data
        with pytest.raises(MLInputError) as caught:
            ingest_to_parquet(src, upload_dir / "data.parquet", filename=filename,
                              max_bytes=max_bytes, **options)
        assert list(upload_dir.iterdir()) == [], "a failed ingest must leave no file behind"
        assert caught.value.field == "file"
        return caught.value

    return run


def column(table: pa.Table, name: str) -> list:
    return table.column(name).to_pylist()


# --- encodings and delimiters --------------------------------------------------------

def test_utf8_csv_gets_a_type_per_column_and_missing_values_as_nulls(ingest):
    data = (b"name,age,score,joined,active\n"
            b"Ann,31,2.5,2021-03-04,true\n"
            b"Bob,,3,2021-03-05 10:30:00,false\n"
            b"Zo\xc3\xab,45,N/A,,TRUE\n")

    result, table = ingest(data)

    assert (result.rows, result.columns) == (3, ["name", "age", "score", "joined", "active"])
    assert (result.file_format, result.delimiter, result.encoding) == ("csv", ",", "utf-8")
    assert result.size_bytes == len(data)
    assert table.schema.types == [pa.string(), pa.int64(), pa.float64(), pa.timestamp("us"), pa.bool_()]
    assert column(table, "name") == ["Ann", "Bob", "Zoë"]
    assert column(table, "age") == [31, None, 45]
    assert column(table, "score") == [2.5, 3.0, None]
    assert column(table, "joined")[1] == pd.Timestamp("2021-03-05 10:30").to_pydatetime()
    assert column(table, "active") == [True, False, True]


def test_utf8_byte_order_mark_is_not_part_of_the_first_column_name(ingest):
    result, table = ingest("\ufeffid,city\n1,Zürich\n".encode("utf-8"))

    assert result.columns == ["id", "city"]
    assert result.encoding == "utf-8-sig"
    assert column(table, "city") == ["Zürich"]
    assert any("byte-order mark" in note for note in result.notes)


def test_latin1_file_keeps_accents_in_header_and_values(ingest):
    result, table = ingest("prénom;ville\nAndré;Besançon\nRené;Orléans\n".encode("latin-1"))

    assert result.columns == ["prénom", "ville"]
    assert column(table, "prénom") == ["André", "René"]
    assert column(table, "ville") == ["Besançon", "Orléans"]
    assert result.encoding in ("cp1252", "latin-1")
    assert any("not UTF-8" in note for note in result.notes)


def test_non_utf8_byte_after_the_first_block_rereads_the_file_as_windows_1252(ingest, monkeypatch):
    # Given a file that is plain ASCII for longer than the block used to detect the encoding
    monkeypatch.setattr(ingest_module, "HEAD_BYTES", 1024)
    data = b"city,n\n" + b"Paris,1\n" * 500 + "Besançon,2\n".encode("cp1252")

    result, table = ingest(data)

    assert result.encoding == "cp1252"
    assert column(table, "city")[-1] == "Besançon"
    assert result.rows == 501


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_delimiter_is_detected(ingest, delimiter):
    rows = [["product", "price", "note"], ["tea", "3.5", "green, loose"], ["coffee", "4", "beans, dark"]]
    data = "\n".join(delimiter.join(r) for r in rows).encode() + b"\n"

    result, table = ingest(data)

    assert result.delimiter == delimiter
    assert result.columns == ["product", "price", "note"]
    assert column(table, "note") == ["green, loose", "beans, dark"]
    assert column(table, "price") == [3.5, 4.0]


def test_semicolon_file_with_decimal_commas_keeps_them_as_text(ingest):
    result, table = ingest(b"a;b\n1,5;x\n2,25;y\n")

    assert result.delimiter == ";"
    assert column(table, "a") == ["1,5", "2,25"]


def test_single_column_file_needs_no_delimiter(ingest):
    result, table = ingest(b"value\n1\n2\n3\n")

    assert result.columns == ["value"]
    assert column(table, "value") == [1, 2, 3]


def test_quoted_fields_keep_delimiters_newlines_and_quotes(ingest):
    data = (b'id,comment,score\n'
            b'1,"hello, world",5\n'
            b'2,"line one\nline two",6\n'
            b'3,"she said ""hi""",7\r\n')

    result, table = ingest(data)

    assert result.rows == 3
    assert column(table, "comment") == ["hello, world", "line one\nline two", 'she said "hi"']
    assert column(table, "score") == [5, 6, 7]


def test_header_names_and_values_are_trimmed_and_na_tokens_are_missing(ingest):
    _, table = ingest(b" a , b \n 1 , x \nNULL, n/a \n  ,?\n")

    assert table.column_names == ["a", "b"]
    assert column(table, "a") == [1, None, None]
    assert column(table, "b") == ["x", None, None]


def test_codes_with_leading_zeros_stay_text(ingest):
    _, table = ingest(b"zip,colour,amount\n01234,0x1F,10\n75001,0x20,0\n")

    assert column(table, "zip") == ["01234", "75001"]
    assert column(table, "colour") == ["0x1F", "0x20"]
    assert column(table, "amount") == [10, 0]


# --- Parquet uploads -----------------------------------------------------------------

def parquet_bytes(frame: pd.DataFrame, **options) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, **options)
    return buffer.getvalue()


def test_parquet_is_recognised_by_content_even_with_a_csv_name(ingest):
    frame = pd.DataFrame({"x": [1.5, 2.5, None], "colour": pd.Categorical(["red", "blue", "red"])},
                         index=[10, 11, 12])

    result, table = ingest(parquet_bytes(frame), filename="export.csv")

    assert result.file_format == "parquet"
    assert (result.delimiter, result.encoding) == (None, None)
    assert result.rows == 3
    assert result.columns == ["x", "colour"], "pandas' index is not a data column"
    assert table.schema.field("colour").type == pa.string(), "categoricals are stored as plain text"
    assert column(table, "x") == [1.5, 2.5, None]


def test_csv_named_parquet_is_read_as_csv(ingest):
    result, _ = ingest(b"a,b\n1,2\n", filename="data.parquet")

    assert result.file_format == "csv"


def test_ingest_reads_a_path_and_an_unseekable_stream(ingest, tmp_path):
    data = b"a,b\n1,2\n3,4\n"
    path = tmp_path / "upload.csv"
    path.write_bytes(data)

    class Pipe(io.RawIOBase):  # a socket-like upload: no seek, no size
        def __init__(self):
            self._data = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, buffer):
            return self._data.readinto(buffer)

    from_path, _ = ingest(path)
    from_pipe, table = ingest(Pipe())

    assert from_path.rows == from_pipe.rows == 2
    assert from_pipe.size_bytes == len(data)
    assert column(table, "b") == [2, 4]


def test_successful_ingest_leaves_only_the_destination(ingest, upload_dir):
    ingest(b"a,b\n1,2\n")

    assert [p.name for p in upload_dir.iterdir()] == ["data.parquet"]


# --- type drift across blocks --------------------------------------------------------

def test_types_settle_over_the_whole_file_not_the_first_block(ingest):
    # Given columns that look like integers for 1,000 rows and then are not, read in tiny blocks
    lines = ["count,amount,code,flag"]
    lines += [f"{i},{i},{i},true" for i in range(1, 1001)]
    lines += ["N/A,2.5,abc,", ",3,B-7,false"]
    data = ("\n".join(lines) + "\n").encode()

    result, table = ingest(data, block_size=256)

    assert result.rows == 1002
    assert table.schema.field("count").type == pa.int64(), "missing values do not make a column text"
    assert column(table, "count")[-2:] == [None, None]
    assert table.schema.field("amount").type == pa.float64()
    assert column(table, "amount")[-2:] == [2.5, 3.0]
    assert table.schema.field("code").type == pa.string()
    assert column(table, "code")[:2] == ["1", "2"] and column(table, "code")[-2:] == ["abc", "B-7"]
    assert column(table, "flag")[-2:] == [None, False]
    assert result.notes == ["column 'code' holds numbers until data row 1001, which has 'abc', "
                            "so the column is stored as text"]


# --- rejected files ------------------------------------------------------------------

@pytest.mark.parametrize("data", [b"", b"\n\n  \n", b"\xef\xbb\xbf"])
def test_empty_file(rejected, data):
    error = rejected(data)

    assert (error.status, error.message) == (400, "the file is empty")


@pytest.mark.parametrize("data", [b"a,b,c\n", b"a,b,c", b"a;b;c\r\n\r\n"])
def test_header_without_rows(rejected, data):
    error = rejected(data)

    assert (error.status, error.message) == (400, "the file has a header but no data rows")


@pytest.mark.parametrize("data, message", [
    (b"a,b,c\n1,2,3\n4,5\n6,7,8\n",
     "line 3 has 2 fields but the header has 3; every row needs 3 fields"),
    (b"a,b,c\n1,2,3\n4,5,6,7\n",
     "line 3 has 4 fields but the header has 3; every row needs 3 fields"),
    # the quoted newline makes row 2 two lines long: the bad row starts on line 5
    (b'a,b,c\n1,2,3\n"two\nlines",5,6\n7,8\n',
     "line 5 has 2 fields but the header has 3; every row needs 3 fields"),
    (b'a,b,c\n\n1,2,3\n\n4\n',
     "line 5 has 1 field but the header has 3; every row needs 3 fields"),
])
def test_ragged_row_names_its_line_and_field_counts(rejected, data, message):
    error = rejected(data)

    assert (error.status, error.message) == (400, message)


def test_ragged_row_far_into_the_file_is_found_with_small_blocks(rejected):
    data = b"a,b\n" + b"1,2\n" * 5000 + b"3\n"

    error = rejected(data, block_size=1024)

    assert error.message.startswith("line 5002 has 1 field but the header has 2")


def test_unclosed_quote_is_reported_where_it_starts(rejected):
    error = rejected(b'a,b,c\n1,2,3\n"oops,5,6\n7,8,9\n10,11,12\n')

    assert error.status == 400
    assert error.message.startswith("line 3 has 1 field but the header has 3")
    assert "double quote may be missing" in error.message


def test_unclosed_quote_longer_than_a_block(rejected):
    data = b'a,b\n1,2\n"oops,3\n' + b"4,5\n" * 2000

    error = rejected(data, block_size=1024)

    assert error.status == 400
    assert error.message.startswith("line 3 ")
    assert "quote" in error.message


def test_duplicate_column_names_are_named(rejected):
    error = rejected(b"id,price,id,name,price\n1,2,3,4,5\n")

    assert error.status == 400
    assert error.message == ("duplicate column names: 'id' (columns 1, 3), 'price' (columns 2, 5); "
                             "every column needs a distinct name")


def test_blank_column_names_give_their_positions(rejected):
    error = rejected(b"a,,c, \n1,2,3,4\n")

    assert error.status == 400
    assert error.message.startswith("column names are blank at positions 2, 4")


def test_blank_first_column_name_hints_at_a_saved_index(rejected):
    error = rejected(b",a,b\n0,1,2\n")

    assert "row index" in error.message


def test_too_many_columns_names_the_limit(rejected):
    error = rejected(b"a,b,c,d,e\n1,2,3,4,5\n", max_columns=3)

    assert (error.status, error.message) == (400, "the file has 5 columns; the limit is 3")


def test_file_over_the_limit_is_413_and_says_the_limit_in_mb(rejected):
    data = b"a,b\n" + b"12345,67890\n" * 150_000  # about 1.7 MB

    error = rejected(data, max_bytes=1 * MB)

    assert error.status == 413
    assert error.message == "the file is larger than the upload limit of 1 MB"


def test_size_limit_is_checked_while_reading_not_taken_from_a_declared_size(rejected):
    data = b"a,b\n" + b"12345,67890\n" * 150_000

    class Upload(io.RawIOBase):  # claims to be small, cannot be measured by seeking
        size = 10

        def __init__(self):
            self._data = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, buffer):
            return self._data.readinto(buffer)

    error = rejected(Upload(), max_bytes=1 * MB)

    assert error.status == 413


@pytest.mark.parametrize("packed, what", [
    (gzip.compress(b"a,b\n1,2\n"), "gzip"),
    (bz2.compress(b"a,b\n1,2\n"), "bzip2"),
    (lzma.compress(b"a,b\n1,2\n"), "xz"),
    (b"7z\xbc\xaf\x27\x1c\x00\x04", "7-Zip"),
])
def test_compressed_files_are_415(rejected, packed, what):
    error = rejected(packed)

    assert error.status == 415
    assert what in error.message
    assert "not a CSV or Parquet file" in error.message


def test_zip_or_excel_file_is_415(rejected):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.csv", "a,b\n1,2\n")

    error = rejected(buffer.getvalue(), filename="data.xlsx")

    assert error.status == 415
    assert "'data.xlsx' is a ZIP archive (or an Excel .xlsx workbook)" in error.message


@pytest.mark.parametrize("data", [b"a,b\n1,\x00\x02\n", bytes(range(256)) * 40])
def test_binary_content_is_415(rejected, data):
    error = rejected(data)

    assert error.status == 415
    assert "binary" in error.message


def test_control_characters_without_nul_bytes_are_not_text(rejected):
    error = rejected(bytes(range(1, 32)) * 200)

    assert error.status == 415
    assert "does not look like text" in error.message


def test_utf16_file_is_415_with_a_way_out(rejected):
    error = rejected("a,b\n1,2\n".encode("utf-16"))

    assert error.status == 415
    assert "save it as UTF-8" in error.message


def test_broken_parquet_is_415(rejected):
    data = parquet_bytes(pd.DataFrame({"x": range(100)}))

    error = rejected(data[:60] + data[-30:], filename="data.parquet")

    assert error.status == 415
    assert error.message.startswith("'data.parquet' starts like a Parquet file but cannot be read")


def test_parquet_without_rows_is_400(rejected):
    error = rejected(parquet_bytes(pd.DataFrame({"x": pd.Series([], dtype="float64")})))

    assert (error.status, error.message) == (400, "the Parquet file has columns but no data rows")


def test_parquet_with_duplicate_names_is_400(rejected):
    table = pa.table([pa.array([1]), pa.array([2])], names=["a", "a"])
    buffer = io.BytesIO()
    pq.write_table(table, buffer)

    error = rejected(buffer.getvalue())

    assert error.message.startswith("duplicate column names: 'a' (columns 1, 2)")


def test_failed_ingest_keeps_an_existing_destination_untouched(upload_dir):
    dest = upload_dir / "data.parquet"
    dest.write_bytes(b"previous version")

    with pytest.raises(MLInputError):
        ingest_to_parquet(io.BytesIO(b"a,b\n1\n"), dest, filename="data.csv", max_bytes=MB)

    assert dest.read_bytes() == b"previous version"
    assert [p.name for p in upload_dir.iterdir()] == ["data.parquet"]


def test_size_limit_also_holds_for_a_file_that_grows_after_it_was_measured(rejected, monkeypatch):
    # Given the up-front size check sees a small file (as if it grew while being read)
    monkeypatch.setattr(ingest_module._Source, "check_size", lambda self: None)
    data = b"a,b\n" + b"12345,67890\n" * 150_000

    error = rejected(data, max_bytes=1 * MB)

    assert (error.status, error.message) == (413, "the file is larger than the upload limit of 1 MB")

"""The encrypted file format (mlplatform.encryption): round trips at every size around a chunk, random
access, and refusal of every way a file can be altered: a flipped bit, dropped, reordered or appended
chunks, truncation, a file moved to another name, a key that is not configured."""
import io
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlplatform import encryption
from mlplatform.encryption import (
    HEADER_SIZE, TAG, DecryptingReader, DecryptionFailed, KeyNotConfigured, decrypt_bytes, encrypt_bytes, parse_key,
)

CHUNK = 64  # small chunks, so a few hundred bytes cross many chunk boundaries
KEY = parse_key(encryption.generate_key())
OTHER = parse_key(encryption.generate_key())


def sealed(data: bytes, name: str = "models/a.skops", key=KEY) -> bytes:
    return encrypt_bytes(data, key, name=name, chunk=CHUNK)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17])
def test_round_trip_at_every_size_around_a_chunk(size):
    data = os.urandom(size)
    blob = sealed(data)
    assert len(blob) == HEADER_SIZE + size + TAG * max(1, -(-size // CHUNK))
    assert decrypt_bytes(blob, [OTHER, KEY], name="models/a.skops") == data


def test_reads_from_anywhere_like_a_file():
    data = bytes(range(256)) * 5
    with DecryptingReader(io.BytesIO(sealed(data)), [KEY], name="models/a.skops") as reader:
        assert reader.size == len(data)
        for start, length in [(0, 10), (63, 2), (64, 64), (100, 500), (len(data) - 5, 50), (len(data), 10)]:
            reader.seek(start)
            assert reader.read(length) == data[start:start + length]
        reader.seek(-7, os.SEEK_END)
        assert reader.read() == data[-7:]


def test_pyarrow_reads_an_encrypted_parquet_file_column_by_column():
    table = pa.table({"a": list(range(5000)), "b": [f"text {i}" for i in range(5000)]})
    plain = io.BytesIO()
    pq.write_table(table, plain, row_group_size=1000)
    blob = encrypt_bytes(plain.getvalue(), KEY, name="datasets/t.parquet", chunk=4096)
    assert b"PAR1" not in blob[:HEADER_SIZE + 8] and not blob.endswith(b"PAR1") and b"text 42" not in blob
    with DecryptingReader(io.BytesIO(blob), [KEY], name="datasets/t.parquet") as reader:
        assert pq.read_table(reader, columns=["b"]).column("b").to_pylist() == table.column("b").to_pylist()


def _chunks(blob: bytes) -> tuple[bytes, list[bytes]]:
    body = blob[HEADER_SIZE:]
    size = CHUNK + TAG
    return blob[:HEADER_SIZE], [body[i:i + size] for i in range(0, len(body), size)]


def _altered(how: str) -> bytes:
    head, chunks = _chunks(sealed(os.urandom(4 * CHUNK + 10)))
    if how == "flipped bit":
        chunks[1] = chunks[1][:5] + bytes([chunks[1][5] ^ 1]) + chunks[1][6:]
    elif how == "reordered chunks":
        chunks[0], chunks[1] = chunks[1], chunks[0]
    elif how == "dropped chunk":
        del chunks[2]
    elif how == "truncated at a chunk boundary":
        chunks = chunks[:-1]
    elif how == "truncated inside a chunk":
        chunks[-1] = chunks[-1][:7]
    elif how == "appended chunk":
        chunks.append(chunks[0])
    elif how == "header changed":
        head = head[:-1] + bytes([head[-1] ^ 0x10])  # the chunk size
    return head + b"".join(chunks)


@pytest.mark.parametrize("how", ["flipped bit", "reordered chunks", "dropped chunk", "truncated at a chunk boundary",
                                 "truncated inside a chunk", "appended chunk", "header changed"])
def test_any_alteration_is_refused(how):
    with pytest.raises(DecryptionFailed):
        decrypt_bytes(_altered(how), [KEY], name="models/a.skops")


def test_a_file_moved_to_another_name_is_refused():
    with pytest.raises(DecryptionFailed, match="moved from another name"):
        decrypt_bytes(sealed(b"secret"), [KEY], name="models/b.skops")


def test_a_key_that_is_not_configured_is_named():
    blob = sealed(b"secret", key=OTHER)
    with pytest.raises(KeyNotConfigured, match=encryption.key_id_text(OTHER.key_id)):
        decrypt_bytes(blob, [KEY], name="models/a.skops")
    with pytest.raises(KeyNotConfigured, match="no storage encryption key is configured"):
        decrypt_bytes(blob, [], name="models/a.skops")


def test_two_encryptions_of_the_same_file_share_nothing():
    data = b"same content" * 100
    first, second = sealed(data), sealed(data)
    assert first[HEADER_SIZE:] != second[HEADER_SIZE:] and first[16:HEADER_SIZE] != second[16:HEADER_SIZE]


@pytest.mark.parametrize("text", ["", "short", "x" * 44, "not base64 at all!!!!!!!!!!!!!!!!!!!!!!!!!!!"])
def test_a_malformed_key_is_refused_with_a_message_naming_the_setting(text):
    with pytest.raises(ValueError, match="STORAGE_ENCRYPTION_KEY must be 32 random bytes"):
        parse_key(text, name="STORAGE_ENCRYPTION_KEY")


def test_settings_refuse_to_start_with_a_malformed_key():
    from django.core.exceptions import ImproperlyConfigured

    from mlplatform.settings.base import check_storage_keys

    with pytest.raises(ImproperlyConfigured, match="STORAGE_ENCRYPTION_OLD_KEYS"):
        check_storage_keys(encryption.generate_key(), ["oops"])
    check_storage_keys(encryption.generate_key(), [encryption.generate_key()])
    check_storage_keys("", [])

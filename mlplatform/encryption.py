"""Encryption at rest of an organization's files: chunked AES-256-GCM with authenticated chunk order.

Why this and not Fernet: Fernet encrypts a whole message at once (and base64-encodes it), so a 2 GB
dataset would need the whole file in memory, twice, and could not be read from the middle. Parquet is read
from its end (the footer) and then column by column, so a stored dataset must allow random access in
bounded memory. The format here is the "STREAM" online AEAD of Hoang, Reyhanitabar, Rogaway and Vizár
("Online Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015), as in Google
Tink's AES-GCM-HKDF streaming AEAD:

- each file gets a fresh 256-bit key, derived with HKDF-SHA256 from the master key and a random salt,
  so nonces never repeat across files whatever their number;
- the plaintext is cut into chunks of ``CHUNK`` bytes; chunk *i* is sealed with AES-GCM under the nonce
  ``prefix(7 random bytes) || i (4 bytes) || last flag (1 byte)``, with the header and the file's name as
  associated data. Reordering, dropping or appending chunks, truncating the file at a chunk boundary or
  moving a file to another name all fail authentication;
- a reader decrypts one chunk at a time, so memory stays at one chunk whatever the file's size, and
  seeking costs one chunk.

Layout: ``MAGIC (8) | key id (8) | salt (16) | nonce prefix (7) | chunk size (4, big-endian)`` then the
chunks, each ``ciphertext || 16-byte tag``; every chunk holds ``CHUNK`` bytes of plaintext except the
last, which holds 0 to ``CHUNK`` bytes (an empty file is one empty last chunk).

Keys are 32 random bytes, written as URL-safe base64 (``generate_key()``). A key id (8 bytes of a hash
of the key) in each header says which key a file needs, so old keys can stay configured during a
rotation and a file encrypted under a key that is not configured is refused by name, not by a garbled
read. This module holds no Django models: callers pass the keys (``mlplatform.filestore`` reads them
from the settings).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"MLPENC\x01\x00"
CHUNK = 1 << 20  # 1 MiB of plaintext per chunk: one chunk is what a reader holds in memory
TAG = 16
_HEADER = struct.Struct(">8s8s16s7sI")
HEADER_SIZE = _HEADER.size  # 43 bytes
_INFO = b"mlplatform storage v1"


class EncryptionError(Exception):
    """Base of the errors below; ``message`` is for people."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class KeyNotConfigured(EncryptionError):
    """The file is encrypted under a key that is not among the configured ones (or none is configured)."""


class DecryptionFailed(EncryptionError):
    """Authentication failed: the file was altered, truncated, reordered or moved to another name."""


@dataclass(frozen=True)
class Key:
    secret: bytes

    @property
    def key_id(self) -> bytes:
        return hashlib.sha256(b"mlplatform storage key id\x00" + self.secret).digest()[:8]


def generate_key() -> str:
    """A new random key, as the URL-safe base64 text the settings take."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def parse_key(text: str, *, name: str = "key") -> Key:
    """A key from its base64 text (URL-safe or standard). Raises ValueError naming ``name`` if it is not 32 bytes."""
    cleaned = text.strip()
    try:
        raw = base64.urlsafe_b64decode(cleaned.replace("+", "-").replace("/", "_") + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"{name} must be 32 random bytes in base64 (44 characters); generate one with "
                         "`python manage.py rotate_storage_key --generate-key`")
    return Key(raw)


def key_id_text(key_id: bytes) -> str:
    return key_id.hex()


# --- the header --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Header:
    key_id: bytes
    salt: bytes
    prefix: bytes
    chunk: int

    def pack(self) -> bytes:
        return _HEADER.pack(MAGIC, self.key_id, self.salt, self.prefix, self.chunk)

    @classmethod
    def new(cls, key: Key, chunk: int = CHUNK) -> "Header":
        return cls(key.key_id, os.urandom(16), os.urandom(7), chunk)

    @classmethod
    def parse(cls, data: bytes) -> "Header | None":
        """The header at the start of ``data``, or None when the data is not an encrypted file."""
        if len(data) < HEADER_SIZE or not data.startswith(MAGIC):
            return None
        _, key_id, salt, prefix, chunk = _HEADER.unpack(data[:HEADER_SIZE])
        if not 0 < chunk <= 64 << 20:
            return None
        return cls(key_id, salt, prefix, chunk)


def read_header(handle: BinaryIO) -> Header | None:
    """The header of an open file (its position is left after the header), or None for a plain file."""
    handle.seek(0)
    return Header.parse(handle.read(HEADER_SIZE))


def _file_cipher(key: Key, header: Header) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=header.salt, info=_INFO).derive(key.secret)
    return AESGCM(derived)


def _nonce(header: Header, index: int, last: bool) -> bytes:
    if index >= 1 << 32:
        raise EncryptionError("file too large for its chunk size")
    return header.prefix + struct.pack(">I", index) + (b"\x01" if last else b"\x00")


def _aad(header_bytes: bytes, name: str) -> bytes:
    return header_bytes + name.encode("utf-8", "surrogatepass")


def find_key(keys: Iterable[Key], header: Header, *, name: str) -> Key:
    keys = list(keys)
    for key in keys:
        if key.key_id == header.key_id:
            return key
    if not keys:
        raise KeyNotConfigured(f"'{name}' is encrypted (key id {key_id_text(header.key_id)}) but no storage "
                               "encryption key is configured.")
    raise KeyNotConfigured(f"'{name}' is encrypted with key id {key_id_text(header.key_id)}, which is not among the "
                           f"configured storage keys ({', '.join(key_id_text(k.key_id) for k in keys)}).")


# --- writing -----------------------------------------------------------------------------------------
class EncryptingWriter(io.RawIOBase):
    """A write-only stream that encrypts into ``sink`` chunk by chunk. ``close()`` writes the last chunk
    (it does not close ``sink``). Holds at most one chunk of plaintext."""

    def __init__(self, sink: BinaryIO, key: Key, *, name: str, chunk: int = CHUNK):
        super().__init__()
        self._sink = sink
        self._header = Header.new(key, chunk)
        header_bytes = self._header.pack()
        self._aad = _aad(header_bytes, name)
        self._cipher = _file_cipher(key, self._header)
        self._pending = bytearray()
        self._index = 0
        self._finished = False
        sink.write(header_bytes)

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self._finished:
            raise ValueError("write to a finished encrypted file")
        view = memoryview(data).cast("B")
        self._pending += view
        size = self._header.chunk
        # a chunk is sealed only once more data follows it: the last one must carry the last flag
        while len(self._pending) > size:
            self._seal(bytes(self._pending[:size]), last=False)
            del self._pending[:size]
        return len(view)

    def _seal(self, plaintext: bytes, *, last: bool) -> None:
        self._sink.write(self._cipher.encrypt(_nonce(self._header, self._index, last), plaintext, self._aad))
        self._index += 1

    def close(self) -> None:
        if not self._finished and not self.closed:
            self._seal(bytes(self._pending), last=True)
            self._pending.clear()
            self._finished = True
        super().close()


def encrypt_stream(source: BinaryIO, sink: BinaryIO, key: Key, *, name: str, chunk: int = CHUNK) -> None:
    """Encrypt everything readable from ``source`` into ``sink`` in bounded memory."""
    writer = EncryptingWriter(sink, key, name=name, chunk=chunk)
    while block := source.read(chunk):
        writer.write(block)
    writer.close()


def encrypt_bytes(data: bytes, key: Key, *, name: str, chunk: int = CHUNK) -> bytes:
    sink = io.BytesIO()
    encrypt_stream(io.BytesIO(data), sink, key, name=name, chunk=chunk)
    return sink.getvalue()


# --- reading -----------------------------------------------------------------------------------------
class DecryptingReader(io.RawIOBase):
    """A seekable read-only view of the plaintext of an encrypted file, decrypting one chunk at a time.

    ``source`` must be seekable; it is closed with the reader. Any read that touches a chunk whose tag does
    not verify raises ``DecryptionFailed``: no unauthenticated byte is ever returned. pyarrow reads it like
    a file (``pq.ParquetFile(reader)``).
    """

    def __init__(self, source: BinaryIO, keys: Iterable[Key], *, name: str):
        super().__init__()
        self._source = source
        self._name = name
        header = read_header(source)
        if header is None:
            source.close()
            raise DecryptionFailed(f"'{name}' is not an encrypted file.")
        self._header = header
        self._aad = _aad(header.pack(), name)
        try:
            self._cipher = _file_cipher(find_key(keys, header, name=name), header)
        except KeyNotConfigured:
            source.close()
            raise
        body = source.seek(0, os.SEEK_END) - HEADER_SIZE
        sealed = header.chunk + TAG
        if body < TAG:
            source.close()
            raise DecryptionFailed(f"'{name}' is truncated.")
        self._chunks = -(-body // sealed)
        last_sealed = body - (self._chunks - 1) * sealed
        if last_sealed < TAG:
            source.close()
            raise DecryptionFailed(f"'{name}' is truncated or altered.")
        self._size = (self._chunks - 1) * header.chunk + last_sealed - TAG
        self._pos = 0
        self._cached: tuple[int, bytes] | None = None

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        position = base + offset
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._pos = position
        return position

    def _chunk(self, index: int) -> bytes:
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        sealed = self._header.chunk + TAG
        self._source.seek(HEADER_SIZE + index * sealed)
        data = self._source.read(sealed)
        last = index == self._chunks - 1
        try:
            plaintext = self._cipher.decrypt(_nonce(self._header, index, last), data, self._aad)
        except InvalidTag:
            raise DecryptionFailed(f"'{self._name}' failed its authentication check: it was altered, truncated or "
                                   "moved from another name.") from None
        self._cached = (index, plaintext)
        return plaintext

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        written = 0
        while written < len(view) and self._pos < self._size:
            index, offset = divmod(self._pos, self._header.chunk)
            piece = self._chunk(index)[offset:offset + len(view) - written]
            view[written:written + len(piece)] = piece
            written += len(piece)
            self._pos += len(piece)
        return written

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, self._size - self._pos)
        buffer = bytearray(min(size, max(0, self._size - self._pos)))
        n = self.readinto(buffer)
        return bytes(buffer) if n == len(buffer) else bytes(memoryview(buffer)[:n])  # one copy, not two

    def readall(self) -> bytes:
        return self.read(-1)

    def verify(self) -> None:
        """Authenticate every chunk (reads the whole file once, one chunk at a time)."""
        for index in range(self._chunks):
            self._cached = None
            self._chunk(index)

    def close(self) -> None:
        if not self.closed:
            self._source.close()
            self._cached = None
        super().close()


def decrypt_bytes(data: bytes, keys: Iterable[Key], *, name: str) -> bytes:
    with DecryptingReader(io.BytesIO(data), keys, name=name) as reader:
        return reader.read()

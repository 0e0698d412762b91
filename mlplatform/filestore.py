"""Every read and write of an organization's files: model and ONNX files, stored datasets, batch inputs and
outputs. One place, so that encryption at rest, atomic writes and clean-up apply to all of them.

Files live in the organization's own folder (``TenantFileSystemStorage``: ``MEDIA_ROOT/<schema>/``), under
a few folders (``datasets/``, ``models/``, ``batch_inputs/``, ``batch_outputs/``) plus ``tmp/`` for work in
progress. A file appears under its final name only once it is complete (written to ``tmp/``, flushed to
disk, then renamed), so a crash never leaves a half-written file where a reader would find it.

Encryption at rest: when ``STORAGE_ENCRYPTION_KEY`` is set, every file stored from then on is encrypted
(``mlplatform.encryption``: chunked AES-256-GCM, readable in bounded memory and from the middle);
``STORAGE_ENCRYPTION_OLD_KEYS`` keeps files written under earlier keys readable until
``manage.py rotate_storage_key`` has re-encrypted them. Plain files (written before a key was configured)
are read as they are, so turning encryption on never breaks what is stored. Writers that need a path
(pyarrow's Parquet and CSV writers) write plain data to a private file under ``tmp/`` and ``store()`` it;
readers get bytes, a stream, or a source pyarrow reads (``open_parquet``).

Work files of a job carry the job's prefix (``job_prefix``), so the files of a job that failed or whose
worker died are found and removed without a database of files (``remove_job_files``).
"""
from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

from django.conf import settings
from django.core.files.storage import default_storage

from mlplatform import encryption
from mlplatform.errors import ApplicationError

logger = logging.getLogger(__name__)

DATASETS, MODELS, BATCH_INPUTS, BATCH_OUTPUTS, TEMP = "datasets", "models", "batch_inputs", "batch_outputs", "tmp"
STORED_FOLDERS = (DATASETS, MODELS, BATCH_INPUTS, BATCH_OUTPUTS)
#: Folders where a job writes: its files there carry its prefix.
JOB_FOLDERS = (MODELS, BATCH_OUTPUTS, TEMP)
BLOCK = encryption.CHUNK


class StorageKeyUnavailable(ApplicationError):
    """A stored file needs a key that this server does not have: a configuration problem, so 503."""

    def __init__(self, message: str):
        super().__init__(f"{message} The file was not read. An administrator must configure the key it was "
                         "written with (STORAGE_ENCRYPTION_KEY or STORAGE_ENCRYPTION_OLD_KEYS).", status=503,
                         extra={"code": "storage_key_unavailable"})


class StoredFileCorrupt(ApplicationError):
    """A stored encrypted file failed authentication: altered or damaged on disk, so 409 (like a tampered model)."""

    def __init__(self, message: str):
        super().__init__(f"{message} It was not read; restore it from a backup or create it again.", status=409,
                         extra={"code": "stored_file_corrupt"})


# --- keys -----------------------------------------------------------------------------------------------
def current_key() -> encryption.Key | None:
    """The key new files are encrypted with, or None when encryption at rest is off."""
    text = settings.STORAGE_ENCRYPTION_KEY
    return encryption.parse_key(text, name="STORAGE_ENCRYPTION_KEY") if text else None


def keyring() -> list[encryption.Key]:
    """Every key a stored file may need: the current one first, then the old ones still configured."""
    keys = [current_key()] if settings.STORAGE_ENCRYPTION_KEY else []
    keys += [encryption.parse_key(text, name="STORAGE_ENCRYPTION_OLD_KEYS") for text in settings.STORAGE_ENCRYPTION_OLD_KEYS]
    return keys


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except encryption.KeyNotConfigured as exc:
        raise StorageKeyUnavailable(exc.message) from None
    except encryption.DecryptionFailed as exc:
        raise StoredFileCorrupt(exc.message) from None


# --- names and paths ------------------------------------------------------------------------------------------
def path(name: str) -> str:
    """The absolute path of ``name`` in the current organization's folder (refuses names leaving it)."""
    return default_storage.path(name)


def new_name(folder: str, suffix: str, *, prefix: str = "") -> str:
    return f"{folder}/{prefix}{uuid.uuid4().hex}{suffix}"


def job_prefix(kind: str, job_id: int) -> str:
    """The prefix of every file a job writes, e.g. ``trainingjob-12-``."""
    return f"{kind}-{int(job_id)}-"


def staging_path(suffix: str = "", *, prefix: str = "") -> str:
    """A new private path under ``tmp/`` for a file being written (not created; its folder is)."""
    target = path(new_name(TEMP, suffix, prefix=prefix))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    return target


@contextmanager
def staged(suffix: str = "", *, prefix: str = "") -> Iterator[str]:
    """A ``staging_path`` removed at the end of the block unless ``store()`` has taken it."""
    target = staging_path(suffix, prefix=prefix)
    try:
        yield target
    finally:
        if os.path.exists(target):
            os.remove(target)


def _private_temp_next_to(target: str) -> str:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    return os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.{uuid.uuid4().hex[:8]}.part")


def _durable_replace(temp: str, target: str) -> None:
    with open(temp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, target)


# --- writing --------------------------------------------------------------------------------------------------------
def _write_from(source: BinaryIO, name: str, key: encryption.Key | None) -> int:
    """Copy ``source`` to ``name`` (encrypted under ``key`` if given) through a temporary file: all or nothing."""
    target = path(name)
    temp = _private_temp_next_to(target)
    try:
        with open(temp, "xb") as sink:
            if key is None:
                while block := source.read(BLOCK):
                    sink.write(block)
            else:
                encryption.encrypt_stream(source, sink, key, name=name)
        _durable_replace(temp, target)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise
    return os.path.getsize(target)


def save_bytes(name: str, data: bytes) -> int:
    """Store ``data`` under ``name`` (a new name: see ``new_name``). Returns the bytes on disk."""
    import io

    return _write_from(io.BytesIO(data), name, current_key())


def store(staging: str, name: str) -> int:
    """Move a finished file from ``staging`` (see ``staging_path``) to ``name``, encrypting it when a key is
    configured. The staging file is gone afterwards, whatever happens. Returns the bytes on disk."""
    try:
        key = current_key()
        if key is None:
            target = path(name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            _durable_replace(staging, target)
            return os.path.getsize(target)
        with open(staging, "rb") as source:
            return _write_from(source, name, key)
    finally:
        if os.path.exists(staging):
            os.remove(staging)


# --- reading ------------------------------------------------------------------------------------------------------------
def _open(name: str) -> tuple[BinaryIO, bool]:
    """(an open handle positioned at 0, whether it is encrypted)."""
    handle = open(path(name), "rb")
    encrypted = encryption.read_header(handle) is not None
    handle.seek(0)
    return handle, encrypted


def open_stream(name: str) -> BinaryIO:
    """A readable, seekable stream of the file's plain content; the caller closes it.
    Raises FileNotFoundError, StorageKeyUnavailable or StoredFileCorrupt (on the first bad chunk read)."""
    handle, encrypted = _open(name)
    if not encrypted:
        return handle
    with _translated_errors():
        return _Translating(encryption.DecryptingReader(handle, keyring(), name=name))


class _Translating:
    """Wraps a decrypting reader so its errors reach callers as application errors (409/503)."""

    def __init__(self, reader: encryption.DecryptingReader):
        self._reader = reader

    def __getattr__(self, attribute):
        return getattr(self._reader, attribute)

    def read(self, size: int = -1) -> bytes:
        with _translated_errors():
            return self._reader.read(size)

    def readinto(self, buffer) -> int:
        with _translated_errors():
            return self._reader.readinto(buffer)

    def __iter__(self):
        while block := self.read(BLOCK):
            yield block

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._reader.close()


def read_bytes(name: str) -> bytes:
    """The whole plain content of a (small) file: model and ONNX files. Raises FileNotFoundError,
    StorageKeyUnavailable or StoredFileCorrupt."""
    handle, encrypted = _open(name)
    with handle:
        data = handle.read()
    if not encrypted:
        return data
    with _translated_errors():
        return encryption.decrypt_bytes(data, keyring(), name=name)


@contextmanager
def open_parquet(name: str) -> Iterator[str | BinaryIO]:
    """Something ``pyarrow.parquet`` and ``pandas.read_parquet`` read: the path of a plain file, or a
    decrypting reader that holds one chunk in memory and seeks like a file."""
    handle, encrypted = _open(name)
    if not encrypted:
        handle.close()
        yield path(name)
        return
    with _translated_errors():
        reader = encryption.DecryptingReader(handle, keyring(), name=name)
    try:
        with _translated_errors():
            yield reader
    finally:
        reader.close()


def read_frame(name: str, columns: list[str] | None = None):
    """A stored Parquet file as a pandas DataFrame (only ``columns`` if given)."""
    import pandas as pd

    with open_parquet(name) as source:
        # through the decrypting reader, pyarrow's pre-buffering would fetch every column chunk up front and
        # hold the whole file besides the table (bench/encryption.py): read them one at a time instead
        extra = {} if isinstance(source, str) else {"pre_buffer": False}
        return pd.read_parquet(source, columns=columns, **extra)


def is_encrypted(name: str) -> bool:
    with open(path(name), "rb") as handle:
        return encryption.read_header(handle) is not None


def exists(name: str) -> bool:
    return bool(name) and os.path.exists(path(name))


# --- deleting and cleaning up ------------------------------------------------------------------------------------------------
def delete(name: str) -> None:
    if name:
        try:
            os.remove(path(name))
        except FileNotFoundError:
            pass


def _files_in(folder: str) -> Iterator[tuple[str, str]]:
    """(name in storage, absolute path) of the plain files directly in ``folder``."""
    try:
        entries = list(os.scandir(path(folder)))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_file(follow_symlinks=False):
            yield f"{folder}/{entry.name}", entry.path


def remove_job_files(prefix: str, *, keep: Iterable[str] = ()) -> list[str]:
    """Remove every file (finished or partial) a job wrote, except those in ``keep`` (names a row points at).
    Returns the names removed."""
    keep, removed = set(keep), []
    for folder in JOB_FOLDERS:
        for name, absolute in _files_in(folder):
            if os.path.basename(name).lstrip(".").startswith(prefix) and name not in keep:
                try:
                    os.remove(absolute)
                    removed.append(name)
                except FileNotFoundError:
                    pass
    if removed:
        logger.info("removed %d file(s) of %s*: %s", len(removed), prefix, ", ".join(removed))
    return removed


def sweep_temp(*, older_than_s: float) -> list[str]:
    """Remove work files under ``tmp/`` (and partial writes next to stored files) left by a process that died."""
    cutoff, removed = time.time() - older_than_s, []
    for folder in (TEMP, *STORED_FOLDERS):
        for name, absolute in _files_in(folder):
            partial = folder == TEMP or (os.path.basename(name).startswith(".") and name.endswith(".part"))
            try:
                if partial and os.stat(absolute).st_mtime < cutoff:
                    os.remove(absolute)
                    removed.append(name)
            except FileNotFoundError:
                pass
    return removed


def stored_files() -> Iterator[str]:
    """Names of every complete file of the current organization (not work files)."""
    for folder in STORED_FOLDERS:
        for name, _ in _files_in(folder):
            if not os.path.basename(name).startswith("."):
                yield name


# --- key rotation -------------------------------------------------------------------------------------------------------
def reencrypt(name: str) -> bool:
    """Bring one file under the current key (or to plain, when no key is configured). True if it was
    rewritten, False if it already was. The file is replaced atomically: readers see the old or the new
    content, both readable while the old key stays configured; an interruption leaves at most a ``.part``
    file, removed by the next run or by ``sweep_temp``."""
    key = current_key()
    handle, encrypted = _open(name)
    with handle:
        if encrypted:
            header = encryption.read_header(handle)
            if key is not None and header.key_id == key.key_id:
                return False
        elif key is None:
            return False
    with open_stream(name) as source:
        _write_from(source, name, key)
    return True

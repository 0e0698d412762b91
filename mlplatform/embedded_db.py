"""The embedded PostgreSQL used when DATABASE_URL is not set.

`pgserver` ships PostgreSQL binaries in a wheel, so a fresh machine with only
Python needs nothing else. Every process that uses the database (web server,
worker, tests) takes a handle on the same data folder; the server stops when
the last handle is released.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / ".data" / "pg"


def database_url(database: str = "mlplatform") -> str:
    """Start (or join) the embedded server and return a URL for `database`, creating it if needed."""
    import pgserver  # imported lazily: production never needs it

    if not re.fullmatch(r"[a-z_][a-z0-9_]*", database):
        raise ValueError(f"not a plain database name: {database!r}")

    DATA_DIR.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(DATA_DIR, cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # nosec B608: checked above
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return server.get_uri(database)


def resolve_database_url() -> str:
    return os.environ.get("DATABASE_URL") or database_url()

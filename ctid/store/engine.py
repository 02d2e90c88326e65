"""Engine creation: any SQLAlchemy URL; SQLite gets its directory made and WAL mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.pool import StaticPool

#: The default store: a SQLite file under the working directory's `var/`.
DEFAULT_URL = "sqlite:///var/ctid.db"


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL, None for other backends and in-memory DBs."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    db = parsed.database or ""
    if db in ("", ":memory:") or db.startswith("file:") or parsed.query.get("mode") == "memory":
        return None
    return Path(db)


def in_memory(url: str) -> bool:
    """True for an in-memory SQLite database: it lives in this process only."""
    return make_url(url).get_backend_name() == "sqlite" and _sqlite_file(url) is None


def make_engine(url: str, **kwargs: Any) -> Engine:
    """`create_engine(url)` with the store's defaults.

    SQLite file: the parent directory is created, journal mode is WAL with
    `synchronous=NORMAL` and a 5 s busy timeout, so readers (reports) never block
    the writer. SQLite in memory: one shared connection, usable from any thread.
    """
    from ctid.store.models import lenient_json_dumps

    kwargs.setdefault("json_serializer", lenient_json_dumps)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    path = _sqlite_file(url)
    if path is None:
        kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
        return create_engine(url, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=5000")
        finally:
            cur.close()

    return engine

"""Writing one batch of events: map, fold acw, commit, retry. Shared by both writers.

`BatchWriter.write(batch)` is what the writer thread (`writer.StoreWriter`) and the writer
process (`child.py`, behind `process.StoreProcess`) do with each batch. Failures never
end the writer and never lose rows silently:
- a batch that fails with a data error is retried row by row, each row in its own
  transaction; a row that fails again is logged with its event's context, counted
  (`errors`, `dropped`) and skipped, and the rest of the batch is written;
- a connection error (`OperationalError`: database down, locked) retries the same
  batch with backoff (0.1 s doubling to 30 s) until it goes through, or, once the
  writer is stopping, until its give-up time (`GiveUp`);
- a `call.cleared` for a call that already has a cdr (cleared again after a
  resync, a replay, or a batch written again after a writer process died) replaces
  that cdr; an `acw` already stored is kept.

After-call work that arrives before its cdr waits in memory: see `acw.py`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Callable, Mapping, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError

from ctid.store.acw import AcwWaiting
from ctid.store.dml import Statements, commit, commit_one
from ctid.store.engine import make_engine
from ctid.store.mapping import Op, Rows
from ctid.store.models import metadata

log = logging.getLogger("ctid.store")

T = TypeVar("T")
MAX_BACKOFF = 30.0


class GiveUp(Exception):
    """Stopping, and the database stayed unreachable past the give-up time."""


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, (OperationalError, DisconnectionError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _short(exc: BaseException) -> str:
    """`Type: message` of the driver's error, without SQLAlchemy's SQL dump."""
    inner = getattr(exc, "orig", None) or exc
    return f"{type(inner).__name__}: {inner}"


def check_batching(batch_size: int, flush_interval: float) -> None:
    """The batching options both writers take: a batch of at least one, a positive interval."""
    if batch_size < 1 or flush_interval <= 0:
        raise ValueError("batch_size must be >= 1 and flush_interval > 0")


class BatchWriter:
    """Writes batches of normalized events to the store, on the caller's thread."""

    def __init__(self, url: str, *, acw_ttl: float = 3600.0, acw_max: int = 10_000) -> None:
        self.url = url
        #: Rows committed (inserts, plus acw updates that found their cdr).
        self.written = 0
        #: Batches committed (whole, or row by row after a failure).
        self.batches = 0
        #: Errors logged: failed batches, dropped rows, connection retries, bad events.
        self.errors = 0
        #: Rows or events given up on (each one logged).
        self.dropped = 0
        self._stop = threading.Event()  # set: stopping; retries end at _give_up_at
        self._give_up_at = math.inf
        self._engine: Engine | None = None
        self._sql: Statements | None = None
        self._acw = AcwWaiting(acw_ttl, acw_max)

    @property
    def engine(self) -> Engine:
        """The engine (after open()); readers may share it."""
        if self._engine is None:
            raise RuntimeError("store writer not started")
        return self._engine

    def open(self) -> None:
        """Connect and create missing tables. Raises on a bad URL or database."""
        self._engine = make_engine(self.url)
        metadata.create_all(self._engine)
        self._sql = Statements(self._engine.dialect)

    def dispose(self) -> None:
        if self._acw:
            log.info("acw values never found their cdr", extra={"ctx": {"count": len(self._acw)}})
        if self._engine is not None:
            self._engine.dispose()

    def counts(self) -> dict[str, int]:
        return {"written": self.written, "batches": self.batches, "errors": self.errors, "dropped": self.dropped,
                "acw_waiting": len(self._acw)}

    def write(self, batch: list[Mapping[str, Any]]) -> None:
        """Write one batch (see the module doc for failures); raises GiveUp only when stopping."""
        rows = Rows()
        for event in batch:
            try:
                problem = rows.add(event)
            except Exception as exc:
                self.errors += 1
                self.dropped += 1
                ctx = {"reason": str(exc), "event": repr(event)[:300]}
                log.error("event dropped: it cannot be stored", extra={"ctx": ctx})
                continue
            if problem:
                self.errors += 1
                self.dropped += 1
                ctx = {"reason": problem, "site": event.get("site"), "seq": event.get("seq")}
                log.error("cdr not written", extra={"ctx": ctx})
        self._acw.fold(rows)
        if not rows:
            return
        try:
            unmatched = self._retry(lambda: self._commit(rows))
        except GiveUp:
            raise
        except Exception as exc:
            self.errors += 1
            ctx = {"rows": len(rows), "error": _short(exc)}
            log.warning("batch failed; retrying row by row", extra={"ctx": ctx})
            unmatched = []
            for op in rows.ops():
                try:
                    unmatched += self._retry(lambda op=op: self._commit(op, one=True))  # type: ignore[misc]
                except GiveUp:
                    raise
                except Exception as row_exc:
                    self.errors += 1
                    self.dropped += 1
                    ctx = {**op.context(), "error": _short(row_exc)}
                    log.error("row dropped", extra={"ctx": ctx})
        self.batches += 1
        self._acw.keep(unmatched)

    def _retry(self, fn: Callable[[], T]) -> T:
        """Run fn, retrying connection errors with backoff; other errors propagate."""
        delay = 0.1
        while True:
            try:
                return fn()
            except Exception as exc:
                if not _transient(exc):
                    raise
                self.errors += 1
                now = time.monotonic()
                if self._stop.is_set() and now >= self._give_up_at:
                    raise GiveUp from exc
                ctx = {"error": _short(exc), "retry_in": delay}
                log.warning("database unavailable; retrying", extra={"ctx": ctx})
                if self._stop.is_set():  # closing: retry until close()'s timeout
                    time.sleep(min(delay, max(self._give_up_at - now, 0.01)))
                else:
                    self._stop.wait(delay)  # close() cuts a long backoff short
                delay = min(delay * 2, MAX_BACKOFF)

    def _commit(self, rows: Rows | Op, one: bool = False) -> list[tuple[Any, str, str]]:
        """Write a batch (or, with `one`, one Op): the acw updates that found no cdr."""
        sql = self._sql
        assert sql is not None
        written, unmatched = commit_one(self.engine, sql, rows) if one else commit(self.engine, sql, rows)  # type: ignore[arg-type]
        self.written += written
        return unmatched

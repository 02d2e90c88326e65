"""The batched store writer: `submit()` on the hot path, inserts on a background thread.

`submit` only appends to a deque. A thread wakes every `flush_interval` seconds, or
as soon as `batch_size` events wait, maps the events to row tuples (`mapping.Rows`)
and writes each batch in one transaction with one executemany per table.

Failures never kill the thread and never lose rows silently:
- a batch that fails with a data error is retried row by row, each row in its own
  transaction; a row that fails again is logged with its event's context, counted
  (`errors`, `dropped`) and skipped, and the rest of the batch is written;
- a connection error (`OperationalError`: database down, locked) retries the same
  batch with backoff (0.1 s doubling to 30 s) for as long as the writer runs;
  `close()` gives up after its timeout and counts what it could not write.
- a `call.cleared` for a call that already has a cdr (cleared again after a
  resync, or a replay) replaces that cdr; an `acw` already stored is kept.

After-call work that arrives before its cdr waits in memory: see `acw.py`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
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
_MAX_BACKOFF = 30.0


class _Flush(threading.Event):
    """A marker in the queue: set once everything submitted before it is committed."""

    ok = False


class _GiveUp(Exception):
    """Closing, and the database stayed unreachable past close()'s timeout."""


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, (OperationalError, DisconnectionError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _short(exc: BaseException) -> str:
    """`Type: message` of the driver's error, without SQLAlchemy's SQL dump."""
    inner = getattr(exc, "orig", None) or exc
    return f"{type(inner).__name__}: {inner}"


class StoreWriter:
    """Writes normalized events to the store in batches, off the caller's thread."""

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        max_pending: int | None = None,
        acw_ttl: float = 3600.0,
        acw_max: int = 10_000,
    ) -> None:
        if batch_size < 1 or flush_interval <= 0:
            raise ValueError("batch_size must be >= 1 and flush_interval > 0")
        self.url = url
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        #: Rows committed (inserts, plus acw updates that found their cdr).
        self.written = 0
        #: Batches committed (whole, or row by row after a failure).
        self.batches = 0
        #: Errors logged: failed batches, dropped rows, connection retries, bad events.
        self.errors = 0
        #: Rows or events given up on (each one logged).
        self.dropped = 0
        #: Events refused by submit(): writer closed, or max_pending reached.
        self.rejected = 0
        self._queue: deque[Any] = deque()
        self._inflight = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self._give_up_at = math.inf
        self._thread: threading.Thread | None = None
        self._engine: Engine | None = None
        self._sql: Statements | None = None
        self._acw = AcwWaiting(acw_ttl, acw_max)

    # -- caller side -------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The engine (after start()); readers may share it."""
        if self._engine is None:
            raise RuntimeError("StoreWriter not started")
        return self._engine

    @property
    def pending(self) -> int:
        """Events submitted and not yet committed (or given up on)."""
        return len(self._queue) + self._inflight

    def start(self) -> None:
        """Connect, create missing tables, start the writer thread. Raises on a bad URL or DB."""
        if self._thread is not None:
            raise RuntimeError("StoreWriter already started")
        self._engine = make_engine(self.url)
        metadata.create_all(self._engine)
        self._sql = Statements(self._engine.dialect)
        self._thread = threading.Thread(target=self._run, name="ctid-store", daemon=True)
        self._thread.start()

    def submit(self, event: Mapping[str, Any]) -> None:
        """Queue one event for writing: O(1), never blocks, never touches the database.

        The event is read later, on the writer thread: do not mutate it after submitting.
        """
        queue = self._queue
        if self._closed or (self.max_pending is not None and len(queue) >= self.max_pending):
            self.rejected += 1
            return
        queue.append(event)
        if len(queue) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything submitted so far is committed; False on timeout or give-up."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return self.pending == 0
        marker = _Flush()
        self._queue.append(marker)
        self._wake.set()
        return marker.wait(timeout) and marker.ok

    def close(self, timeout: float | None = 10.0) -> None:
        """Refuse new events, write what is queued, stop the thread, dispose the engine.

        With the database unreachable, gives up after `timeout` seconds and logs how
        many events were lost.
        """
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is not None:
            if timeout is not None:
                self._give_up_at = time.monotonic() + timeout
            self._stop.set()
            self._wake.set()
            thread.join(None if timeout is None else timeout + _MAX_BACKOFF)
            if thread.is_alive():
                log.error("writer thread did not stop", extra={"ctx": {"pending": self.pending}})
        lost = [item for item in self._queue if not isinstance(item, _Flush)]
        if lost:
            self.dropped += len(lost)
            log.error("closed with events not written", extra={"ctx": {"events": len(lost)}})
        for item in self._queue:
            if isinstance(item, _Flush):
                item.set()
        self._queue.clear()
        if self._acw:
            log.info("acw values never found their cdr", extra={"ctx": {"count": len(self._acw)}})
        if self._engine is not None:
            self._engine.dispose()

    def stats(self) -> dict[str, int]:
        """Counters, for status pages and tests."""
        return {
            "written": self.written,
            "batches": self.batches,
            "errors": self.errors,
            "dropped": self.dropped,
            "rejected": self.rejected,
            "pending": self.pending,
            "acw_waiting": len(self._acw),
        }

    def __enter__(self) -> StoreWriter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writer thread -----------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self._drain()
            except _GiveUp:
                break
            except Exception:  # a bug here must not end the thread
                self.errors += 1
                log.exception("unexpected error in the writer thread")
            if self._stop.is_set() and not self._queue:
                break

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            batch: list[Mapping[str, Any]] = []
            marker: _Flush | None = None
            while queue and len(batch) < self.batch_size:
                item = queue.popleft()
                if isinstance(item, _Flush):
                    marker = item
                    break
                batch.append(item)
                self._inflight += 1
            try:
                if batch:
                    self._write(batch)
                if marker is not None:
                    marker.ok = True
            except _GiveUp:
                self.dropped += len(batch)
                log.error("database unreachable at close: events lost", extra={"ctx": {"events": len(batch)}})
                raise
            finally:
                self._inflight = 0
                if marker is not None:
                    marker.set()

    def _write(self, batch: list[Mapping[str, Any]]) -> None:
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
        except _GiveUp:
            raise
        except Exception as exc:
            self.errors += 1
            ctx = {"rows": len(rows), "error": _short(exc)}
            log.warning("batch failed; retrying row by row", extra={"ctx": ctx})
            unmatched = []
            for op in rows.ops():
                try:
                    unmatched += self._retry(lambda op=op: self._commit(op, one=True))  # type: ignore[misc]
                except _GiveUp:
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
                    raise _GiveUp from exc
                ctx = {"error": _short(exc), "retry_in": delay}
                log.warning("database unavailable; retrying", extra={"ctx": ctx})
                if self._stop.is_set():  # closing: retry until close()'s timeout
                    time.sleep(min(delay, max(self._give_up_at - now, 0.01)))
                else:
                    self._stop.wait(delay)  # close() cuts a long backoff short
                delay = min(delay * 2, _MAX_BACKOFF)

    def _commit(self, rows: Rows | Op, one: bool = False) -> list[tuple[Any, str, str]]:
        """Write a batch (or, with `one`, one Op): the acw updates that found no cdr."""
        sql = self._sql
        assert sql is not None
        written, unmatched = commit_one(self.engine, sql, rows) if one else commit(self.engine, sql, rows)  # type: ignore[arg-type]
        self.written += written
        return unmatched

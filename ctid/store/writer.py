"""The store writer on a thread: `submit()` on the hot path, batches written by a background thread.

`submit` only appends to a deque. A thread wakes every `flush_interval` seconds, or as
soon as `batch_size` events wait, and writes each batch with `batch.BatchWriter` (one
transaction, one executemany per table; failures, retries and acw: see `batch.py`).
`close()` gives up on an unreachable database after its timeout and counts what it
could not write.

The daemon uses this writer only where a second process cannot reach the database (an
in-memory SQLite): everywhere else it is `process.StoreProcess`, the same API with the
writing in its own process, off the daemon's GIL. `ctid.store.open_writer` chooses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Mapping

from ctid.store.batch import MAX_BACKOFF, BatchWriter, GiveUp, check_batching

log = logging.getLogger("ctid.store")


class _Flush(threading.Event):
    """A marker in the queue: set once everything submitted before it is committed."""

    ok = False


class StoreWriter(BatchWriter):
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
        check_batching(batch_size, flush_interval)
        super().__init__(url, acw_ttl=acw_ttl, acw_max=acw_max)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        #: Events refused by submit(): writer closed, or max_pending reached.
        self.rejected = 0
        #: Always 0: the thread is not restarted (see StoreProcess.restarts).
        self.restarts = 0
        #: Always 0: the thread shares the daemon's CPU class (see StoreProcess.escalations).
        self.escalations = 0
        self._queue: deque[Any] = deque()
        self._inflight = 0
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    # -- caller side -------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Events submitted and not yet committed (or given up on)."""
        return len(self._queue) + self._inflight

    def start(self) -> None:
        """Connect, create missing tables, start the writer thread. Raises on a bad URL or DB."""
        if self._thread is not None:
            raise RuntimeError("StoreWriter already started")
        self.open()
        self._thread = threading.Thread(target=self._run, name="ctid-store", daemon=True)
        self._thread.start()

    def submit(self, event: Mapping[str, Any], packed: bytes | None = None) -> None:
        """Queue one event for writing: O(1), never blocks, never touches the database.

        The event is read later, on the writer thread: do not mutate it after submitting.
        `packed` (its msgpack body) is for `StoreProcess`; this writer has no use for it.
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
            thread.join(None if timeout is None else timeout + MAX_BACKOFF)
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
        self.dispose()

    def stats(self) -> dict[str, int]:
        """Counters, for status pages and tests."""
        return {**self.counts(), "rejected": self.rejected, "pending": self.pending, "restarts": 0,
                "escalations": 0}

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
            except GiveUp:
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
                    self.write(batch)
                if marker is not None:
                    marker.ok = True
            except GiveUp:
                self.dropped += len(batch)
                log.error("database unreachable at close: events lost", extra={"ctx": {"events": len(batch)}})
                raise
            finally:
                self._inflight = 0
                if marker is not None:
                    marker.set()

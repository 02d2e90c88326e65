"""Idempotency: the outcome of each client request id, kept for a window.

A retried request (same `request_id` within the window) gets the first attempt's reply —
while the first is still running it waits for it — so a double-clicked or retried
click-to-dial never dials twice. Entries expire oldest first; the number kept is capped
so a client spraying fresh ids cannot grow the daemon's memory without bound.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable


class RecentRequests:
    def __init__(self, window: float = 60.0, limit: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.limit = limit
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], tuple[float, str, asyncio.Future[Any]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self) -> None:
        horizon = self._clock() - self.window
        entries = self._entries
        while entries and (len(entries) > self.limit or next(iter(entries.values()))[0] < horizon):
            entries.popitem(last=False)

    def seen(self, scope: str, request_id: str) -> tuple[str, asyncio.Future[Any]] | None:
        """The op and the outcome future of an earlier request with this id, if within the window."""
        self._expire()
        entry = self._entries.get((scope, request_id))
        return None if entry is None else (entry[1], entry[2])

    def run(self, scope: str, request_id: str, op: str, work: Callable[[], Awaitable[Any]]) -> asyncio.Future[Any]:
        """Start `work` and remember its outcome (result or exception) under (scope, request_id)."""
        future = asyncio.ensure_future(work())
        # A failure is re-raised to every waiter; mark it retrieved so asyncio does not warn.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._entries[(scope, request_id)] = (self._clock(), op, future)
        self._expire()
        return future

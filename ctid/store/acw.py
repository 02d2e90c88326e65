"""After-call work waiting for its cdr.

`agent.acw` usually comes after `call.cleared`, and then updates the stored cdr.
When it comes first (or in the same batch), the value waits here, keyed by
(site, call_id), and goes into the cdr row when that is written. The last acw of
a call wins. Waiting values expire after `ttl` seconds, beyond `limit` the oldest
go first, and they are not kept across restarts: every acw is also journaled in
`agent_state` (state `acw`, `duration`), which reports can fall back on.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ctid.store.mapping import Rows

log = logging.getLogger("ctid.store")


class AcwWaiting:
    """acw values whose cdr is not written yet (used by the writer thread only)."""

    def __init__(self, ttl: float = 3600.0, limit: int = 10_000) -> None:
        self.ttl = ttl
        self.limit = limit
        self._waiting: dict[tuple[str, str], tuple[float, float]] = {}  # key -> (acw, since)

    def __len__(self) -> int:
        return len(self._waiting)

    def fold(self, rows: Rows) -> None:
        """Put waiting and same-batch acw values into the batch's cdr rows; the acw updates
        that went into one leave `rows.acw`."""
        if not rows.cdr:
            return
        cdrs = rows.cdr_keys()
        for key, cdr in cdrs.items():
            waiting = self._waiting.pop(key, None)
            if waiting is not None:
                rows.set_acw(cdr, waiting[0])
        kept: list[tuple[Any, str, str]] = []
        kept_from: list[Any] = []
        for update, event in zip(rows.acw, rows.acw_from):
            cdr = cdrs.get((update[1], update[2]))
            if cdr is not None:
                rows.set_acw(cdr, update[0])
            else:
                kept.append(update)
                kept_from.append(event)
        rows.acw, rows.acw_from = kept, kept_from

    def keep(self, unmatched: list[tuple[Any, str, str]]) -> None:
        """Remember acw updates (acw, site, call_id) that found no cdr; drop expired and excess ones."""
        waiting = self._waiting
        now = time.monotonic()
        for value, site, call_id in unmatched:
            key = (site, call_id)
            waiting.pop(key, None)
            waiting[key] = (value, now)
        while waiting:
            key, (_, since) = next(iter(waiting.items()))
            if len(waiting) <= self.limit and now - since < self.ttl:
                break
            del waiting[key]
            ctx = {"site": key[0], "call_id": key[1]}
            log.debug("acw dropped: its cdr was not written in time", extra={"ctx": ctx})

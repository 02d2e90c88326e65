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

from ctid.store.mapping import Op

log = logging.getLogger("ctid.store")


class AcwWaiting:
    """acw values whose cdr is not written yet (used by the writer thread only)."""

    def __init__(self, ttl: float = 3600.0, limit: int = 10_000) -> None:
        self.ttl = ttl
        self.limit = limit
        self._waiting: dict[tuple[str, str], tuple[float, float]] = {}  # key -> (acw, since)

    def __len__(self) -> int:
        return len(self._waiting)

    def fold(self, ops: list[Op]) -> list[Op]:
        """Put waiting and same-batch acw values into the batch's cdr rows; the other ops."""
        cdrs = {op.key: op for op in ops if op.kind == "cdr"}
        if not cdrs:
            return ops
        for key, op in cdrs.items():
            waiting = self._waiting.pop(key, None)
            if waiting is not None:
                op.row["acw"] = waiting[0]
        kept = []
        for op in ops:
            if op.kind == "acw" and op.key in cdrs:
                cdrs[op.key].row["acw"] = op.row["acw"]
            else:
                kept.append(op)
        return kept

    def keep(self, unmatched: list[Op]) -> None:
        """Remember acw updates that found no cdr; drop expired and excess ones."""
        waiting = self._waiting
        now = time.monotonic()
        for op in unmatched:
            waiting.pop(op.key, None)
            waiting[op.key] = (op.row["acw"], now)
        while waiting:
            key, (_, since) = next(iter(waiting.items()))
            if len(waiting) <= self.limit and now - since < self.ttl:
                break
            del waiting[key]
            ctx = {"site": key[0], "call_id": key[1]}
            log.debug("acw dropped: its cdr was not written in time", extra={"ctx": ctx})

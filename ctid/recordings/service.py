"""`RecordingService`: the database and the index kept together, and the Python API.

The daemon's recordings plugin owns one: it is rebuilt from the database at start
(`start()`, timed and logged), then fed every recording and call-end event (`observe`).
`ctid recordings ...` builds one over the configured database the same way. Every query takes
a `Principal` (ctid.recordings.access).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace
from typing import Any, Mapping, Sequence

from ctid.metrics import Counters
from ctid.recordings.access import ADMIN, Principal
from ctid.recordings.feed import FeedError, RecordingFeed
from ctid.recordings.index import CompiledSegment, RecordingIndex
from ctid.recordings.model import Recording
from ctid.recordings.query import Query, QueryError, decode_cursor, parse_query
from ctid.recordings.store import RecordingStore
from ctid.teams import NO_TEAMS, Teams

log = logging.getLogger("ctid.recordings")


class RecordingService:
    """See the module docstring. `segment` picks the index implementation (tests use both)."""

    def __init__(self, database_url: str, counters: Counters | None = None, site: str | None = None,
                 segment: Any = CompiledSegment, teams: Teams = NO_TEAMS) -> None:
        self.store = RecordingStore(database_url)
        self.index = RecordingIndex(segment)
        self.feed = RecordingFeed(site, teams)  # `teams`: the site's [[team]] tables, for each recording's team
        self.counters = counters or Counters()
        self.rebuild_seconds = 0.0
        # In the daemon events (the plugin's worker) and requests (the bus's op threads) use the index
        # at once: a search holds buffers of the arrays an add would resize (BufferError, and the
        # recording stored but not indexed). Uncontended, the lock costs well under a search's microseconds.
        self._lock = threading.Lock()

    def start(self) -> RecordingService:
        """Rebuild the index from the database."""
        t0 = time.perf_counter()
        n = self.store.load_into(self.index)
        self.rebuild_seconds = time.perf_counter() - t0
        log.info("recording index rebuilt", extra={"ctx": {"recordings": n, "seconds": round(self.rebuild_seconds, 3)}})
        return self

    def close(self) -> None:
        self.store.close()

    # -- in ------------------------------------------------------------------------------

    def observe(self, event: dict[str, Any]) -> list[Recording]:
        """One daemon event: the recordings it completed are stored and indexed (and returned)."""
        try:
            recs = self.feed.observe(event)
        except FeedError as exc:
            self.counters.inc("recordings.errors")
            log.error("recording event refused: %s", exc, extra={"ctx": exc.context})
            return []
        return self.add(recs)

    def add(self, recs: Sequence[Recording]) -> list[Recording]:
        """Store and index recordings; those already stored (same `recording_id`) are skipped."""
        new = self.store.save(list(recs))
        with self._lock:
            for rec in new:
                self.index.add(rec)
        self.counters.inc("recordings.indexed", len(new))
        return new

    # -- out -----------------------------------------------------------------------------

    def search(self, principal: Principal, query: Query) -> tuple[list[Recording], str | None]:
        """The page of recordings (whole) that `principal` may see, and the next page's cursor."""
        with self._lock:
            page = self.index.search(principal, query)
        return self.store.fetch(page.ids), page.next_cursor

    def search_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The `recordings.search` op: `principal` (a role string) and the query fields.
        Raises QueryError for anything it does not understand."""
        spec = {k: v for k, v in request.items() if k not in ("op", "id", "principal")}
        if "principal" not in request:
            raise QueryError("principal", "every query runs as a principal, e.g. 'agent:1001' or 'admin'")
        principal = Principal.parse(request["principal"])
        recs, cursor = self.search(principal, parse_query(spec))
        return {"rows": [r.as_json() for r in recs], "next_cursor": cursor}

    def everything(self, principal: Principal, query: Query) -> list[Recording]:
        """Every recording matching `query` (all pages), for export and retention."""
        out: list[Recording] = []
        while True:
            recs, cursor = self.search(principal, query)
            out.extend(recs)
            if cursor is None:
                return out
            query = _after(query, cursor)

    # -- retention -----------------------------------------------------------------------

    def expired(self, principal: Principal, max_age: float, now: float | None = None) -> list[Recording]:
        """Recordings that started more than `max_age` seconds before `now`, oldest first."""
        cutoff = (time.time() if now is None else now) - max_age
        return self.everything(principal, Query(until=cutoff, order="oldest", limit=1000))

    def retention_request(self, request: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
        """The `recordings.retention` op (the caller checks the sender may: admin only): one page
        (`limit`, default 500, so a request stays short) of the recordings that started more than
        `days` ago, oldest first, after `cursor`; deleted (files, rows, index) with `apply`.
        Returns {"recordings": [{recording_id, start, path}], "deleted", "problems", "next_cursor"}.
        Raises QueryError naming a bad field."""
        unknown = sorted(set(request) - {"op", "id", "principal", "days", "apply", "limit", "cursor"})
        if unknown:
            raise QueryError(unknown[0], "unknown field (known: days, apply, limit, cursor)")
        days = request.get("days")
        if isinstance(days, bool) or not isinstance(days, (int, float)) or not days > 0:
            raise QueryError("days", f"expected a number of days > 0, got {days!r}")
        apply = request.get("apply", False)
        if not isinstance(apply, bool):
            raise QueryError("apply", f"expected true or false, got {apply!r}")
        spec = {"until": (time.time() if now is None else now) - days * 86400.0, "order": "oldest",
                "limit": request.get("limit", 500), "cursor": request.get("cursor")}
        recs, cursor = self.search(ADMIN, parse_query(spec))
        deleted, problems = self.delete(recs) if apply else (0, [])
        return {"recordings": [{"recording_id": r.recording_id, "start": r.start, "path": r.path} for r in recs],
                "deleted": deleted, "problems": problems, "next_cursor": cursor}

    def delete(self, recs: Sequence[Recording]) -> tuple[int, list[str]]:
        """Delete the recordings' files, rows and index entries. A file that is already gone is
        reported (and counted) but its row still goes: the recording is gone either way.
        Returns (rows deleted, problems)."""
        problems: list[str] = []
        gone: list[int] = []
        for rec in recs:
            if rec.path:
                try:
                    os.remove(rec.path)
                except FileNotFoundError:
                    problems.append(f"{rec.recording_id}: file {rec.path} was already gone")
                except OSError as exc:
                    problems.append(f"{rec.recording_id}: file {rec.path} not deleted ({exc.strerror}); row kept")
                    continue
            if rec.id is not None:
                with self._lock:
                    self.index.delete(rec.start, rec.id)
                gone.append(rec.id)
        n = self.store.delete(gone)
        for p in problems:
            self.counters.inc("recordings.errors")
            log.error("retention: %s", p)
        return n, problems


def _after(query: Query, cursor: str) -> Query:
    return replace(query, cursor=decode_cursor(cursor), offset=0)

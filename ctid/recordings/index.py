"""`RecordingIndex`: the in-memory recording index, every query run as a principal.

The index is a few immutable segments (compiled `ctid._fast.recindex.Segment`, or the pure
`PySegment`) plus a small tail of recordings added live. The tail is sealed into a segment
every `TAIL` recordings and segments of similar size are merged (as a log-structured merge
tree does), so adding stays cheap and a query looks at a handful of segments. Names
(agent, queue, team, tag, disposition) are coded here, once for all segments; the numbers
of a recording are all a segment keeps, and the strings of a result page are read from the
database by id (`RecordingStore.fetch`).

`search`, `count` and `count_by_queue` take the principal first and apply
`access.allowed` before anything else: there is no unrestricted query path. (The one-agent
fast path of `search` spells the same rule out for one agent, to stay one compiled call;
tests/test_recordings_access.py and the hypothesis tests hold both paths to it.)
"""

from __future__ import annotations

import heapq
import math
from typing import Any, Callable, Iterable, Sequence

from ctid.recordings.access import Principal, allowed
from ctid.recordings.columns import NO_CODE, VOICEMAIL, Columns, Plan
from ctid.recordings.model import DIRECTIONS, DISPOSITIONS, Recording, number_key
from ctid.recordings.pyindex import PySegment
from ctid.recordings.query import Query, encode_cursor

try:
    from ctid._fast.recindex import Segment as CompiledSegment

    COMPILED = True
except ImportError:  # pragma: no cover - depends on the build
    CompiledSegment = PySegment  # type: ignore[misc,assignment]
    COMPILED = False

# a search giving no Query fields but these (one agent after access control) takes the fast path
_FAST_FIELDS = frozenset(("since", "until", "agents", "min_duration", "max_duration", "order", "limit"))
TAIL = 4096  # live recordings kept unsealed; a query builds the tail's segment once per change


class Page:
    """One page of a search: database ids in order, the start of each, and the cursor of the
    next page (None when this page was the last). Read-only by convention: a page is made per
    search, so it is a plain slotted object (`keys` is made only when asked for)."""

    __slots__ = ("ids", "starts", "next_cursor")

    def __init__(self, ids: list[int], starts: Sequence[float], next_cursor: str | None) -> None:
        self.ids = ids
        self.starts = starts
        self.next_cursor = next_cursor

    @property
    def keys(self) -> list[tuple[float, int]]:
        """The (start, id) key of each row, in order."""
        return list(zip(self.starts, self.ids))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Page):
            return NotImplemented
        return self.ids == other.ids and self.keys == other.keys and self.next_cursor == other.next_cursor

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Page(ids={self.ids!r}, starts={list(self.starts)!r}, next_cursor={self.next_cursor!r})"


class Codes:
    """Names <-> small ints, for one kind of name (agent, queue ...)."""

    def __init__(self, fixed: Iterable[str] = ()) -> None:
        self.names: list[str] = []
        self.codes: dict[str, int] = {}
        for name in fixed:
            self.code(name)

    def code(self, name: str | None) -> int:
        """The code of `name`, given one if new; NO_CODE for None."""
        if name is None:
            return NO_CODE
        code = self.codes.get(name)
        if code is None:
            code = self.codes[name] = len(self.names)
            self.names.append(name)
        return code

    def known(self, names: tuple[str, ...]) -> tuple[int, ...]:
        """Codes of the names already known (unknown ones match nothing)."""
        if len(names) == 1:  # the usual filter: one agent, one queue
            code = self.codes.get(names[0])
            return () if code is None else (code,)
        return tuple(self.codes[n] for n in names if n in self.codes)

    def name(self, code: int) -> str | None:
        return self.names[code] if code >= 0 else None


class RecordingIndex:
    """See the module docstring. `segment` picks the implementation (tests compare both);
    `tail` is how many live recordings are kept before they are sealed into a segment."""

    def __init__(self, segment: Callable[[Columns], Any] = CompiledSegment, tail: int = TAIL) -> None:
        self._segment = segment
        # the common search (one agent, a time range, a duration range) goes straight to the
        # compiled segments' `search_agent`, without a Plan
        self._fast = COMPILED and segment is CompiledSegment
        self._tail_max = tail
        self.agents, self.queues, self.teams, self.tags = Codes(), Codes(), Codes(), Codes()
        self._agent_codes = self.agents.codes
        self.directions = Codes(DIRECTIONS)
        self.dispositions = Codes(DISPOSITIONS)
        self._sets = (("agents", self.agents), ("queues", self.queues), ("teams", self.teams),
                      ("directions", self.directions), ("dispositions", self.dispositions))
        self.segments: list[Any] = []
        self._tail = Columns()
        self._tail_segment: Any = None
        # the one compiled segment when there is nothing else (no tail): the fast path's case
        self._one: Any = None

    # -- building ---------------------------------------------------------------------------

    def columns_of(self, rec: Recording, into: Columns) -> None:
        """Append one stored recording (it has an `id`) to `into`. Raises ValueError."""
        if rec.id is None:
            raise ValueError(f"recording {rec.recording_id!r} has no database id: store it first")
        self.append_row(into, rec.start, rec.id, rec.duration, rec.qa_score, rec.agent, rec.queue, rec.team,
                        rec.direction, rec.disposition, rec.voicemail, rec.caller, rec.called, rec.tags)

    def append_row(self, into: Columns, start: float, rowid: int, duration: float, qa: float | None,
                   agent: str | None, queue: str | None, team: str | None, direction: str | None,
                   disposition: str | None, voicemail: bool, caller: str | None, called: str | None,
                   tags: Iterable[str] = ()) -> None:
        """`columns_of` without a `Recording` (the rebuild reads rows straight into columns)."""
        if not (math.isfinite(start) and math.isfinite(duration)):
            raise ValueError(f"recording id {rowid}: start and duration must be finite numbers")
        into.append(start, rowid, duration, qa, self.agents.code(agent), self.queues.code(queue),
                    self.teams.code(team), self.directions.codes.get(direction, NO_CODE) if direction else NO_CODE,
                    self.dispositions.code(disposition), VOICEMAIL if voicemail else 0,
                    number_key(caller), number_key(called),
                    tuple(sorted({self.tags.code(t) for t in tags})) if tags else ())

    def add(self, rec: Recording) -> None:
        """Index one stored recording (live: from the daemon's events, or a scan)."""
        # first let go of the tail's segment (made by the last search): a compiled one holds
        # buffers of the tail's arrays, which cannot grow while it lives (BufferError)
        self._tail_segment = None
        self.columns_of(rec, self._tail)
        if len(self._tail) >= self._tail_max:
            self._seal()
        self._changed()

    def add_columns(self, cols: Columns) -> None:
        """Index a bulk of recordings as one segment (the rebuild from the database)."""
        if len(cols):
            self.segments.append(self._segment(cols))
            self._compact()
        self._changed()

    def _seal(self) -> None:
        tail, self._tail, self._tail_segment = self._tail, Columns(), None
        if len(tail):
            self.segments.append(self._segment(tail))
            self._compact()

    def _compact(self) -> None:
        # Merge while the newer segment is at least a quarter of the one before it: segment
        # sizes then grow geometrically and there are O(log n) of them.
        while len(self.segments) >= 2 and len(self.segments[-1]) * 4 >= len(self.segments[-2]):
            newer, older = self.segments.pop(), self.segments.pop()
            cols = older.columns()
            cols.extend(newer.columns())
            self.segments.append(self._segment(cols))

    def _changed(self) -> None:
        self._one = self.segments[0] if self._fast and len(self.segments) == 1 and not len(self._tail) else None

    def _all(self) -> list[Any]:
        if len(self._tail) and self._tail_segment is None:
            self._tail_segment = self._segment(self._tail)
        return self.segments + ([self._tail_segment] if self._tail_segment is not None else [])

    def delete(self, start: float, rowid: int) -> bool:
        """Drop a recording from the index (retention); False if it was not indexed."""
        for seg in self._all():
            if seg.delete(start, rowid):
                if seg is self._tail_segment:  # the tail is rebuilt from its columns: drop it there too
                    self._tail = seg.columns()
                    self._tail_segment = None
                    self._changed()
                return True
        return False

    def __len__(self) -> int:
        return sum(seg.live() for seg in self._all())

    @property
    def nbytes(self) -> int:
        """Bytes of the segments' arrays (the name dictionaries are not counted: they are per name)."""
        return sum(seg.nbytes for seg in self._all())

    # -- queries ----------------------------------------------------------------------------

    def plan(self, principal: Principal, query: Query) -> Plan | None:
        """The query as codes, restricted to what `principal` may see; None: nothing can match."""
        scope = allowed(principal, query)
        if scope is None:
            return None
        q = query
        p = Plan()
        if q.order != "newest":
            p.newest = False
        for field, codes in self._sets:
            names = scope[1] if field == scope[0] else getattr(q, field)
            if names:
                known = codes.known(names)
                if not known:
                    return None
                setattr(p, field, known)
        if q.tag is not None:
            if q.tag not in self.tags.codes:
                return None
            p.tag = self.tags.codes[q.tag]
        if q.since is not None:
            p.lo = q.since
        if q.until is not None:
            p.hi = q.until
        if q.min_duration is not None:
            p.min_dur = q.min_duration
        if q.max_duration is not None:
            p.max_dur = q.max_duration
        if q.min_qa is not None or q.max_qa is not None:
            p.qa_filter = True
            p.min_qa = -math.inf if q.min_qa is None else q.min_qa
            p.max_qa = math.inf if q.max_qa is None else q.max_qa
        if q.voicemail is not None:
            p.voicemail = int(q.voicemail)
        if q.caller is not None:
            p.caller_mode, p.caller_value, p.caller_len = q.caller.mode, q.caller.value, len(q.caller.digits)
        if q.called is not None:
            p.called_mode, p.called_value, p.called_len = q.called.mode, q.called.value, len(q.called.digits)
        if q.suffix is not None:
            p.sfx_value, p.sfx_len = int(q.suffix), len(q.suffix)
        if q.cursor is not None:
            p.has_cursor, p.cur_start, p.cur_rowid = True, q.cursor[0], q.cursor[1]
        return p

    def search(self, principal: Principal, query: Query) -> Page:
        """The page of recordings matching `query` that `principal` may see."""
        q = query
        # Query keeps only the fields it was given: none but these -> the compiled fast path, with
        # `access.allowed` for one agent spelled out (an agent principal is exactly one agent)
        if self._fast and q.__dict__.keys() <= _FAST_FIELDS:
            kind = principal.kind
            if kind == "agent":
                names = principal.ids
                if q.agents and names[0] not in q.agents:
                    return Page([], (), None)
            elif kind == "admin" or kind == "auditor":
                names = q.agents
            else:
                names = ()
            if len(names) == 1:
                code = self._agent_codes.get(names[0])
                if code is None:
                    return Page([], (), None)
                one = self._one
                if one is None:
                    return self._search_agent(code, q)
                ids, starts = one.search_agent(code, q)  # after a rebuild: one call, one page
                limit = q.limit
                if len(ids) > limit:
                    del ids[limit:]
                    return Page(ids, starts[:limit], encode_cursor(starts[limit - 1], ids[-1]))
                return Page(ids, starts, None)
        plan = self.plan(principal, query)
        if plan is None:
            return Page([], (), None)
        need = query.offset + query.limit + 1  # one more than the page: is there a next page?
        runs = [r for r in (seg.search(plan, need) for seg in self._all()) if len(r[1])]
        if not runs:
            return Page([], (), None)
        if len(runs) == 1:  # the usual case after a rebuild: no keys to make
            starts, ids = runs[0]
            end = query.offset + query.limit
            page_ids = ids[query.offset:end].tolist()
            page_starts = starts[query.offset:end]
            more = len(ids) == need
        else:
            merged = list(heapq.merge(*(zip(s.tolist(), i.tolist()) for s, i in runs), reverse=plan.newest))[:need]
            keys = merged[query.offset:query.offset + query.limit]
            page_ids = [k[1] for k in keys]
            page_starts = [k[0] for k in keys]
            more = len(merged) == need
        cursor = encode_cursor(page_starts[-1], page_ids[-1]) if more and page_ids else None
        return Page(page_ids, page_starts, cursor)

    def _search_agent(self, code: int, q: Query) -> Page:
        """The fast path's page over several segments (or a tail): each one's rows merged."""
        newest, limit = q.order == "newest", q.limit
        runs = [zip(s, i) for i, s in (seg.search_agent(code, q) for seg in self._all()) if i]
        merged = list(heapq.merge(*runs, reverse=newest))[:limit + 1]
        keys = merged[:limit]
        cursor = encode_cursor(*keys[-1]) if len(merged) > limit else None
        return Page([k[1] for k in keys], [k[0] for k in keys], cursor)

    def count(self, principal: Principal, query: Query) -> int:
        """How many recordings match (limit and offset do not apply; a cursor does)."""
        plan = self.plan(principal, query)
        return 0 if plan is None else sum(seg.count(plan) for seg in self._all())

    def count_by_queue(self, principal: Principal, query: Query, origin: float, width: float,
                       buckets: int) -> dict[tuple[str | None, int], int]:
        """Matching recordings per (queue, bucket k = [origin + k*width, origin + (k+1)*width))."""
        if not (width > 0 and buckets > 0):
            raise ValueError("count_by_queue needs width > 0 and buckets > 0")
        plan = self.plan(principal, query)
        out: dict[tuple[str | None, int], int] = {}
        if plan is None:
            return out
        for seg in self._all():
            for (queue, k), n in seg.count_by_queue(plan, origin, width, buckets).items():
                key = (self.queues.name(queue), k)
                out[key] = out.get(key, 0) + n
        return out


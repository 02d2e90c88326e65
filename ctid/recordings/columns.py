"""The index's per-recording numbers (`Columns`) and a query compiled to codes (`Plan`).

A segment (`PySegment`, `ctid._fast.recindex.Segment`) is built from `Columns`: one
`array.array` per field, so a recording costs its numbers only (no Python object, no string):
start, database id, duration, QA score, agent/queue/team/direction/disposition codes, flags,
and each number as (digits as an int, digit count). Strings are coded by `RecordingIndex`'s
dictionaries; the strings themselves stay in the database.
"""

from __future__ import annotations

import math
from array import array

#: `flags` bits.
VOICEMAIL, DELETED = 1, 2
NO_CODE = -1
SUFFIX_DIGITS = 4  # suffix posting lists are keyed by the last 4 digits: what people type
SUFFIX_CODES = 10 ** SUFFIX_DIGITS

#: typecode of each column (`tag_rows`/`tag_codes` are (row, tag) pairs, any order).
TYPECODES = {"start": "d", "rowid": "q", "duration": "d", "qa": "d", "agent": "i", "queue": "i", "team": "i",
             "direction": "b", "disposition": "b", "flags": "B", "caller": "q", "caller_len": "b",
             "called": "q", "called_len": "b", "tag_rows": "i", "tag_codes": "i"}


class Columns:
    """Column arrays under construction (or exported from a segment for a merge)."""

    def __init__(self) -> None:
        for name, code in TYPECODES.items():
            setattr(self, name, array(code))

    def __len__(self) -> int:
        return len(self.start)  # type: ignore[attr-defined]

    def append(self, start: float, rowid: int, duration: float, qa: float | None, agent: int, queue: int, team: int,
               direction: int, disposition: int, flags: int, caller: tuple[int, int], called: tuple[int, int],
               tags: tuple[int, ...] = ()) -> None:
        row = len(self.start)  # type: ignore[attr-defined]
        self.start.append(start)  # type: ignore[attr-defined]
        self.rowid.append(rowid)  # type: ignore[attr-defined]
        self.duration.append(duration)  # type: ignore[attr-defined]
        self.qa.append(math.nan if qa is None else qa)  # type: ignore[attr-defined]
        self.agent.append(agent)  # type: ignore[attr-defined]
        self.queue.append(queue)  # type: ignore[attr-defined]
        self.team.append(team)  # type: ignore[attr-defined]
        self.direction.append(direction)  # type: ignore[attr-defined]
        self.disposition.append(disposition)  # type: ignore[attr-defined]
        self.flags.append(flags)  # type: ignore[attr-defined]
        self.caller.append(caller[0])  # type: ignore[attr-defined]
        self.caller_len.append(caller[1])  # type: ignore[attr-defined]
        self.called.append(called[0])  # type: ignore[attr-defined]
        self.called_len.append(called[1])  # type: ignore[attr-defined]
        for tag in tags:
            self.tag_rows.append(row)  # type: ignore[attr-defined]
            self.tag_codes.append(tag)  # type: ignore[attr-defined]

    def extend(self, other: Columns) -> None:
        """Append every row of `other` (tag rows renumbered)."""
        base = len(self)
        for name in TYPECODES:
            if name != "tag_rows":
                getattr(self, name).extend(getattr(other, name))
        self.tag_rows.extend(r + base for r in other.tag_rows)  # type: ignore[attr-defined]


class Plan:
    """A `Query` after access control, with names replaced by codes. Empty tuples mean any;
    a mode of -1 means no number filter; bounds are ±inf when open. The defaults are class
    attributes: a plan is made per query, and setting only what the query has keeps that cheap."""

    lo: float = -math.inf
    hi: float = math.inf
    newest: bool = True
    has_cursor: bool = False
    cur_start: float = 0.0
    cur_rowid: int = 0
    agents: tuple[int, ...] = ()
    queues: tuple[int, ...] = ()
    teams: tuple[int, ...] = ()
    directions: tuple[int, ...] = ()
    dispositions: tuple[int, ...] = ()
    min_dur: float = -math.inf
    max_dur: float = math.inf
    voicemail: int = -1
    tag: int = -1
    qa_filter: bool = False
    min_qa: float = -math.inf
    max_qa: float = math.inf
    caller_mode: int = -1
    caller_value: int = 0
    caller_len: int = 0
    called_mode: int = -1
    called_value: int = 0
    called_len: int = 0
    sfx_value: int = 0
    sfx_len: int = 0  # 0: no either-number suffix filter

    def __init__(self, **values: object) -> None:
        for name, value in values.items():
            if not hasattr(Plan, name):
                raise TypeError(f"Plan has no field {name!r}")
            setattr(self, name, value)

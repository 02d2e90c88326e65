"""Recording queries: the `Query` record, and parsing one from a request or the command line.

Every way in (bus op `recordings.search`, `ctid recordings search`, the Python API) builds a
`Query` with `parse_query(mapping)`, which refuses what it does not understand with a
`QueryError` naming the field: an unknown field, a wrong type, a reversed range, a number
pattern that is not digits. A number filter is digits (a leading `+` is ignored), matched
exactly, or as a prefix with a trailing `*` (`0161*`), or as a suffix with a leading `*`
(`*1234`); `*` alone or inside the digits is refused (no wildcard search of every number).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from ctid.recordings.model import DIRECTIONS

MAX_LIMIT = 10_000
ORDERS = ("newest", "oldest")
EXACT, PREFIX, SUFFIX = 0, 1, 2


class QueryError(ValueError):
    """A query the index refuses; `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class NumberMatch:
    """A caller/called filter: `mode` EXACT, PREFIX or SUFFIX on `digits`."""

    mode: int
    digits: str

    @property
    def value(self) -> int:
        return int(self.digits)


@dataclass(frozen=True, init=False)
class Query:
    """What to find. Empty tuples and None mean "any". Time is `since <= start < until`,
    durations and QA scores are inclusive ranges. `cursor` continues a previous page
    (its `next_cursor`); `offset` skips rows (after the cursor, if both are given).

    Fields are keyword-only; an unknown one is a TypeError, a reversed range a `QueryError`
    (types are `parse_query`'s job). A query is made per search, so `__init__` stores only the
    fields given and the others read the defaults from the class (a frozen dataclass's own
    `__init__` would pay one `object.__setattr__` per field, most of a simple search's time)."""

    since: float | None = None
    until: float | None = None
    agents: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    caller: NumberMatch | None = None
    called: NumberMatch | None = None
    suffix: str | None = None  # the last digits of either number
    min_duration: float | None = None
    max_duration: float | None = None
    directions: tuple[str, ...] = ()
    dispositions: tuple[str, ...] = ()
    voicemail: bool | None = None
    tag: str | None = None
    min_qa: float | None = None
    max_qa: float | None = None
    order: str = "newest"
    limit: int = 100
    offset: int = 0
    cursor: tuple[float, int] | None = None

    def __init__(self, **fields: Any) -> None:
        if not fields.keys() <= _QUERY_FIELDS:
            unknown = sorted(set(fields) - _QUERY_FIELDS)
            raise TypeError(f"Query has no field {unknown[0]!r}")
        for low, high in _RANGES:  # (two dict lookups per range: next to nothing in a search)
            if high in fields and low in fields:
                a, b = fields[low], fields[high]
                if a is not None and b is not None and a > b:  # (None: dataclasses.replace passes every field)
                    raise QueryError(low, f"the range is reversed: {low} {a:g} > {high} {b:g}")
        self.__dict__.update(fields)


_QUERY_FIELDS = frozenset(Query.__dataclass_fields__)
_RANGES = (("since", "until"), ("min_duration", "max_duration"), ("min_qa", "max_qa"))


def number_match(field: str, text: Any) -> NumberMatch:
    """`"0161*"` -> prefix 0161, `"*1234"` -> suffix 1234, `"+44161..."` -> exact 44161..."""
    if not isinstance(text, str):
        raise QueryError(field, f"a number pattern is a string, not {type(text).__name__}")
    mode = EXACT
    body = text
    if body.startswith("*"):
        mode, body = SUFFIX, body[1:]
    elif body.endswith("*"):
        mode, body = PREFIX, body[:-1]
    if mode != SUFFIX and body.startswith("+"):
        body = body[1:]
    _check_digits(field, body, text)
    return NumberMatch(mode, body)


def _check_digits(field: str, body: str, text: str) -> None:
    if not body or not body.isascii() or not body.isdigit():
        raise QueryError(field, f"{text!r} is not digits (with one leading '*' for a suffix or a trailing '*' "
                                "for a prefix)")
    if len(body) > 18:
        raise QueryError(field, f"{text!r} has more than 18 digits")


def encode_cursor(start: float, rowid: int) -> str:
    """The opaque cursor of the row (start, rowid): the next page starts after it."""
    return f"{start!r}:{rowid}"


def decode_cursor(value: Any) -> tuple[float, int]:
    if not isinstance(value, str) or value.count(":") != 1:
        raise QueryError("cursor", "not a cursor from a previous page's next_cursor")
    start, rowid = value.split(":")
    try:
        parsed = float(start), int(rowid)
    except ValueError:
        raise QueryError("cursor", "not a cursor from a previous page's next_cursor") from None
    if not math.isfinite(parsed[0]):
        raise QueryError("cursor", "not a cursor from a previous page's next_cursor")
    return parsed


def _number(field: str, value: Any, low: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise QueryError(field, f"expected a number, got {value!r}")
    if low is not None and value < low:
        raise QueryError(field, f"must be >= {low:g}, got {value!r}")
    return float(value)


def _names(field: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value):
        raise QueryError(field, "expected a non-empty string or list of non-empty strings")
    return tuple(value)


def _int(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise QueryError(field, f"expected an integer from {low} to {high}, got {value!r}")
    return value


_PLURAL = {"agent": "agents", "team": "teams", "queue": "queues", "direction": "directions",
           "disposition": "dispositions"}
FIELDS = ("since", "until", *_PLURAL, *_PLURAL.values(), "caller", "called", "suffix", "min_duration",
          "max_duration", "voicemail", "tag", "min_qa", "max_qa", "order", "limit", "offset", "cursor")


def parse_query(spec: Mapping[str, Any]) -> Query:
    """A checked `Query` from a mapping of the fields above (None values are ignored).

    `agent`/`agents` (and team, queue, direction, disposition) each take a string or a list."""
    unknown = sorted(k for k in spec if k not in FIELDS)
    if unknown:
        raise QueryError(unknown[0], f"unknown field (known: {', '.join(FIELDS)})")
    s = {k: v for k, v in spec.items() if v is not None}
    out: dict[str, Any] = {}
    for one, many in _PLURAL.items():
        if one in s and many in s:
            raise QueryError(one, f"give {one!r} or {many!r}, not both")
        if one in s or many in s:
            out[many] = _names(one if one in s else many, s.get(one, s.get(many)))
    for name in ("since", "until", "min_duration", "max_duration", "min_qa", "max_qa"):
        if name in s:
            out[name] = _number(name, s[name], 0.0 if name.endswith("duration") else None)
    bad = [d for d in out.get("directions", ()) if d not in DIRECTIONS]
    if bad:
        raise QueryError("direction", f"{bad[0]!r} is not one of {', '.join(DIRECTIONS)}")
    for name in ("caller", "called"):
        if name in s:
            out[name] = number_match(name, s[name])
    if "suffix" in s:
        suffix = s["suffix"]
        if not isinstance(suffix, str):
            raise QueryError("suffix", f"expected a string of digits, got {suffix!r}")
        _check_digits("suffix", suffix, suffix)
        out["suffix"] = suffix
    if "voicemail" in s:
        if not isinstance(s["voicemail"], bool):
            raise QueryError("voicemail", f"expected true or false, got {s['voicemail']!r}")
        out["voicemail"] = s["voicemail"]
    if "tag" in s:
        if not isinstance(s["tag"], str) or not s["tag"]:
            raise QueryError("tag", f"expected a non-empty string, got {s['tag']!r}")
        out["tag"] = s["tag"]
    if "order" in s:
        if s["order"] not in ORDERS:
            raise QueryError("order", f"expected one of {', '.join(ORDERS)}, got {s['order']!r}")
        out["order"] = s["order"]
    if "limit" in s:
        out["limit"] = _int("limit", s["limit"], 1, MAX_LIMIT)
    if "offset" in s:
        out["offset"] = _int("offset", s["offset"], 0, 10_000_000)
    if "cursor" in s:
        out["cursor"] = decode_cursor(s["cursor"])
    return Query(**out)  # (which refuses a reversed range)

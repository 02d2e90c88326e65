"""Shared pieces of the recordings tests: an independent oracle (plain filters over `Recording`
objects, strings compared as strings) and event builders."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ctid.recordings.access import Principal, restrict
from ctid.recordings.model import Recording
from ctid.recordings.query import EXACT, PREFIX, NumberMatch, Query


def _digits(number: str | None) -> str | None:
    if not number:
        return None
    d = number[1:] if number.startswith("+") else number
    return d if d and d.isascii() and d.isdigit() and len(d) <= 18 else None


def _number(m: NumberMatch, number: str | None) -> bool:
    d = _digits(number)
    if d is None:
        return False
    if m.mode == EXACT:
        return d == m.digits
    if m.mode == PREFIX:
        return d.startswith(m.digits)
    return d.endswith(m.digits)


def matches(q: Query, r: Recording) -> bool:
    checks = [
        q.since is None or r.start >= q.since,
        q.until is None or r.start < q.until,
        not q.agents or r.agent in q.agents,
        not q.teams or r.team in q.teams,
        not q.queues or r.queue in q.queues,
        not q.directions or r.direction in q.directions,
        not q.dispositions or r.disposition in q.dispositions,
        q.caller is None or _number(q.caller, r.caller),
        q.called is None or _number(q.called, r.called),
        q.suffix is None or _number(NumberMatch(2, q.suffix), r.caller) or _number(NumberMatch(2, q.suffix), r.called),
        q.min_duration is None or r.duration >= q.min_duration,
        q.max_duration is None or r.duration <= q.max_duration,
        q.voicemail is None or r.voicemail == q.voicemail,
        q.tag is None or q.tag in r.tags,
        q.min_qa is None or (r.qa_score is not None and r.qa_score >= q.min_qa),
        q.max_qa is None or (r.qa_score is not None and r.qa_score <= q.max_qa),
    ]
    return all(checks)


def oracle(recs: list[Recording], principal: Principal, query: Query) -> list[int]:
    """The ids of the page the index must return."""
    q = restrict(principal, query)
    if q is None:
        return []
    rows = sorted((r for r in recs if matches(q, r)), key=lambda r: (r.start, r.id), reverse=q.order == "newest")
    if q.cursor is not None:
        if q.order == "newest":
            rows = [r for r in rows if (r.start, r.id) < q.cursor]
        else:
            rows = [r for r in rows if (r.start, r.id) > q.cursor]
    return [r.id for r in rows[q.offset:q.offset + q.limit]]


def rec(rid: int, **fields: Any) -> Recording:
    base = Recording(recording_id=f"r{rid}", start=1000.0 + rid, duration=30.0, id=rid)
    return replace(base, **fields)


def event(etype: str, call_id: str | None, ts: float, **fields: Any) -> dict[str, Any]:
    out = {"type": etype, "ts": ts, "site": "hq", "source": "test", "call_id": call_id}
    out.update(fields)
    return out


def cleared(call_id: str, ts: float, **fields: Any) -> dict[str, Any]:
    base = {"caller": "01615550123", "called": "8000", "queue": "sales", "agent": "1001", "direction": "inbound",
            "disposition": "answered", "transfers": 0}
    base.update(fields)
    return event("call.cleared", call_id, ts, **base)

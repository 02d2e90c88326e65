"""Logged-in and not-ready time per agent and 15-minute bucket, from the `agent_state` journal.

An agent is logged in while it is a member of at least one queue (`logged_on` adds the
queue, `logged_off` removes it, a `logged_off` without queue ends them all) and not ready
from a `not_ready` until the next `ready` or the end of its login; the reason is the
`not_ready` row's `reason` ("unspecified" when none). Rows from `LOOKBACK` seconds before the
period are read so an agent who logged in before it is counted from the period's start.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterator, Mapping

from sqlalchemy import Engine, select

from ctid.store.models import AGENT_STATE

LOOKBACK = 86400.0
BUCKET = 900

Key = tuple[str, str, int]  # (agent, site, bucket)


def split(start: float, end: float, bucket: int = BUCKET) -> Iterator[tuple[int, float]]:
    """(bucket number, seconds) pieces of [start, end) cut at bucket boundaries."""
    t = start
    while t < end:
        b = int(t // bucket)
        edge = min(end, (b + 1) * bucket)
        yield b, edge - t
        t = edge


def agent_time(engine: Engine, since: float, until: float, *, now: float,
               agents: set[str] | None = None, sites: tuple[str, ...] = (),
               schedule: Mapping[str, list[tuple[float, float]]] | None = None) -> dict[Key, dict[str, float]]:
    """{(agent, site, bucket): {"logged_in": s, "not_ready": s, "not_ready:<reason>": s}}, and with a
    schedule (agent -> [(start, end)] on the phones) also "scheduled" and "adherent" seconds:
    adherent = scheduled and logged in and not "not ready"."""
    t = AGENT_STATE.c
    stmt = (select(t.agent, t.site, t.ts, t.state, t.queue, t.reason)
            .where(t.ts >= since - LOOKBACK, t.ts < until, t.agent.is_not(None))
            .order_by(t.agent, t.site, t.ts, t.id))
    if sites:
        stmt = stmt.where(t.site.in_(sites))
    end = min(until, now)
    out: dict[Key, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    for (agent, site), span in _by_agent(rows):
        if agents is not None and agent not in agents:
            continue
        queues: set[str] = set()
        reason: str | None = None
        prev: float | None = None
        shifts = (schedule or {}).get(agent, [])
        for ts, state, queue, why in span:
            if prev is not None and queues:
                _add(out, agent, site, max(prev, since), min(ts, end), reason, shifts)
            prev = ts
            if state == "logged_on":
                queues.add(queue or "*")
            elif state == "logged_off":
                queues.discard(queue or "*")
                if queue is None:
                    queues.clear()
                if not queues:
                    reason = None
            elif state == "not_ready":
                reason = why or "unspecified"
            elif state == "ready":
                reason = None
        if prev is not None and queues:
            _add(out, agent, site, max(prev, since), end, reason, shifts)
    sites_of = {agent: site for agent, site, _ in out}
    for agent, shifts in (schedule or {}).items():
        if agents is not None and agent not in agents:
            continue
        for start, stop in shifts:
            for bucket, seconds in split(max(start, since), min(stop, end)):
                out[(agent, sites_of.get(agent, "(unknown)"), bucket)]["scheduled"] += seconds
    return {k: dict(v) for k, v in out.items()}


def _by_agent(rows: list[Any]) -> Iterator[tuple[tuple[str, str], list[tuple[float, str, str | None, str | None]]]]:
    span: list[tuple[float, str, str | None, str | None]] = []
    current: tuple[str, str] | None = None
    for agent, site, ts, state, queue, reason in rows:
        if (agent, site) != current:
            if current is not None:
                yield current, span
            current, span = (agent, site), []
        span.append((ts, state, queue, reason))
    if current is not None:
        yield current, span


def _add(out: dict[Key, Any], agent: str, site: str, start: float, end: float, reason: str | None,
         shifts: list[tuple[float, float]]) -> None:
    for bucket, seconds in split(start, end):
        cell = out[(agent, site, bucket)]
        cell["logged_in"] += seconds
        if reason is not None:
            cell["not_ready"] += seconds
            cell[f"not_ready:{reason}"] += seconds
    if reason is None:
        for s_start, s_end in shifts:  # logged in and ready (or on a call) during a scheduled shift
            for bucket, seconds in split(max(start, s_start), min(end, s_end)):
                out[(agent, site, bucket)]["adherent"] += seconds

"""The additive measures the KPIs are made of, as SQL over the `cdr` table, and the data checks
that exclude a CDR from every measure (counted per reason for the report's footnotes).

Every measure is a SUM or COUNT, so the sums of 15-minute buckets roll up to any interval, day,
week or month exactly (periods.py) and a KPI is only ever computed from sums at the end
(kpis.py). docs/kpis.md defines each one; keep the two in step.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, case, func, literal, not_, null, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction

from ctid.store.models import CDR

c = CDR.c

#: Why a CDR is left out of every measure; the first reason that applies is the one counted.
EXCLUSIONS = {
    "missing_end": "no end time (t_ended): the call never finished in the store",
    "clock_skew": "timestamps out of order (answered before offered, ended before answered) or in the future",
    "negative_duration": "a negative wait, talk, hold or after-call work",
    "missing_wait": "no wait figure, so no service level can be computed",
}


class floor_div(GenericFunction[int]):  # noqa: N801 - SQL function naming
    """floor(x / n) as an integer: CAST truncates on SQLite (x >= 0 here), FLOOR elsewhere."""

    type = Integer()
    inherit_cache = True


@compiles(floor_div)
def _floor_div_default(element: Any, compiler: Any, **kw: Any) -> str:
    x, n = list(element.clauses)
    return f"CAST(FLOOR({compiler.process(x, **kw)} / {compiler.process(n, **kw)}) AS BIGINT)"


@compiles(floor_div, "sqlite")
def _floor_div_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    x, n = list(element.clauses)
    return f"CAST({compiler.process(x, **kw)} / {compiler.process(n, **kw)} AS INTEGER)"


def exclusion_reason(now: float) -> ColumnElement[Any]:
    """The EXCLUSIONS key that applies to a row, or NULL for a row every measure takes."""
    return case(
        (c.t_ended.is_(None), literal("missing_end")),
        (or_(c.t_ended < c.t_offered, c.t_answered < c.t_offered, c.t_answered > c.t_ended,
             c.t_offered > now), literal("clock_skew")),
        (or_(c.wait < 0, c.talk < 0, c.hold < 0, c.acw < 0), literal("negative_duration")),
        (c.wait.is_(None), literal("missing_wait")),
        else_=null(),
    )


def _count(cond: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((cond, 1), else_=0))


def _sum(cond: ColumnElement[bool], value: ColumnElement[Any]) -> ColumnElement[float]:
    return func.sum(case((cond, value), else_=0.0))


def measures(thresholds: dict[str, float], default_threshold: float, short_abandon: float) -> dict[str, ColumnElement[Any]]:
    """name -> SQL aggregate over valid CDRs (see docs/kpis.md for each)."""
    inbound = or_(c.direction.is_(None), c.direction == "inbound")
    queued = and_(inbound, c.queue.is_not(None))
    answered_by_agent = and_(c.disposition == "answered", c.agent.is_not(None))
    threshold = case(thresholds, value=c.queue, else_=default_threshold) if thresholds else literal(default_threshold)
    is_abandon = and_(queued, c.disposition == "abandoned")
    short = c.wait < short_abandon if short_abandon > 0 else literal(False)
    abandoned = and_(is_abandon, not_(short))
    answered = and_(queued, answered_by_agent)
    handled = and_(inbound, answered_by_agent)
    handle = func.coalesce(c.talk, 0.0) + func.coalesce(c.hold, 0.0) + func.coalesce(c.acw, 0.0)
    return {
        "calls": func.count(),
        "offered": _count(inbound),
        "acd_offered": _count(and_(queued, not_(and_(is_abandon, short)))),
        "answered": _count(answered),
        "abandoned": _count(abandoned),
        "short_abandoned": _count(and_(is_abandon, short)),
        "abandon_wait": _sum(abandoned, c.wait),
        "answered_in_sl": _count(and_(answered, c.wait <= threshold)),
        "over_threshold": _count(and_(answered, c.wait > threshold)),
        "answer_wait": _sum(answered, c.wait),
        "ivr_completed": _count(and_(inbound, c.disposition == "answered", c.agent.is_(None), c.queue.is_(None))),
        "handled": _count(handled),
        "talk": _sum(handled, func.coalesce(c.talk, 0.0)),
        "hold": _sum(handled, func.coalesce(c.hold, 0.0)),
        "acw": _sum(handled, func.coalesce(c.acw, 0.0)),
        "transferred": _count(and_(handled, c.transfers > 0)),
        "transfers": _sum(handled, func.coalesce(c.transfers, 0)),
        "outbound_attempts": _count(c.direction == "outbound"),
        "outbound_connects": _count(and_(c.direction == "outbound", c.disposition == "answered")),
        "agent_calls": _count(answered_by_agent),  # every direction: the agents' workload
        "agent_handle": _sum(answered_by_agent, handle),
    }


#: Measures that come from other queries: FCR (fcr.py) and agent time (agent_time.py).
FCR_MEASURES = ("fcr_eligible", "fcr_resolved")
AGENT_TIME_MEASURES = ("logged_in", "not_ready")

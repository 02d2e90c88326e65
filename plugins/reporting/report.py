"""One report: the KPIs of every group of the asked dimensions over a period, the totals,
and the footnotes that say what was left out and why (never a silent wrong number)."""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from ctid_plugins.reporting import kpis, periods, rollup
from ctid_plugins.reporting.agent_time import agent_time
from ctid_plugins.reporting.aggregate import (BUCKET, DIMENSIONS, TIME_DIMENSIONS, Aggregate, ReportError, aggregate,
                                              known_queues, sql_columns)
from ctid_plugins.reporting.config import Options
from ctid_plugins.reporting.measures import EXCLUSIONS

#: Dimensions the agent-time KPIs can be split by (agent_state has no queue, direction ...).
AGENT_TIME_DIMENSIONS = {*TIME_DIMENSIONS, "agent", "team", "site"}
INTERVALS = (15, 30, 60)
NONE_LABEL = "(none)"

log = logging.getLogger("ctid.plugins.reporting")


@dataclass
class Row:
    labels: tuple[str, ...]
    measures: dict[str, float]
    kpis: dict[str, float | None]
    not_ready: dict[str, float]  # hours per reason


@dataclass
class Report:
    since: float
    until: float
    timezone: str
    by: tuple[str, ...]
    rows: list[Row]
    total: Row
    footnotes: list[str]
    exclusions: dict[str, int]
    dispositions: dict[str, int]
    agent_time: bool
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: the period, the groups with their KPIs, totals and footnotes."""
        def row(r: Row) -> dict[str, Any]:
            return {**dict(zip(self.by, r.labels)), **r.kpis, "not_ready_by_reason": r.not_ready}
        return {
            "from": self.since, "to": self.until, "timezone": self.timezone, "by": list(self.by),
            "rows": [row(r) for r in self.rows], "total": row(self.total),
            "exclusions": self.exclusions, "dispositions": self.dispositions, "footnotes": self.footnotes,
        }


def check_dimensions(by: Iterable[str]) -> tuple[str, ...]:
    by = tuple(by)
    for dim in by:
        if dim not in DIMENSIONS:
            raise ReportError(f"unknown dimension {dim!r} (known: {', '.join(DIMENSIONS)})")
    if len([d for d in by if d in TIME_DIMENSIONS]) > 1:
        raise ReportError(f"at most one time dimension ({', '.join(TIME_DIMENSIONS)}), got {', '.join(by)}")
    if len(set(by)) != len(by):
        raise ReportError(f"a dimension is named twice: {', '.join(by)}")
    return by


def build(engine: Engine, since: float, until: float, by: Iterable[str], options: Options, *,
          interval: int = 30, queues: Iterable[str] = (), sites: Iterable[str] = (),
          known: Iterable[str] = (), now: float | None = None,
          schedule: Mapping[str, list[tuple[float, float]]] | None = None, use_rollup: bool = True) -> Report:
    """The report of calls offered in [since, until). `known` adds configured queue names to
    the ones the store has seen, for checking the `queues` filter; `schedule` (agent -> shifts)
    gives schedule adherence. With `use_rollup` the rollup is refreshed and read where it
    serves (rollup.py); without it every figure is read from the raw CDRs (same numbers)."""
    by = check_dimensions(by)
    now = time.time() if now is None else now
    if interval not in INTERVALS:
        raise ReportError(f"interval must be one of {', '.join(map(str, INTERVALS))} minutes, got {interval}")
    if until <= since:
        raise ReportError("the period is empty or reversed: --to must be after --from")
    queues, sites = tuple(queues), tuple(sites)
    if queues:
        unknown = set(queues) - known_queues(engine) - set(known)
        if unknown:
            raise ReportError(f"unknown queue(s) {', '.join(sorted(unknown))}: not configured and never seen in the cdr table")
    agg, source = collect(engine, since, until, by, options, now=now, queues=queues, sites=sites, use_rollup=use_rollup)
    with_agents = set(by) <= AGENT_TIME_DIMENSIONS and not queues
    zone = options.zone
    groups: dict[tuple[str, ...], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for key, values in agg.rows.items():
        if not values.get("calls") and not values.get("fcr_eligible"):
            continue
        named = dict(zip(agg.columns, key))
        cell = groups[_labels(by, named, options, zone, interval)]
        for name, v in values.items():
            cell[name] += v
    if with_agents:
        for (agent, site, bucket), values in agent_time(engine, since, until, now=now, sites=sites,
                                                             schedule=schedule).items():
            cell = groups[_labels(by, {"agent": agent, "site": site, "bucket": bucket}, options, zone, interval)]
            for name, v in values.items():
                cell[name] += v
    total: dict[str, float] = defaultdict(float)
    for cell in groups.values():
        for name, v in cell.items():
            total[name] += v
    if with_agents and not groups:
        total["logged_in"] = 0.0  # an empty period still says "no logged-in time", not n/a
    rows = [_row(labels, cell, with_agents) for labels, cell in sorted(groups.items())]
    return Report(
        since=since, until=until, timezone=options.timezone, by=by, rows=rows,
        total=_row(tuple("total" for _ in by), total, with_agents),
        footnotes=_footnotes(agg.exclusions, total, by, with_agents, options, bool(queues)),
        exclusions=dict(sorted(agg.exclusions.items())), dispositions=dict(sorted(agg.dispositions.items())),
        agent_time=with_agents, meta={"source": source},
    )


def collect(engine: Engine, since: float, until: float, by: tuple[str, ...], options: Options, *, now: float,
            queues: tuple[str, ...], sites: tuple[str, ...], use_rollup: bool) -> tuple[Aggregate, str]:
    """The period's measures: whole 15-minute buckets the rollup holds from it, the edges and
    the buckets after its horizon from the raw rows; and which source answered ("raw",
    "rollup" or "rollup+raw"). A grouping by agent or team with a queue filter reads the raw rows."""
    cols = sql_columns(by)

    def raw(a: float, b: float) -> Aggregate:
        return aggregate(engine, a, b, by, options, now=now, queues=queues, sites=sites)

    if not use_rollup or rollup.grain(cols, queues) is None:
        return raw(since, until), "raw"
    try:
        rollup.refresh(engine, options, now)
    except DBAPIError as exc:  # a read-only database user, a locked file: the raw rows still answer
        log.warning("rollup not refreshed; reading the raw CDRs", extra={"ctx": {"error": str(exc.orig)}})
        return raw(since, until), "raw"
    lo, hi = math.ceil(since / BUCKET), min(int(until // BUCKET), rollup.served(engine, options, now) or 0)
    if hi <= lo:
        return raw(since, until), "raw"
    timed = any(d in TIME_DIMENSIONS for d in by)
    parts = [rollup.read(engine, lo, hi, cols, timed, queues=queues, sites=sites)]
    if since < lo * BUCKET:
        parts.append(raw(since, lo * BUCKET))
    if hi * BUCKET < until:
        parts.append(raw(hi * BUCKET, until))
    out = parts[0]
    for part in parts[1:]:
        for key, values in part.rows.items():
            cell = out.rows.setdefault(key, dict.fromkeys(values, 0))
            for name, v in values.items():
                cell[name] = cell.get(name, 0) + v
        out.exclusions.update(part.exclusions)
        out.dispositions.update(part.dispositions)
    return out, "rollup" if len(parts) == 1 else "rollup+raw"


def _labels(by: tuple[str, ...], named: dict[str, Any], options: Options, zone: Any, interval: int) -> tuple[str, ...]:
    out = []
    for dim in by:
        if dim in TIME_DIMENSIONS:
            out.append(periods.label(named["bucket"], dim, zone, interval))
        elif dim == "team":
            out.append(options.teams.get(named["agent"] or "", NONE_LABEL))
        else:
            value = named.get(dim)
            out.append(NONE_LABEL if value is None else str(value))
    return tuple(out)


def _row(labels: tuple[str, ...], cell: dict[str, float], with_agents: bool) -> Row:
    m = dict(cell)
    return Row(labels, m, kpis.compute(m, with_agents and "logged_in" in m), kpis.not_ready_reasons(m))


def _footnotes(exclusions: dict[str, int], total: dict[str, float], by: tuple[str, ...], with_agents: bool,
               options: Options, filtered: bool) -> list[str]:
    notes = []
    if not total.get("calls"):
        notes.append("No calls in the period: counts are 0 and every rate is n/a.")
    for reason, n in sorted(exclusions.items()):
        notes.append(f"{n} CDR(s) excluded from every figure: {EXCLUSIONS[reason]} [{reason}].")
    if options.short_abandon > 0:
        notes.append(f"{int(total.get('short_abandoned', 0))} short abandon(s) (wait under {options.short_abandon:g} s) "
                     "are not counted as abandoned nor offered to the ACD.")
    levels = ", ".join(f"{q} {s:g} s" for q, s in sorted(options.service_levels.items()))
    notes.append(f"Service level: answered within {options.service_level:g} s" + (f" ({levels})" if levels else "")
                 + " / (answered + abandoned).")
    notes.append(f"First-call resolution: no call from the same number within {options.fcr_window / 3600:g} h after.")
    if with_agents and "scheduled" not in total:
        notes.append("Schedule adherence is n/a: no schedule was loaded (--schedule).")
    if not with_agents:
        why = "a queue filter" if filtered else "a grouping by " + ", ".join(sorted(set(by) - AGENT_TIME_DIMENSIONS))
        notes.append(f"Agent-time figures (logged-in, not-ready, occupancy, calls per hour) are n/a with {why}: "
                     "agent time is not kept per queue, direction or customer type.")
    return notes

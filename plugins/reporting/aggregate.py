"""The report's queries: the CDR measures grouped by the asked dimensions and 15-minute UTC
buckets, first-call resolution, dispositions and the exclusion counts, all done by the
database (GROUP BY) so a month of a large center never crosses into Python row by row.

Time dimensions are grouped here by 15-minute bucket of `t_offered` (every zone's UTC offset
is a multiple of 15 minutes); periods.py rolls the buckets up to local intervals, days, weeks
and months. Teams are grouped by agent here and mapped to teams there.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import ColumnElement, Engine, and_, case, exists, func, inspect, literal, or_, select

from ctid.store.models import CDR
from ctid_plugins.reporting.measures import FCR_MEASURES, exclusion_reason, floor_div, measures
from ctid_plugins.reporting.config import Options

c = CDR.c

BUCKET = 900  # seconds: the finest time grain; every interval, day, week and month is made of these

#: Dimensions a report may be grouped by.
TIME_DIMENSIONS = ("interval", "day", "week", "month")
DIMENSIONS = (*TIME_DIMENSIONS, "queue", "agent", "team", "customer_type", "direction", "site")

Key = tuple[Any, ...]


class ReportError(ValueError):
    """A report that cannot be made as asked (unknown dimension, unknown queue ...)."""


@dataclass
class Aggregate:
    """Measures per (sql dimension values..., bucket or None), plus what was left out."""

    columns: tuple[str, ...]  # the sql dimension names of a key, then "bucket"
    rows: dict[Key, dict[str, float]] = field(default_factory=dict)
    exclusions: Counter[str] = field(default_factory=Counter)
    dispositions: Counter[str] = field(default_factory=Counter)


def sql_columns(by: Iterable[str]) -> tuple[str, ...]:
    """The columns the database groups by for these report dimensions (team -> agent)."""
    cols: list[str] = []
    for dim in by:
        col = "agent" if dim == "team" else ("bucket" if dim in TIME_DIMENSIONS else dim)
        if col not in cols and col != "bucket":
            cols.append(col)
    return tuple(cols)


def _dim_expr(name: str) -> ColumnElement[Any]:
    if name == "customer_type":
        # set by the driver (x.customer_type) or as call data, e.g. by the screen pop from the
        # caller's contact (x.data.customer_type)
        return func.coalesce(c.x["customer_type"].as_string(), c.x[("data", "customer_type")].as_string(),
                             literal("unknown"))
    if name == "direction":
        return func.coalesce(c.direction, literal("unknown"))
    return getattr(c, name)


#: Periods at least this long read SQLite's cdr table in order rather than through ix_cdr_t_offered.
SCAN_PERIOD = 2 * 86400


def scope_of(since: float, until: float, queues: tuple[str, ...], sites: tuple[str, ...],
             scan: bool = False) -> list[ColumnElement[bool]]:
    # SQLite keeps no histogram of t_offered, so it takes the index for any range; over most
    # of the table that is a random read per row, and reading the table in order is about twice
    # as fast (bench/test_reporting.py). `t_offered + 0` is SQLite's documented way to keep a
    # term off an index (the same figures either way).
    t = c.t_offered + 0 if scan else c.t_offered
    where = [t >= since, t < until]
    if queues:
        where.append(c.queue.in_(queues))
    if sites:
        where.append(c.site.in_(sites))
    return where


def aggregate(engine: Engine, since: float, until: float, by: Iterable[str], options: Options, *, now: float,
              queues: tuple[str, ...] = (), sites: tuple[str, ...] = ()) -> Aggregate:
    """The CDR measures of calls offered in [since, until), grouped for the dimensions `by`,
    read from the raw `cdr` rows (rollup.py keeps the same figures pre-summed)."""
    cols = sql_columns(by)
    timed = any(d in TIME_DIMENSIONS for d in by)
    scope = scope_of(since, until, queues, sites, scan=engine.dialect.name == "sqlite" and until - since >= SCAN_PERIOD)
    out = Aggregate(columns=(*cols, "bucket"))
    with engine.connect() as conn:
        out.rows = grouped(conn, cols, timed, scope, since, until, options, now)
        # exclusions and dispositions in one pass over the period (one scan fewer than two queries)
        for (r, d), n in counted(conn, (), scope, now).items():
            if r is None:
                out.dispositions[d or "unknown"] += n
            else:
                out.exclusions[r] += n
    return out


def grouped(conn: Any, cols: tuple[str, ...], timed: bool, scope: list[ColumnElement[bool]], since: float,
            until: float, options: Options, now: float) -> dict[Key, dict[str, float]]:
    """Every measure and FCR of the valid CDRs in `scope`, per (cols..., 15-minute bucket or None)."""
    dims = [_dim_expr(col).label(col) for col in cols]
    if timed:
        dims.append(floor_div(c.t_offered, BUCKET).label("bucket"))
    reason = exclusion_reason(now)
    named = measures(options.service_levels, options.service_level, options.short_abandon)
    stmt = select(*dims, *(expr.label(name) for name, expr in named.items())).where(*scope, reason.is_(None))
    if dims:
        stmt = stmt.group_by(*dims)
    rows: dict[Key, dict[str, float]] = {}
    for row in conn.execute(stmt).mappings():
        key = (*(row[col] for col in cols), row["bucket"] if timed else None)
        rows[key] = {name: row[name] or 0 for name in named}
    for key, values in _fcr(conn, dims, cols, timed, scope, reason, since, until, options).items():
        rows.setdefault(key, dict.fromkeys(named, 0)).update(values)
    return rows


def counted(conn: Any, cols: tuple[str, ...], scope: list[ColumnElement[bool]], now: float) -> dict[Key, int]:
    """CDRs in `scope` per (cols..., exclusion reason or None, disposition); `bucket` may be a col."""
    dims = [(floor_div(c.t_offered, BUCKET) if col == "bucket" else _dim_expr(col)).label(col) for col in cols]
    labelled = exclusion_reason(now).label("reason")
    stmt = select(*dims, labelled, c.disposition, func.count()).where(*scope).group_by(*dims, labelled, c.disposition)
    return {tuple(row[:-1]): row[-1] for row in conn.execute(stmt)}


def _fcr(conn: Any, dims: list[Any], cols: tuple[str, ...], timed: bool, scope: list[Any], reason: Any,
         since: float, until: float, options: Options) -> dict[Key, dict[str, float]]:
    """First-call resolution: an inbound call handled by an agent is resolved when the same
    caller does not call again within `fcr_window` seconds (calls after the period count too)."""
    window = options.fcr_window
    inbound = or_(c.direction.is_(None), c.direction == "inbound")
    eligible = (*scope, reason.is_(None), inbound, c.disposition == "answered", c.agent.is_not(None),
                c.caller.is_not(None))
    if has_caller_index(conn):
        # With an index on (caller, t_offered) (the screen pop creates one), each eligible call
        # looks up its caller's next call directly: about twice as fast as sorting the whole
        # period by caller for the window function below (bench/test_reporting.py). Same answer.
        n = CDR.alias("n")
        repeat = exists().where(
            n.c.caller == c.caller,
            or_(n.c.t_offered > c.t_offered, and_(n.c.t_offered == c.t_offered, n.c.id > c.id)),
            n.c.t_offered <= c.t_offered + window, or_(n.c.direction.is_(None), n.c.direction == "inbound"))
        resolved = case((repeat, 0), else_=1)
        stmt = select(*dims, func.count().label("fcr_eligible"), func.sum(resolved).label("fcr_resolved")).where(*eligible)
    else:
        # Each call with the offer time of the caller's next call (any outcome), looked up over the
        # period plus the window after it, so a repeat just after the period still counts.
        nxt = (
            select(c.id.label("id"),
                   func.lead(c.t_offered).over(partition_by=c.caller, order_by=(c.t_offered, c.id)).label("next_t"))
            .where(c.caller.is_not(None), inbound, c.t_offered >= since, c.t_offered < until + window)
            .subquery("nxt")
        )
        resolved = case((or_(nxt.c.next_t.is_(None), nxt.c.next_t - c.t_offered > window), 1), else_=0)
        stmt = (
            select(*dims, func.count().label("fcr_eligible"), func.sum(resolved).label("fcr_resolved"))
            .select_from(CDR.join(nxt, nxt.c.id == c.id))
            .where(*eligible)
        )
    if dims:
        stmt = stmt.group_by(*dims)
    out: dict[Key, dict[str, float]] = {}
    for row in conn.execute(stmt).mappings():
        key = (*(row[col] for col in cols), row["bucket"] if timed else None)
        out[key] = {name: row[name] or 0 for name in FCR_MEASURES}
    return out


def has_caller_index(conn: Any) -> bool:
    """Whether cdr has an index on (caller, t_offered) (the screen pop makes one)."""
    return any(ix["column_names"][:2] == ["caller", "t_offered"] for ix in inspect(conn).get_indexes(CDR.name))


def known_queues(engine: Engine) -> set[str]:
    """Every queue the cdr table has seen."""
    with engine.connect() as conn:
        return {q for (q,) in conn.execute(select(c.queue).where(c.queue.is_not(None)).distinct())}

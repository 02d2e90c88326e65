"""The interval rollup: the report's additive measures pre-summed per 15-minute bucket, so a
month of a large center is read as tens of thousands of rows instead of millions of CDRs.

`cdr_rollup` holds every measure of measures.py plus FCR per (bucket, queue, direction, site,
customer type); `cdr_rollup_agent` the same per (bucket, agent, site), for the agent and team
reports (an agent's calls spread over queues: one table keyed by both would have about a row
per CDR, while this one has about a quarter of the CDRs' rows at 500 agents); and
`cdr_rollup_count` the exclusion and disposition counts per (bucket, queue, site). All are
filled by the same SQL as the raw path (aggregate.py), so the two give the same figures;
tests/test_reporting_rollup.py checks that on every KPI and dimension.

What is rolled, and when it is rolled again (`refresh`, run by every report and, in the daemon,
by every `queue.stats` tick):

- Only buckets before the *horizon*: the bucket of `now` (the current one is still filling).
  The report reads rolled buckets up to the horizon and the raw rows after it.
- A bucket is recomputed whole from the raw rows when anything in it may have changed: it
  holds a CDR written since the last refresh (id above the watermark: a late import lands in an
  old bucket), or one written within the last `rollup_settle` seconds (after-call work and a
  call cleared again update a CDR after it is written; the ids of past refreshes are kept in
  `cdr_rollup_mark` to know which those are), or a call offered within `rollup_settle` seconds
  of now, or an earlier call of a caller who just called again within the FCR window (that
  call is no longer first-call resolved), or it has just passed the horizon.
- When the options that shape the sums change (service-level thresholds, short abandons, FCR
  window: `fingerprint`), or on `ctid report rollup --rebuild`, everything is rebuilt.

A refresh is a transaction per day of buckets (CHUNK) that begins by writing the state row, so
two refreshes (the daemon and a report command) never interleave, and a rebuild never holds
SQLite's write lock (the store writer's too) for more than a day's worth; meanwhile the
reports read the rolled days from the rollup and the rest raw, with the same figures. Known limit: a CDR changed more than
`rollup_settle` seconds after it was written is seen only by a rebuild.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import (BigInteger, Column, Double, Engine, Index, Integer, MetaData, String, Table, Text, and_,
                        delete, func, insert, inspect, or_, select, update)

from ctid.store.models import CDR, KEY, BigId
from ctid_plugins.reporting.aggregate import (BUCKET, SCAN_PERIOD, Aggregate, Key, counted, floor_div, grouped,
                                              has_caller_index, scope_of)
from ctid_plugins.reporting.config import Options
from ctid_plugins.reporting.measures import FCR_MEASURES, measures

c = CDR.c

#: Bump when what a rollup row means changes: every rollup is then rebuilt.
VERSION = 2
#: The report dimensions (as sql columns) a row of each rollup table is keyed by, besides its bucket.
COLUMNS = ("queue", "direction", "site", "customer_type")
AGENT_COLUMNS = ("agent", "site")
MEASURES = (*measures({}, 0.0, 0.0), *FCR_MEASURES)

#: The plugin's own MetaData: the store's create_all never sees these tables.
tables = MetaData()
ROLLUP = Table(
    "cdr_rollup", tables,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("bucket", BigInteger, nullable=False),
    Column("queue", String(KEY)), Column("direction", String(16)), Column("site", String(KEY)),
    Column("customer_type", String(KEY)),
    *(Column(name, Double, nullable=False) for name in MEASURES),
    Index("ix_cdr_rollup_bucket", "bucket"),
)
AGENT_ROLLUP = Table(
    "cdr_rollup_agent", tables,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("bucket", BigInteger, nullable=False),
    Column("agent", String(KEY)), Column("site", String(KEY)),
    *(Column(name, Double, nullable=False) for name in MEASURES),
    Index("ix_cdr_rollup_agent_bucket", "bucket"),
)
#: Each measures table with the columns it is keyed by.
GRAINS = ((ROLLUP, COLUMNS), (AGENT_ROLLUP, AGENT_COLUMNS))
COUNTS = Table(
    "cdr_rollup_count", tables,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("bucket", BigInteger, nullable=False),
    Column("queue", String(KEY)), Column("site", String(KEY)),
    Column("reason", String(32)), Column("disposition", String(32)),  # reason NULL = a valid CDR
    Column("n", BigInteger, nullable=False),
    Index("ix_cdr_rollup_count_bucket", "bucket"),
)
STATE = Table(
    "cdr_rollup_state", tables,
    Column("id", Integer, primary_key=True, autoincrement=False),  # one row, id 1
    Column("fingerprint", Text, nullable=False),
    Column("horizon", BigInteger, nullable=False),  # buckets before this one are rolled
    Column("watermark", BigInteger, nullable=False),  # the highest cdr id seen by the last refresh
    Column("runs", BigInteger, nullable=False),
    Column("rebuilt", Double, nullable=False),
)
MARKS = Table(
    "cdr_rollup_mark", tables,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", Double, nullable=False),  # a refresh's `now`
    Column("max_id", BigInteger, nullable=False),  # the highest cdr id then
)


@dataclass(frozen=True)
class Run:
    """What one refresh did."""

    rebuilt: bool
    buckets: int  # buckets recomputed from the raw rows
    horizon: int
    watermark: int
    seconds: float


def fingerprint(options: Options) -> str:
    """A digest of everything a rollup row's sums depend on besides the CDRs."""
    shape = {"version": VERSION, "bucket": BUCKET, "service_level": options.service_level,
             "service_levels": sorted(options.service_levels.items()), "short_abandon": options.short_abandon,
             "fcr_window": options.fcr_window}
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:32]


#: The most buckets one transaction moves the horizon by (a day): a rebuild, or a rollup left
#: behind, goes a day per transaction, so the store's writer is never locked out for long.
CHUNK = 96


def refresh(engine: Engine, options: Options, now: float, *, rebuild: bool = False) -> Run:
    """Bring the rollup up to date with the cdr table for reports at `now` (see the module doc)."""
    t0 = time.perf_counter()
    tables.create_all(engine, checkfirst=True)
    digest = fingerprint(options)
    target = int(now // BUCKET)
    rebuilt, buckets = False, 0
    while True:
        with engine.begin() as conn:
            # a write first: on SQLite it takes the database's write lock, so the reads below
            # see what no other refresh is changing; on a server database it locks the state row
            conn.execute(update(STATE).where(STATE.c.id == 1).values(runs=STATE.c.runs + 1))
            state = conn.execute(select(STATE).where(STATE.c.id == 1)).first()
            max_id = conn.execute(select(func.max(c.id))).scalar() or 0
            if rebuild or state is None or state.fingerprint != digest:
                # start again from the first CDR's bucket; the loop rolls it up a day at a time
                for table in (ROLLUP, AGENT_ROLLUP, COUNTS, MARKS, STATE):
                    conn.execute(delete(table))
                first = conn.execute(select(func.min(c.t_offered))).scalar()
                start = target if first is None else min(int(first // BUCKET), target)
                conn.execute(insert(STATE).values(id=1, fingerprint=digest, horizon=start, watermark=max_id, runs=1,
                                                  rebuilt=now))
                conn.execute(insert(MARKS).values(at=now, max_id=max_id))
                rebuild, rebuilt = False, True
                continue
            # buckets without a CDR are passed over (one from 1970 on a skewed clock would
            # otherwise cost a transaction per day since); an earlier `now` never unrolls
            after = conn.execute(select(func.min(c.t_offered)).where(c.t_offered >= state.horizon * BUCKET)).scalar()
            start = target if after is None else max(state.horizon, min(int(after // BUCKET), target))
            horizon = max(state.horizon, min(target, start + CHUNK))
            dirty = _ranges(_dirty(conn, options, now, state.horizon, state.watermark) | set(range(start, horizon)),
                            horizon)
            for lo, hi in sorted(dirty):
                # every rolled CDR was offered before the horizon: none is "in the future" for a
                # report at or after it, whatever `now` this refresh was asked with
                _roll(conn, lo, hi, options, horizon * BUCKET)
            conn.execute(update(STATE).where(STATE.c.id == 1).values(horizon=horizon, watermark=max_id))
            conn.execute(insert(MARKS).values(at=now, max_id=max_id))
            _prune_marks(conn, now - options.rollup_settle)
        buckets += sum(hi - lo for lo, hi in dirty)
        if horizon >= target:
            return Run(rebuilt, buckets, horizon, max_id, time.perf_counter() - t0)


def _dirty(conn: Any, options: Options, now: float, horizon: int, watermark: int) -> set[int]:
    """The rolled buckets that may no longer match the raw rows."""
    settled = _settled(conn, now - options.rollup_settle, watermark)
    bucket = floor_div(c.t_offered, BUCKET)
    out = {b for (b,) in conn.execute(select(bucket).where(c.id > settled, c.t_offered.is_not(None)).distinct())}
    out |= set(range(int((now - options.rollup_settle) // BUCKET), horizon))
    out |= _repeated(conn, watermark, options.fcr_window)
    return out


def _repeated(conn: Any, watermark: int, window: float) -> set[int]:
    """The buckets of the earlier calls of callers who called again since `watermark`: those
    calls may no longer be first-call resolved."""
    new, old = CDR.alias("new"), CDR.alias("old")
    fresh = (new.c.id > watermark, new.c.caller.is_not(None), or_(new.c.direction.is_(None), new.c.direction == "inbound"))
    if has_caller_index(conn):
        # each new call looks up its caller's calls of the window before it (screen pop's index)
        stmt = (select(floor_div(old.c.t_offered, BUCKET))
                .select_from(new.join(old, and_(old.c.caller == new.c.caller, old.c.t_offered <= new.c.t_offered,
                                                old.c.t_offered >= new.c.t_offered - window)))
                .where(*fresh).distinct())
    else:
        # no index on caller: a join would make SQLite index the whole table on every refresh;
        # read the window's calls by time instead and keep the new callers' (a call outside its
        # own caller's window may be rolled again: more work, never a wrong figure)
        low, high = conn.execute(select(func.min(new.c.t_offered), func.max(new.c.t_offered)).where(*fresh)).one()
        if low is None:
            return set()
        stmt = (select(floor_div(old.c.t_offered, BUCKET))
                .where(old.c.t_offered >= low - window, old.c.t_offered <= high,
                       old.c.caller.in_(select(new.c.caller).where(*fresh)))
                .distinct())
    return {b for (b,) in conn.execute(stmt)}


def _settled(conn: Any, before: float, watermark: int) -> int:
    """The highest cdr id of the last refresh at least `rollup_settle` ago (CDRs above it may
    still change); the oldest kept refresh's when none is that old."""
    at = conn.execute(select(func.max(MARKS.c.max_id)).where(MARKS.c.at <= before)).scalar()
    if at is None:
        at = conn.execute(select(func.min(MARKS.c.max_id))).scalar()
    return watermark if at is None else at


def _prune_marks(conn: Any, before: float) -> None:
    keep = conn.execute(select(func.max(MARKS.c.at)).where(MARKS.c.at <= before)).scalar()
    if keep is not None:
        conn.execute(delete(MARKS).where(MARKS.c.at < keep))


def _ranges(buckets: Iterable[int], horizon: int) -> set[tuple[int, int]]:
    """Contiguous [lo, hi) runs of the buckets before the horizon."""
    out: set[tuple[int, int]] = set()
    lo = hi = None
    for b in sorted(b for b in buckets if b < horizon):
        if hi is not None and b == hi:
            hi += 1
            continue
        if lo is not None:
            out.add((lo, hi))
        lo, hi = b, b + 1
    if lo is not None:
        out.add((lo, hi))
    return out


def _roll(conn: Any, lo: int, hi: int, options: Options, now: float) -> None:
    """Recompute buckets [lo, hi) from the raw rows, with the raw path's own queries."""
    for table in (ROLLUP, AGENT_ROLLUP, COUNTS):
        conn.execute(delete(table).where(table.c.bucket >= lo, table.c.bucket < hi))
    since, until = lo * BUCKET, hi * BUCKET
    scan = conn.dialect.name == "sqlite" and until - since >= SCAN_PERIOD
    scope = scope_of(since, until, (), (), scan=scan)
    for table, columns in GRAINS:
        rows = [{**dict(zip((*columns, "bucket"), key)), **{m: float(v.get(m, 0)) for m in MEASURES}}
                for key, v in grouped(conn, columns, True, scope, since, until, options, now).items()]
        if rows:
            conn.execute(insert(table), rows)
    counts = [dict(bucket=b, queue=q, site=s, reason=r, disposition=d, n=n)
              for (b, q, s, r, d), n in counted(conn, ("bucket", "queue", "site"), scope, now).items()]
    if counts:
        conn.execute(insert(COUNTS), counts)


def served(engine: Engine, options: Options, now: float) -> int | None:
    """The bucket up to which (excluded) the rollup can answer a report at `now`, or None when
    it cannot (never built, or built with other options)."""
    if not inspect(engine).has_table(STATE.name):
        return None
    with engine.connect() as conn:
        state = conn.execute(select(STATE.c.fingerprint, STATE.c.horizon).where(STATE.c.id == 1)).first()
    if state is None or state.fingerprint != fingerprint(options):
        return None
    return min(state.horizon, int(now // BUCKET))


def grain(cols: Iterable[str], queues: tuple[str, ...] = ()) -> Table | None:
    """The rollup table that can answer a grouping by these sql columns with these filters."""
    for table, columns in GRAINS:
        if set(cols) <= set(columns) and (not queues or "queue" in columns):
            return table
    return None


def read(engine: Engine, lo: int, hi: int, cols: tuple[str, ...], timed: bool, *,
         queues: tuple[str, ...] = (), sites: tuple[str, ...] = ()) -> Aggregate:
    """The rolled measures of buckets [lo, hi) grouped by `cols` (see `grain`) and the bucket
    when `timed`: the same Aggregate the raw path gives for that period."""
    table = grain(cols, queues)
    if table is None:
        raise ValueError(f"no rollup is keyed by {', '.join(cols)} with a queue filter {queues!r}")
    r, k = table.c, COUNTS.c
    dims = [r[col] for col in cols] + ([r.bucket] if timed else [])
    where = [r.bucket >= lo, r.bucket < hi]
    counts_where = [k.bucket >= lo, k.bucket < hi]
    if queues:
        where.append(r.queue.in_(queues))
        counts_where.append(k.queue.in_(queues))
    if sites:
        where.append(r.site.in_(sites))
        counts_where.append(k.site.in_(sites))
    stmt = select(*dims, *(func.sum(r[m]).label(m) for m in MEASURES)).where(*where)
    if dims:
        stmt = stmt.group_by(*dims)
    out = Aggregate(columns=(*cols, "bucket"))
    with engine.connect() as conn:
        for row in conn.execute(stmt):
            key: Key = (*row[:len(cols)], row[len(cols)] if timed else None)
            out.rows[key] = dict(zip(MEASURES, row[len(dims):]))
        for reason, disposition, n in conn.execute(
                select(k.reason, k.disposition, func.sum(k.n)).where(*counts_where).group_by(k.reason, k.disposition)):
            if reason is None:
                out.dispositions[disposition or "unknown"] += int(n)
            else:
                out.exclusions[reason] += int(n)
    return out

"""Reporting: a month of CDRs for a 500-seat center aggregated by queue and 30-minute interval.

The data: CTID_BENCH_REPORT_CALLS calls (default 3,000,000: about 100,000 a day for 30 days,
08:00-20:00, 20 queues, 500 agents, one million caller numbers so first-call resolution has
repeats to find), 88 % answered, 6 % abandoned, 2 % short abandons, 1 % timeouts, 3 % outbound,
and 0.1 % bad rows (no end time) that every figure leaves out, in a SQLite file with the
store's own tables and indexes plus the screen pop's `ix_cdr_caller_t_offered` (first-call
resolution uses it when it is there).

- `ctid`: `report.build(..., by=["queue", "interval"])`, the whole report: every CDR measure,
  first-call resolution, exclusions and dispositions, 15-minute buckets rolled up to 30 minutes,
  read from the interval rollup (plugins/reporting/rollup.py) kept up to date as the daemon
  keeps it: every build refreshes it first, which finds nothing new here.
- `sql`: the same figures written by hand as plain SQL on sqlite3 over the raw rows, with the
  same plan as ctid's raw path (`NOT INDEXED` where ctid keeps SQLite off ix_cdr_t_offered for a
  long period; one GROUP BY for the measures, one correlated query for FCR, one for the
  exclusions and dispositions), no SQLAlchemy.
- also measured: ctid's raw path on the same month (`use_rollup=False`, one round), the month
  by agent (from the agent rollup; its totals must equal the by-queue report's), the one-time
  full rollup build of the month, and the incremental refresh after one more day's CDRs
  (CALLS / 30) are written (that day's buckets and, for FCR, the day before it).

The answers are compared (they must agree; after the new day, the rollup and the raw path too)
and timed in the same run. Target (issue "Reporting and QA plugins"): under 5 s. No test
asserts a time.
"""

from __future__ import annotations

import random
import sqlite3
import time
from datetime import datetime, timezone

import pytest

from benchlib import env_int
from ctid.store.engine import make_engine
from ctid.store.models import metadata
from ctid_plugins.reporting import rollup
from ctid_plugins.reporting.config import Options
from ctid_plugins.reporting.kpis import KPIS
from ctid_plugins.reporting.report import build

CALLS = env_int("CTID_BENCH_REPORT_CALLS", 3_000_000)
ROUNDS = env_int("CTID_BENCH_REPORT_ROUNDS", 3)
DAYS, QUEUES, AGENTS = 30, 20, 500
START = datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp()
END = START + DAYS * 86400
OPTIONS = Options(short_abandon=5, service_level=20, fcr_window=86400)


def _rows(n: int, days: range = range(DAYS), seed: int = 6, prefix: str = "c"):
    rnd = random.Random(seed)
    for i in range(n):
        day = rnd.choice(days)
        t = START + day * 86400 + 8 * 3600 + rnd.random() * 12 * 3600
        queue = f"q{rnd.randrange(QUEUES):02d}"
        agent = f"a{rnd.randrange(AGENTS):03d}"
        caller = f"+4420{rnd.randrange(1_000_000):07d}"
        r = rnd.random()
        direction, disposition, wait, talk, hold, acw = "inbound", "answered", rnd.expovariate(1 / 15), rnd.expovariate(1 / 200), 0.0, 15.0
        if r < 0.06:
            disposition, agent, talk, acw = "abandoned", None, 0.0, None
            wait = 5 + rnd.expovariate(1 / 40)
        elif r < 0.08:
            disposition, agent, talk, acw, wait = "abandoned", None, 0.0, None, rnd.random() * 5
        elif r < 0.09:
            disposition, agent, talk, acw, wait = "timeout", None, 0.0, None, 300.0
        elif r < 0.12:
            direction, queue = "outbound", None
        if disposition == "answered" and rnd.random() < 0.2:
            hold = rnd.expovariate(1 / 30)
        t_answered = t + wait if disposition == "answered" else None
        t_ended = (t_answered or t + wait) + talk + hold
        if rnd.random() < 0.001:
            t_ended = None
        yield ("hq", f"{prefix}{i}", caller, queue, agent, direction, t, t if queue else None, t_answered, t_ended,
               wait, talk, hold, acw, disposition, 1 if rnd.random() < 0.05 else 0)


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    path = tmp_path_factory.mktemp("reporting") / "month.db"
    engine = make_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    engine.dispose()
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(INSERT, _rows(CALLS))
    # the screen pop's caller history index, as a site running it has: FCR looks up repeats by it
    conn.execute("CREATE INDEX ix_cdr_caller_t_offered ON cdr (caller, t_offered)")
    conn.execute("ANALYZE")
    conn.close()
    return path


INSERT = ("INSERT INTO cdr (site, call_id, caller, queue, agent, direction, t_offered, t_queued, t_answered, t_ended,"
          " wait, talk, hold, acw, disposition, transfers) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")


PLAIN_SQL = """
SELECT queue, CAST(t_offered / 1800 AS INTEGER) AS b,
  SUM(direction IS NULL OR direction = 'inbound') AS offered,
  SUM(queue IS NOT NULL AND (direction IS NULL OR direction = 'inbound') AND disposition = 'answered' AND agent IS NOT NULL) AS answered,
  SUM(queue IS NOT NULL AND (direction IS NULL OR direction = 'inbound') AND disposition = 'abandoned' AND wait >= :short) AS abandoned,
  SUM(queue IS NOT NULL AND (direction IS NULL OR direction = 'inbound') AND NOT (disposition = 'abandoned' AND wait < :short)) AS acd_offered,
  SUM(queue IS NOT NULL AND (direction IS NULL OR direction = 'inbound') AND disposition = 'answered' AND agent IS NOT NULL AND wait <= :sl) AS in_sl,
  SUM(CASE WHEN queue IS NOT NULL AND (direction IS NULL OR direction = 'inbound') AND disposition = 'answered' AND agent IS NOT NULL THEN wait ELSE 0 END) AS answer_wait,
  SUM(CASE WHEN queue IS NOT NULL AND (direction IS NULL OR direction = 'inbound') AND disposition = 'abandoned' AND wait >= :short THEN wait ELSE 0 END) AS abandon_wait,
  SUM((direction IS NULL OR direction = 'inbound') AND disposition = 'answered' AND agent IS NOT NULL) AS handled,
  SUM(CASE WHEN (direction IS NULL OR direction = 'inbound') AND disposition = 'answered' AND agent IS NOT NULL
      THEN coalesce(talk, 0) + coalesce(hold, 0) + coalesce(acw, 0) ELSE 0 END) AS handle,
  SUM(direction = 'outbound') AS outbound
FROM cdr NOT INDEXED
WHERE t_offered >= :since AND t_offered < :until AND CASE WHEN t_ended IS NULL THEN 1
  WHEN t_ended < t_offered OR t_answered < t_offered OR t_answered > t_ended OR t_offered > :now THEN 1
  WHEN wait < 0 OR talk < 0 OR hold < 0 OR acw < 0 THEN 1 WHEN wait IS NULL THEN 1 ELSE 0 END = 0
GROUP BY queue, b
"""

PLAIN_FCR = """
SELECT c.queue, CAST(c.t_offered / 1800 AS INTEGER) AS b, COUNT(*),
  SUM(NOT EXISTS (SELECT 1 FROM cdr n WHERE n.caller = c.caller
      AND (n.t_offered > c.t_offered OR (n.t_offered = c.t_offered AND n.id > c.id))
      AND n.t_offered <= c.t_offered + :window AND (n.direction IS NULL OR n.direction = 'inbound')))
FROM cdr c NOT INDEXED
WHERE c.t_offered >= :since AND c.t_offered < :until AND CASE WHEN c.t_ended IS NULL THEN 1
  WHEN c.t_ended < c.t_offered OR c.t_answered < c.t_offered OR c.t_answered > c.t_ended OR c.t_offered > :now THEN 1
  WHEN c.wait < 0 OR c.talk < 0 OR c.hold < 0 OR c.acw < 0 THEN 1 WHEN c.wait IS NULL THEN 1 ELSE 0 END = 0
  AND (c.direction IS NULL OR c.direction = 'inbound') AND c.disposition = 'answered' AND c.agent IS NOT NULL
  AND c.caller IS NOT NULL
GROUP BY c.queue, b
"""

PLAIN_EXCLUDED = """
SELECT CASE WHEN t_ended IS NULL THEN 'missing_end'
  WHEN t_ended < t_offered OR t_answered < t_offered OR t_answered > t_ended OR t_offered > :now THEN 'clock_skew'
  WHEN wait < 0 OR talk < 0 OR hold < 0 OR acw < 0 THEN 'negative_duration'
  WHEN wait IS NULL THEN 'missing_wait' END AS reason, disposition, COUNT(*)
FROM cdr NOT INDEXED WHERE t_offered >= :since AND t_offered < :until GROUP BY reason, disposition
"""


def plain_sql(path, now: float) -> dict:
    conn = sqlite3.connect(path)
    try:
        p = {"since": START, "until": END, "now": now, "short": 5, "sl": 20, "window": 86400}
        rows = {(r[0], r[1]): r for r in conn.execute(PLAIN_SQL, p)}
        fcr = {(r[0], r[1]): r[2:] for r in conn.execute(PLAIN_FCR, p)}
        excluded: dict[str, int] = {}
        dispositions: dict[str, int] = {}
        for reason, disposition, n in conn.execute(PLAIN_EXCLUDED, p):
            if reason is None:
                dispositions[disposition] = dispositions.get(disposition, 0) + n
            else:
                excluded[reason] = excluded.get(reason, 0) + n
    finally:
        conn.close()
    return {"rows": rows, "fcr": fcr, "excluded": excluded, "dispositions": dispositions}


def _timed(fn, rounds: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(rounds):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def test_month_by_queue_and_interval(benchmark, report, month) -> None:
    now = END + 86400
    engine = make_engine(f"sqlite:///{month}")
    month_report = lambda: build(engine, START, END, ["queue", "interval"], OPTIONS, now=now)  # noqa: E731
    try:
        raw_s, raw = _timed(lambda: build(engine, START, END, ["queue", "interval"], OPTIONS, now=now,
                                          use_rollup=False), 1)
        build_s, built = _timed(lambda: rollup.refresh(engine, OPTIONS, now, rebuild=True), 1)
        ctid_s, ours = _timed(month_report, ROUNDS)
        agent_s, by_agent = _timed(lambda: build(engine, START, END, ["agent"], OPTIONS, now=now), ROUNDS)
        sql_s, plain = _timed(lambda: plain_sql(month, now), ROUNDS)
        benchmark.pedantic(month_report, rounds=1, iterations=1)

        # one more day of CDRs, as the store writes them, then the refresh that rolls them
        conn = sqlite3.connect(month)
        with conn:
            conn.executemany(INSERT, _rows(CALLS // DAYS, range(DAYS, DAYS + 1), seed=7, prefix="d"))
        conn.close()
        later = now + 86400
        day_s, day = _timed(lambda: rollup.refresh(engine, OPTIONS, later), 1)
        tail = [build(engine, END - 86400, END + 86400, ["queue", "interval"], OPTIONS, now=later, use_rollup=u)
                for u in (True, False)]
    finally:
        engine.dispose()

    # the answers agree, group by group: rollup vs plain SQL on the raw rows, rollup vs ctid's raw path
    assert ours.meta["source"] == "rollup" and built.rebuilt and not day.rebuilt
    total = {k: sum(r[i] for r in plain["rows"].values()) for i, k in ((2, "offered"), (3, "answered"), (4, "abandoned"))}
    assert {k: ours.total.kpis[k] for k in total} == total
    assert ours.exclusions == plain["excluded"] and ours.dispositions == plain["dispositions"]
    assert len(ours.rows) == len(plain["rows"]) == len(raw.rows)
    fcr_plain = sum(v[1] for v in plain["fcr"].values()) / sum(v[0] for v in plain["fcr"].values())
    assert ours.total.kpis["fcr"] == pytest.approx(fcr_plain)
    for a, b in ((ours, raw), (tail[0], tail[1])):
        assert [r.labels for r in a.rows] == [r.labels for r in b.rows]
        for x, y in zip([*a.rows, a.total], [*b.rows, b.total]):
            assert [k for k, v in x.kpis.items() if v is None] == [k for k, v in y.kpis.items() if v is None]
            assert {k: v for k, v in x.kpis.items() if v is not None} == pytest.approx(
                {k: v for k, v in y.kpis.items() if v is not None}, rel=1e-9)
    assert tail[0].meta["source"] == "rollup" and tail[0].total.kpis["offered"] > 0
    assert by_agent.meta["source"] == "rollup" and len(by_agent.rows) == AGENTS + 1  # + "(none)"
    assert {k.name: by_agent.total.kpis[k.name] for k in KPIS} == pytest.approx({k.name: ours.total.kpis[k.name] for k in KPIS})

    report.add("reporting.calls", "CDRs in the month", CALLS, "")
    report.add("reporting.groups", "queue x 30-min groups", len(ours.rows), "")
    report.add("reporting.ctid_s", "ctid report by queue,interval, rollup up to date (best round)", ctid_s, "s", ",.2f")
    report.add("reporting.sql_s", "plain SQL on sqlite3 over the raw rows, same figures (best round)", sql_s, "s", ",.2f")
    report.add("reporting.ratio", "plain SQL time / ctid time", sql_s / ctid_s, "x", ",.1f")
    report.add("reporting.raw_s", "ctid report from the raw rows, no rollup (one round)", raw_s, "s", ",.2f")
    report.add("reporting.agent_s", "ctid report by agent, month, agent rollup (best round)", agent_s, "s", ",.2f")
    report.add("reporting.build_s", "full rollup build of the month (once)", build_s, "s", ",.2f")
    report.add("reporting.day_s", f"incremental rollup of one new day ({CALLS // DAYS:,} CDRs)", day_s, "s", ",.2f")
    report.add("reporting.day_buckets", "buckets rolled again by that refresh", day.buckets, "")
    benchmark.extra_info.update(calls=CALLS, ctid_s=ctid_s, sql_s=sql_s, raw_s=raw_s, agent_s=agent_s, build_s=build_s,
                                day_s=day_s)

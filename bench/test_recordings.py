"""Recording index: bulk build, memory per recording, and q1-q4 against SQLite, in one run.

CTID_BENCH_RECORDINGS (default 2,000,000; the issue's figure is 10,000,000) synthetic
recordings of a 1,000-agent, 20-queue center at 27,400 recordings a day (so a day holds the
same number of recordings whatever the count), each with an 11-digit caller and one of 50
service numbers. The same recordings are written to SQLite through the store's own table and
indexes (`ctid.recordings.model.RECORDING`: start, agent+start, queue+start, team+start) and
built into the compiled index.

- build: the compiled segment from columns (the rate the issue targets, > 1 M/s); encoding
  recordings into columns and the full rebuild from the database (`RecordingStore.load_into`)
  are reported too, the rebuild extrapolated to 10 M.
- memory: the segment's arrays and posting lists per recording (target < 100 bytes).
- q1: one agent, one day, duration >= 60 s, newest 100; q2: number suffix 1234 over 7 days,
  100 rows; q3: count per queue per hour for one day; q4: q1 as that agent's principal (no agent
  filter). Each runs QUERIES times with a random agent and day, on the index (ids) and on
  SQLite (ids, the same SQL a hand-written report would use); both must give the same rows.
  Target: index >= 20x SQLite on every query. No test asserts a time.
"""

from __future__ import annotations

import random
import time

import pytest
from sqlalchemy import insert, text

from benchlib import env_int, percentiles

N = env_int("CTID_BENCH_RECORDINGS", 2_000_000)
QUERIES = env_int("CTID_BENCH_RECORDING_QUERIES", 300)
AGENTS, QUEUES, PER_DAY, DAY = 1000, 20, 27_400, 86_400.0
T0 = 1_767_225_600.0  # 2026-01-01 UTC
DAYS = max(8, N // PER_DAY)


def synthetic(n: int, seed: int = 42):
    """(id, start, duration, agent, queue, caller, called, direction, disposition, voicemail, qa), by start."""
    rnd = random.Random(seed)
    step = DAYS * DAY / n
    services = [f"0800{rnd.randrange(10**7):07d}" for _ in range(50)]
    dispositions = ("answered", "answered", "answered", "abandoned", "transferred")
    for i in range(n):
        a = rnd.randrange(AGENTS)
        yield (i + 1, T0 + i * step, rnd.expovariate(1 / 180.0), f"{1000 + a}", f"q{a % QUEUES}",
               f"0{rnd.randrange(10**10):010d}", services[i % 50], "inbound" if i % 7 else "outbound",
               dispositions[i % 5], i % 50 == 0, float(i % 100) if i % 10 == 0 else None)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The index (compiled), the SQLite store, and build figures."""
    from ctid.recordings.columns import Columns
    from ctid.recordings.index import RecordingIndex
    from ctid.recordings.model import RECORDING, Recording
    from ctid.recordings.store import RecordingStore

    url = f"sqlite:///{tmp_path_factory.mktemp('rec')}/bench.db"
    store = RecordingStore(url)
    index = RecordingIndex()
    cols = Columns()
    t = time.perf_counter()
    for (rid, start, dur, agent, queue, caller, called, direction, disp, vm, qa) in synthetic(N):
        index.columns_of(Recording(f"r{rid}", start, dur, agent=agent, queue=queue, team=queue, caller=caller,
                                   called=called, direction=direction, disposition=disp, voicemail=vm, qa_score=qa,
                                   id=rid), cols)
    encode_s = time.perf_counter() - t
    t = time.perf_counter()
    index.add_columns(cols)
    build_s = time.perf_counter() - t

    t = time.perf_counter()
    with store.engine.begin() as conn:
        batch = []
        for (rid, start, dur, agent, queue, caller, called, direction, disp, vm, qa) in synthetic(N):
            batch.append({"id": rid, "recording_id": f"r{rid}", "site": "hq", "call_id": f"c{rid}", "path": None,
                          "start": start, "duration": dur, "direction": direction, "caller": caller, "called": called,
                          "queue": queue, "agent": agent, "team": queue, "disposition": disp, "voicemail": vm,
                          "tags": [], "qa_score": qa})
            if len(batch) == 20_000:
                conn.execute(insert(RECORDING), batch)
                batch = []
        if batch:
            conn.execute(insert(RECORDING), batch)
        conn.exec_driver_sql("ANALYZE")
    load_s = time.perf_counter() - t

    rebuilt = RecordingIndex()
    t = time.perf_counter()
    store.load_into(rebuilt)
    rebuild_s = time.perf_counter() - t
    assert len(rebuilt) == len(index) == N
    del rebuilt
    yield {"index": index, "store": store, "encode_s": encode_s, "build_s": build_s, "load_s": load_s,
           "rebuild_s": rebuild_s}
    store.close()


def test_build_and_memory(benchmark, data, report):
    from ctid.recordings.index import CompiledSegment

    index = data["index"]
    seg = index.segments[0]
    cols = seg.columns()  # a second build from the same columns, timed by pytest-benchmark
    benchmark.pedantic(CompiledSegment, args=(cols,), rounds=3, iterations=1)
    per_rec = index.nbytes / N
    rate = N / data["build_s"]
    benchmark.extra_info.update({"recordings": N, "build_per_s": rate, "bytes_per_recording": per_rec,
                                 "rebuild_s": data["rebuild_s"]})
    report.add("recordings.count", "synthetic recordings", N, "")
    report.add("recordings.build_per_s", "compiled index build from columns", rate, "rec/s")
    report.add("recordings.encode_per_s", "recordings -> columns (Python, name coding)", N / data["encode_s"], "rec/s")
    report.add("recordings.rebuild_s", "rebuild from SQLite (load_into), measured", data["rebuild_s"], "s", ",.1f")
    report.add("recordings.rebuild_10m_s", "rebuild from SQLite, extrapolated to 10 M", data["rebuild_s"] * 1e7 / N, "s", ",.0f")
    report.add("recordings.sqlite_load_s", "SQLite insert incl. indexes (setup)", data["load_s"], "s", ",.1f")
    report.add("recordings.bytes_per_rec", "index memory per recording", per_rec, "bytes", ",.1f")


def _sql_ids(conn, sql: str, **params) -> list[int]:
    return [row[0] for row in conn.execute(text(sql), params)]


Q1_SQL = ("SELECT id FROM recording WHERE agent = :agent AND start >= :lo AND start < :hi AND duration >= 60 "
          "ORDER BY start DESC, id DESC LIMIT 100")
Q2_SQL = ("SELECT id FROM recording WHERE start >= :lo AND start < :hi AND (caller LIKE '%1234' OR called LIKE '%1234') "
          "ORDER BY start DESC, id DESC LIMIT 100")
Q3_SQL = ("SELECT queue, CAST((start - :lo) / 3600 AS INTEGER) AS h, count(*) FROM recording "
          "WHERE start >= :lo AND start < :hi GROUP BY queue, h")


def _time(fn) -> tuple[int, object]:
    t = time.perf_counter_ns()
    out = fn()
    return time.perf_counter_ns() - t, out


@pytest.mark.parametrize("name", ["q1", "q2", "q3", "q4"])
def test_queries_against_sqlite(benchmark, data, report, name):
    from ctid.recordings import ADMIN, Principal, Query

    index, engine = data["index"], data["store"].engine
    rnd = random.Random(name)
    ix_ns, sql_ns = [], []
    cases = []
    for _ in range(QUERIES):
        agent = f"{1000 + rnd.randrange(AGENTS)}"
        lo = T0 + rnd.randrange(DAYS - 7) * DAY
        cases.append((agent, lo))

    def index_query(agent: str, lo: float):
        if name == "q1":
            return index.search(ADMIN, Query(agents=(agent,), since=lo, until=lo + DAY, min_duration=60.0)).ids
        if name == "q2":
            return index.search(ADMIN, Query(suffix="1234", since=lo, until=lo + 7 * DAY)).ids
        if name == "q3":
            return index.count_by_queue(ADMIN, Query(since=lo, until=lo + DAY), lo, 3600.0, 24)
        return index.search(Principal("agent", (agent,)), Query(since=lo, until=lo + DAY, min_duration=60.0)).ids

    with engine.connect() as conn:
        def sql_query(agent: str, lo: float):
            if name in ("q1", "q4"):
                return _sql_ids(conn, Q1_SQL, agent=agent, lo=lo, hi=lo + DAY)
            if name == "q2":
                return _sql_ids(conn, Q2_SQL, lo=lo, hi=lo + 7 * DAY)
            return {(q, h): c for q, h, c in conn.execute(text(Q3_SQL), {"lo": lo, "hi": lo + DAY})}

        for agent, lo in cases[:20]:  # both give the same rows (and counts)
            assert index_query(agent, lo) == sql_query(agent, lo)
        # each side in a batch of its own: interleaved, every query would start with caches the
        # other side just emptied, which measures the machine more than the query
        for agent, lo in cases:
            ix_ns.append(_time(lambda: index_query(agent, lo))[0])
        for agent, lo in cases:
            sql_ns.append(_time(lambda: sql_query(agent, lo))[0])
    agent, lo = cases[0]
    benchmark.pedantic(index_query, args=(agent, lo), rounds=50, iterations=1)
    ix, sq = percentiles(ix_ns), percentiles(sql_ns)
    benchmark.extra_info.update({"index_us": ix, "sqlite_us": sq})
    report.add(f"recordings.{name}_index_p50_us", f"{name} index median", ix["p50"], "us", ",.1f")
    report.add(f"recordings.{name}_index_p99_us", f"{name} index p99", ix["p99"], "us", ",.1f")
    report.add(f"recordings.{name}_sqlite_p50_us", f"{name} SQLite median", sq["p50"], "us", ",.1f")
    report.add(f"recordings.{name}_sqlite_p99_us", f"{name} SQLite p99", sq["p99"], "us", ",.1f")
    report.add(f"recordings.{name}_speedup", f"{name} SQLite median / index median", sq["p50"] / ix["p50"], "x", ",.1f")

"""Memory: 10,000 concurrent calls and 5,000 agents in the live State model.

A fresh process (`memory_proc.py`) logs 5,000 agents on to two of 10 queues each, then
offers and queues 10,000 calls; 5,000 of them are delivered to and answered by one agent
each (every agent busy), 5,000 keep waiting. VmRSS (/proc/self/status) is read after the
daemon's imports (ctid.daemon: zmq, sqlalchemy, ...), after the agents and after the calls.
Only the State model is measured: the Asterisk mapper keeps its own per-call correlation
(channels, ids), which this does not include. The budget for the whole process is 300 MB
(a memory budget, asserted; not a timing).

The pytest-benchmark figure is the time to build that state from the same events in
this process (3 rounds).
"""

from __future__ import annotations

from benchlib import build_state, env_int

CALLS = env_int("CTID_BENCH_CALLS", 10_000)
AGENTS = env_int("CTID_BENCH_AGENTS", 5_000)
QUEUES = 10
BUDGET_MB = 300
MB = 1024 * 1024


def test_state_memory(benchmark, children, report) -> None:
    proc = children("memory_proc.py", str(CALLS), str(AGENTS), str(QUEUES))
    res = proc.recv(timeout=110)
    assert (res["calls"], res["agents"], res["busy"], res["waiting"]) == (CALLS, AGENTS, AGENTS, CALLS - AGENTS), res

    state = benchmark.pedantic(build_state, args=(CALLS, AGENTS, QUEUES), rounds=3, iterations=1)
    assert len(state.calls) == CALLS

    per_agent = (res["rss_agents"] - res["rss_start"]) / AGENTS
    per_call = (res["rss_calls"] - res["rss_agents"]) / CALLS
    benchmark.extra_info.update({**res, "bytes_per_agent": per_agent, "bytes_per_call": per_call})
    report.add("memory.rss_start_mb", "RSS after the daemon's imports", res["rss_start"] / MB, "MB", ",.1f")
    report.add("memory.rss_agents_mb", f"RSS with {AGENTS:,} agents logged on", res["rss_agents"] / MB, "MB", ",.1f")
    report.add("memory.rss_mb", f"RSS with {CALLS:,} calls + {AGENTS:,} agents", res["rss_calls"] / MB, "MB", ",.1f")
    report.add("memory.per_agent", "per agent (2 queues)", per_agent, "bytes")
    report.add("memory.per_call", "per call (offered..established / queued)", per_call, "bytes")
    report.add("memory.build_ms", "build time (median of 3, in-process)", benchmark.stats.stats.median * 1000, "ms", ",.1f")
    assert res["rss_calls"] < BUDGET_MB * MB, f"RSS {res['rss_calls'] / MB:.1f} MB is over the {BUDGET_MB} MB budget"

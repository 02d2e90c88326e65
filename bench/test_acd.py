"""The ACD matcher: µs per routing decision, both directions, against its baselines.

At 5,000 agents, 100 skills (3-8 per agent), 100 queues and 20,000 waiting calls (acdlib.py):

- `test_decisions[<impl>-offer]`: a call arrives while half the agents are ready (the 20,000
  waiting calls need a skill nobody has, so they stay put): the matcher picks an agent.
- `test_decisions[<impl>-agent_ready]`: an agent frees up while 20,000 calls wait in the queues
  it serves: the matcher picks the call it takes. After each timed decision the state is put
  back untimed (the call ends, another call arrives), so every decision sees the same load.
- impl `compiled` (`ctid._fast.matcher`) and `pure` (`PyMatcher`) run the full semantics (mixed
  strategies, two-skill requirements, tiers, escalation steps in effect); `sql` is the
  mod_callcenter-style SQLite selection on the simple longest-idle model (no skills), and
  `compiled_simple` is the compiled matcher on that same simple model.
- `test_scaling`: the compiled matcher from 500 to 50,000 agents (20,000 waiting calls).
- `test_explain_cost`: what `explain()` (the route.selected explanation) adds to a decision.
- `test_engine_route`: a whole `RoutingEngine.route()` (compiled matcher, with its route.request
  and route.selected events built and handed to a no-op publish, counters, the explanation):
  what a route point pays per call, against the bare matcher decision.

Every decision is timed alone with perf_counter_ns; medians and p99 go to the summary.
"""

from __future__ import annotations

import random
import time

import pytest

from acdlib import Center, SqlAcd, center_rules, load, make_center
from benchlib import env_int
from ctid.acd import COMPILED, Matcher, PyMatcher
from ctid.acd.decision import RouteRequest
from ctid.acd.engine import RoutingEngine
from ctid.metrics import Counters

AGENTS = env_int("CTID_BENCH_ACD_AGENTS", 5_000)
WAITING = env_int("CTID_BENCH_ACD_WAITING", 20_000)
DECISIONS = env_int("CTID_BENCH_ACD_DECISIONS", 5_000)
IMPLS = {"compiled": Matcher, "pure": PyMatcher, "compiled_simple": Matcher, "sql": SqlAcd}


def pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000  # ns -> µs


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0  # past every escalation step of the waiting calls (queued from 0 on)

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def build(impl: str, center: Center, direction: str, clock: Clock):
    rnd = random.Random(11)
    queues = list(center.needs)
    if impl == "sql":
        acd = SqlAcd(center)
        for i in range(WAITING):
            acd.offer(f"w{i}", rnd.choice(queues), 0, i * 0.01) if direction == "agent_ready" else \
                acd.db.execute("INSERT INTO members VALUES (?, ?, 0, ?, 'Waiting')", (f"w{i}", rnd.choice(queues), i * 0.01))
        if direction == "offer":
            for a, _, _ in center.agents[::2]:
                acd.db.execute("UPDATE agents SET status = 'Available', state = 'Waiting', last_bridge_end = ? "
                               "WHERE name = ?", (clock(), a))
        return acd
    m = load(IMPLS[impl](), center)
    if direction == "offer":
        m.add_skill("rare")
        for a, _, _ in center.agents[::2]:
            m.agent_ready(a, clock())
        for i in range(WAITING):  # nobody has "rare": these wait without being taken
            m.offer(f"w{i}", rnd.choice(queues), {"rare": 1}, 0, i * 0.01)
    else:
        for i in range(WAITING):  # no agent is ready yet: every call waits
            m.offer(f"w{i}", (q := rnd.choice(queues)), center.needs[q], rnd.choice((0, 0, 0, 5)), i * 0.01)
        for a, _, _ in center.agents:
            m.set_state(a, "not_ready", 0.0)
    return m


def run_offers(acd, impl: str, center: Center, clock: Clock, n: int) -> list[int]:
    rnd = random.Random(5)
    queues = list(center.needs)
    times = []
    perf = time.perf_counter_ns
    for i in range(n):
        q = rnd.choice(queues)
        now = clock()
        if impl == "sql":
            t0 = perf()
            agent = acd.offer(f"n{now}", q, 0, now)
            times.append(perf() - t0)
            if agent is not None:
                acd.db.execute("UPDATE agents SET state = 'Waiting', last_bridge_end = ? WHERE name = ?", (now, agent))
            else:
                acd.db.execute("DELETE FROM members WHERE uuid = ?", (f"n{now}",))
            continue
        t0 = perf()
        agent = acd.offer(f"n{now}", q, center.needs[q], 0, now)
        times.append(perf() - t0)
        if agent is not None:
            acd.call_ended(agent, now, acw=False)
            acd.agent_ready(agent, now)
        else:
            acd.remove_call(f"n{now}")
    return times


def run_agent_ready(acd, impl: str, center: Center, clock: Clock, n: int) -> list[int]:
    rnd = random.Random(6)
    queues = list(center.needs)
    agents = [a for a, _, _ in center.agents]
    times = []
    perf = time.perf_counter_ns
    for i in range(n):
        agent = rnd.choice(agents)
        now = clock()
        t0 = perf()
        call = acd.agent_ready(agent, now)
        times.append(perf() - t0)
        q = rnd.choice(queues)
        if impl == "sql":
            acd.call_ended(agent)
            if call is not None:
                acd.offer(f"r{now}", q, 0, now)  # keeps the pool at WAITING (no agent is available)
            continue
        if call is not None:
            acd.call_ended(agent, now, acw=False)
            acd.offer(f"r{now}", q, center.needs[q], 0, now)
        else:
            acd.set_state(agent, "not_ready", now)
    return times


@pytest.mark.skipif(not COMPILED, reason="the compiled matcher is not built")
@pytest.mark.parametrize("direction", ["offer", "agent_ready"])
@pytest.mark.parametrize("impl", list(IMPLS))
def test_decisions(benchmark, report, impl: str, direction: str) -> None:
    center = make_center(AGENTS, full=impl in ("compiled", "pure"))
    clock = Clock()
    acd = build(impl, center, direction, clock)
    run = run_offers if direction == "offer" else run_agent_ready
    run(acd, impl, center, clock, 200)  # warm-up (caches, branch predictors, SQLite pages)
    times: list[int] = []
    benchmark.pedantic(lambda: times.extend(run(acd, impl, center, clock, DECISIONS)), rounds=1, iterations=1)
    med, p99 = pct(times, 0.5), pct(times, 0.99)
    benchmark.extra_info.update(median_us=med, p99_us=p99, decisions=len(times))
    label = {"offer": "call arrives", "agent_ready": "agent ready"}[direction]
    report.add(f"acd.{impl}_{direction}_median_us", f"{impl}, {label}: median µs/decision", med, "µs", ",.2f")
    report.add(f"acd.{impl}_{direction}_p99_us", f"{impl}, {label}: p99 µs/decision", p99, "µs", ",.2f")


@pytest.mark.skipif(not COMPILED, reason="the compiled matcher is not built")
def test_scaling(benchmark, report) -> None:
    sizes = (500, 5_000, 50_000)

    def measure() -> None:
        for n in sizes:
            center = make_center(n)
            for direction, run in (("offer", run_offers), ("agent_ready", run_agent_ready)):
                clock = Clock()
                acd = build("compiled", center, direction, clock)
                times = run(acd, "compiled", center, clock, DECISIONS)
                report.add(f"acd.scale_{n}_{direction}_median_us", f"compiled, {n:,} agents, {direction}: median",
                           pct(times, 0.5), "µs", ",.2f")
                report.add(f"acd.scale_{n}_{direction}_p99_us", f"compiled, {n:,} agents, {direction}: p99",
                           pct(times, 0.99), "µs", ",.2f")

    benchmark.pedantic(measure, rounds=1, iterations=1)


@pytest.mark.skipif(not COMPILED, reason="the compiled matcher is not built")
def test_explain_cost(benchmark, report) -> None:
    center = make_center(AGENTS)
    clock = Clock()
    m = build("compiled", center, "offer", clock)
    rnd = random.Random(9)
    queues = list(center.needs)
    perf = time.perf_counter_ns
    plain, explained = [], []

    def measure() -> None:
        for i in range(DECISIONS):
            q, now = rnd.choice(queues), clock()
            t0 = perf()
            agent = m.offer(f"e{now}", q, center.needs[q], 0, now)
            t1 = perf()
            m.explain()
            t2 = perf()
            plain.append(t1 - t0)
            explained.append(t2 - t0)
            if agent is not None:
                m.call_ended(agent, now, acw=False)
                m.agent_ready(agent, now)
            else:
                m.remove_call(f"e{now}")

    benchmark.pedantic(measure, rounds=1, iterations=1)
    report.add("acd.explain_median_us", "compiled offer + explain(): median µs", pct(explained, 0.5), "µs", ",.2f")
    report.add("acd.explain_share_pct", "explain() share of a decision (median)",
               100 * (pct(explained, 0.5) - pct(plain, 0.5)) / pct(explained, 0.5), "%", ",.0f")


@pytest.mark.skipif(not COMPILED, reason="the compiled matcher is not built")
def test_engine_route(benchmark, report) -> None:
    center = make_center(AGENTS)
    engine = RoutingEngine(center_rules(center), lambda event: None, Counters(), agent_state=lambda agent: "ready")
    clock = Clock()
    for a, _, _ in center.agents[::2]:
        engine.observe({"type": "agent.ready", "agent": a, "ts": clock()})
    rnd = random.Random(10)
    queues = list(center.needs)
    perf = time.perf_counter_ns
    times: list[int] = []

    def measure() -> None:
        for _ in range(DECISIONS):
            q, now = rnd.choice(queues), clock()
            call = f"g{now}"
            t0 = perf()
            engine.route(RouteRequest(call, q), now)
            times.append(perf() - t0)
            engine.leave(call, now)  # untimed: the agent (or the queue) as it was

    benchmark.pedantic(measure, rounds=1, iterations=1)
    report.add("acd.engine_route_median_us", "engine.route() with events: median µs", pct(times, 0.5), "µs", ",.2f")
    report.add("acd.engine_route_p99_us", "engine.route() with events: p99 µs", pct(times, 0.99), "µs", ",.2f")

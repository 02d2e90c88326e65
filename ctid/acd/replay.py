"""What-if: replay recorded calls through the routing engine under other rules or staffing.

`replay(cdrs, rules)` takes the queued calls of a recorded period (cdr rows: queue, caller,
when they queued, how long they were handled, how long an abandoning caller waited) and runs
them through a `RoutingEngine` built from `rules`, on a virtual clock: arrivals at their
recorded times, each connected call busy for its recorded handle time (talk + hold; a call
that was not answered gets its queue's mean), each caller who abandoned in reality hanging up
after the same wait if still waiting then. `actual(cdrs)` computes the same figures from what
really happened, so the two print side by side (`ctid routing replay`).

Assumptions (said in the output too): every agent of `rules` is logged in and ready for the
whole period; callers who were answered in reality would have waited forever; wrap-up,
escalation, max wait and fallbacks are the rules'. Deterministic: same rows, same figures.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ctid.acd.decision import Decision, RouteRequest
from ctid.acd.engine import RoutingEngine
from ctid.acd.rules import RoutingRules
from ctid.metrics import Counters

TICK = 1.0  # virtual seconds between timer runs (ACW ends, escalation steps, max waits)
HORIZON = 86_400.0  # after the last arrival, calls still waiting this long count as never served


@dataclass
class Figures:
    """Service figures of one queue (or all): `sl` is the share of offered calls answered
    within the threshold; `asa` the mean wait of answered calls; `occupancy` the handled time
    over the agents' available time."""

    offered: int = 0
    answered: int = 0
    in_sl: int = 0
    abandoned: int = 0
    elsewhere: int = 0  # fallback, rejected, never served: left without an agent and without hanging up
    wait_answered: float = 0.0
    handled: float = 0.0

    def row(self, agents: int, span: float) -> dict[str, Any]:
        return {"offered": self.offered, "answered": self.answered,
                "sl": self.in_sl / self.offered if self.offered else None,
                "asa": self.wait_answered / self.answered if self.answered else None,
                "abandon_rate": self.abandoned / self.offered if self.offered else None,
                "elsewhere": self.elsewhere,
                "occupancy": self.handled / (agents * span) if agents and span > 0 else None}


@dataclass
class _Call:
    id: str
    queue: str
    caller: str | None
    t: float
    handle: float
    patience: float  # inf: would have waited forever
    agent: str | None = None
    done: bool = False


@dataclass
class Result:
    queues: dict[str, Figures] = field(default_factory=dict)
    total: Figures = field(default_factory=Figures)


def _calls(cdrs: Iterable[Mapping[str, Any]]) -> list[_Call]:
    rows = [r for r in cdrs if r.get("queue") and (r.get("t_queued") or r.get("t_offered")) is not None]
    handled: dict[str, list[float]] = {}
    for r in rows:
        if r.get("t_answered") is not None:
            handled.setdefault(r["queue"], []).append((r.get("talk") or 0.0) + (r.get("hold") or 0.0))
    means = {q: sum(v) / len(v) for q, v in handled.items()}
    out = []
    for r in rows:
        t = r.get("t_queued") or r["t_offered"]
        answered = r.get("t_answered") is not None
        handle = (r.get("talk") or 0.0) + (r.get("hold") or 0.0) if answered else means.get(r["queue"], 60.0)
        patience = float("inf") if answered or r.get("disposition") != "abandoned" else (r.get("wait") or 0.0)
        out.append(_Call(str(r["call_id"]), r["queue"], r.get("caller"), float(t), max(0.0, handle), patience))
    out.sort(key=lambda c: (c.t, c.id))
    return out


def replay(cdrs: Iterable[Mapping[str, Any]], rules: RoutingRules, sl_threshold: float = 20.0) -> Result:
    """The figures the recorded calls would have had under `rules` (see the module docstring)."""
    calls = _calls(cdrs)
    result = Result()
    if not calls:
        return result
    by_id = {c.id: c for c in calls}
    states = {a: "ready" for a in rules.agents}
    engine = RoutingEngine(rules, lambda event: None, Counters(), agent_state=states.get)
    timeline: list[tuple[float, int, str, str]] = []  # (t, order, kind, call id)
    order = itertools.count()

    def figures(queue: str) -> Figures:
        return result.queues.setdefault(queue, Figures())

    waiting: set[str] = set()  # arrived, neither answered nor gone

    def settle(c: _Call, d: Decision, now: float) -> None:
        if d.action in ("agent", "fallback", "reject"):
            waiting.discard(c.id)
        if d.action == "agent" and d.agent is not None:
            c.agent = d.agent
            wait = now - c.t
            for f in (figures(c.queue), result.total):
                f.answered += 1
                f.in_sl += wait <= sl_threshold
                f.wait_answered += wait
                f.handled += c.handle
            heapq.heappush(timeline, (now + c.handle, next(order), "end", c.id))
        elif d.action in ("fallback", "reject"):
            c.done = True
            for f in (figures(c.queue), result.total):
                f.elsewhere += 1

    clock = [calls[0].t]
    engine.listen(lambda d: settle(by_id[d.call_id], d, clock[0]))
    for agent in rules.agents:
        engine.observe({"type": "agent.ready", "agent": agent, "ts": calls[0].t})
    for c in calls:
        heapq.heappush(timeline, (c.t, next(order), "arrive", c.id))
    next_tick = calls[0].t
    horizon = calls[-1].t + HORIZON
    while timeline or (waiting and next_tick <= horizon):
        t = timeline[0][0] if timeline else next_tick
        while next_tick <= t:  # the engine's timers, as the daemon's tick task runs them
            clock[0] = next_tick
            engine.tick(next_tick)
            next_tick += TICK
        if not timeline or timeline[0][0] > t:
            continue  # only timers were due (a wrap-up ended, a step applied, a max wait ran out)
        t, _, kind, call_id = heapq.heappop(timeline)
        clock[0] = t
        c = by_id[call_id]
        if kind == "arrive":
            for f in (figures(c.queue), result.total):
                f.offered += 1
            waiting.add(c.id)
            settle(c, engine.route(RouteRequest(c.id, c.queue, c.caller, source="replay"), now=t), t)
            if c.agent is None and not c.done and c.patience != float("inf"):
                heapq.heappush(timeline, (t + c.patience, next(order), "give_up", c.id))
        elif kind == "give_up":
            if c.agent is None and not c.done and engine.leave(c.id, t):
                c.done = True
                waiting.discard(c.id)
                for f in (figures(c.queue), result.total):
                    f.abandoned += 1
        else:  # the agent's call ends: wrap-up by the rules, then the next call
            engine.observe({"type": "call.cleared", "call_id": c.id, "agent": c.agent, "ts": t})
    for c in calls:  # still waiting a day after the last arrival: nobody could ever take it
        if c.agent is None and not c.done:
            for f in (figures(c.queue), result.total):
                f.elsewhere += 1
    return result


def actual(cdrs: Iterable[Mapping[str, Any]], sl_threshold: float = 20.0) -> tuple[Result, int]:
    """What really happened to the same calls, and how many distinct agents answered them."""
    result = Result()
    agents = set()
    for r in cdrs:
        if not r.get("queue") or (r.get("t_queued") or r.get("t_offered")) is None:
            continue
        for f in (result.queues.setdefault(r["queue"], Figures()), result.total):
            f.offered += 1
            if r.get("t_answered") is not None:
                wait = r.get("wait") or 0.0
                f.answered += 1
                f.in_sl += wait <= sl_threshold
                f.wait_answered += wait
                f.handled += (r.get("talk") or 0.0) + (r.get("hold") or 0.0)
            elif r.get("disposition") == "abandoned":
                f.abandoned += 1
            else:
                f.elsewhere += 1
        if r.get("t_answered") is not None and r.get("agent"):
            agents.add(r["agent"])
    return result, len(agents)

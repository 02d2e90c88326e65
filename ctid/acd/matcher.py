"""The ACD matcher, pure Python: the specification of who gets which call.

`_fast/matcher.pyx` is the compiled twin (same API, same decisions, same errors) and
`ctid.acd.Matcher` is whichever is available. docs/routing.md explains the rules with a worked
example; the short version:

- offer: among the READY agents of the call's queue that have every required skill at the
  required level, take the lowest penalty tier that has one, then the queue's strategy picks;
  if nobody qualifies the call waits (and may overflow to other queues by escalation step).
- agent ready: among the waiting calls of the agent's queues that it qualifies for, take the
  highest priority, then the longest wait x the queue's weight, then the earliest offered.

Indexes, so that a decision never scans every agent or call: per (queue, penalty tier) a list of
ready agents kept sorted by the strategy's key; per queue a list of waiting calls kept sorted by
(-priority, queued at, offer order). A decision walks them in order until the first candidate
that qualifies (best_skill reads the whole lowest qualifying tier: its score depends on the call).
Ties are broken by registration order (agents) and offer order (calls), so the same operations
always give the same decisions.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort
from typing import Any, Mapping

from ctid.acd.model import (
    ACW, BUSY, LOGGED_OUT, NOT_READY, READY, STATES, STRATEGIES, MatchError, Step,
    check_agent, check_level, check_now, check_priority, check_queue, check_stats,
)
from ctid.acd.records import AgentRec, CallRec, QueueRec, open_from, qualifies

LONGEST_IDLE, ROUND_ROBIN, FEWEST_CALLS, LEAST_OCCUPIED, BEST_SKILL = range(5)
_ACW_TIMER, _STEP_TIMER = 0, 1
_OPS = ("none", "offer", "agent_ready", "tick")


class PyMatcher:
    """The matcher (see the module docstring). Every refused operation raises `MatchError`
    and changes nothing."""

    def __init__(self) -> None:
        self._queues: dict[Any, QueueRec] = {}
        self._agents: dict[Any, AgentRec] = {}
        self._by_seq: list[AgentRec] = []
        self._skills: set[Any] = set()
        self._calls: dict[Any, CallRec] = {}
        self._by_call_seq: dict[int, CallRec] = {}  # waiting calls by offer order
        self._call_seq = 0
        self._timers: list[tuple[float, int, int, int, int]] = []  # (due, seq, kind, agent/call seq, gen)
        self._timer_seq = 0
        self._last = (0, None, 0, None, -1, 0)  # op, winner, considered, queue, penalty, step

    # -- configuration ------------------------------------------------------------------
    def add_skill(self, skill: Any) -> None:
        """Make a skill known (agents' skills are known by `add_agent` already)."""
        self._skills.add(skill)

    def add_queue(self, name: Any, strategy: str = "longest_idle", weight: float = 1.0,
                  wrapup: float = 0.0, steps: tuple[Step, ...] = ()) -> None:
        code, weight, wrapup, checked = check_queue(name, strategy, weight, wrapup, steps, self._queues, self._skills)
        self._queues[name] = QueueRec(name, code, weight, wrapup, checked)

    def add_agent(self, agent: Any, skills: Mapping[Any, int], queues: Mapping[Any, int]) -> None:
        """A new agent, logged out. skills: {skill: level 1-10}; queues: {queue: penalty >= 0}."""
        check_agent(agent, skills, queues, self._agents, self._queues)
        self._skills.update(skills)
        a = AgentRec(agent, len(self._by_seq), dict(skills), dict(queues))
        for name, penalty in a.queues.items():
            q = self._queues[name]
            if penalty not in q.penalties:
                i = bisect_left(q.penalties, penalty)
                q.penalties.insert(i, penalty)
                q.tiers.insert(i, [])
        self._agents[agent] = a
        self._by_seq.append(a)

    def set_stats(self, agent: Any, calls_today: int | None = None, occupancy: float | None = None) -> None:
        """Set an agent's calls today and/or occupancy (the keys of two strategies)."""
        a = self._agent(agent)
        check_stats(calls_today, occupancy)
        ready = a.state == READY
        if ready:
            self._unindex(a)
        if calls_today is not None:
            a.calls_today = calls_today
        if occupancy is not None:
            a.occupancy = float(occupancy)
        if ready:
            self._index(a)

    # -- agent state -------------------------------------------------------------------
    def set_state(self, agent: Any, state: str, now: float, reason: Any = None) -> Any:
        """logged_out / ready / not_ready(reason) / busy (a call outside the matcher).
        `ready` is `agent_ready` and returns the call matched, if any; acw comes from call_ended."""
        check_now(now)
        a = self._agent(agent)
        if state not in STATES:
            raise MatchError("unknown_state", repr(state))
        code = STATES.index(state)
        if code == READY:
            return self.agent_ready(agent, now)
        if code == ACW:
            raise MatchError("bad_transition", "acw starts with call_ended")
        if a.state == BUSY:
            raise MatchError("bad_transition", f"agent {agent!r} is busy: call_ended first")
        if code == BUSY and a.state == LOGGED_OUT:
            raise MatchError("bad_transition", f"agent {agent!r} is logged out")
        self._leave(a)
        a.state, a.reason = code, (reason if code == NOT_READY else None)
        return None

    def agent_ready(self, agent: Any, now: float) -> Any:
        """The agent becomes ready: returns the call it takes now (it is busy with it), or None."""
        check_now(now)
        a = self._agent(agent)
        if a.state in (READY, BUSY):
            raise MatchError("bad_transition", f"agent {agent!r} is {STATES[a.state]}")
        self._leave(a)
        return self._make_ready(a, now)

    def call_ended(self, agent: Any, now: float, acw: bool = True) -> Any:
        """The agent's call ended: after-call work for its queue's wrap-up time then ready
        (`tick`), or ready at once if the wrap-up is 0 (returns the call matched, if any);
        with acw=False the agent stays not_ready."""
        check_now(now)
        a = self._agent(agent)
        if a.state != BUSY:
            raise MatchError("bad_transition", f"agent {agent!r} is {STATES[a.state]}, not busy")
        wrapup = 0.0
        if a.call is not None:
            wrapup = a.call.queue.wrapup
            del self._calls[a.call.id]
            a.call = None
        a.gen += 1
        if not acw:
            a.state, a.reason = NOT_READY, None
            return None
        if wrapup > 0:
            a.state = ACW
            self._timer_seq += 1
            heapq.heappush(self._timers, (now + wrapup, self._timer_seq, _ACW_TIMER, a.seq, a.gen))
            return None
        return self._make_ready(a, now)

    # -- calls ----------------------------------------------------------------------------
    def offer(self, call: Any, queue: Any, requirements: Mapping[Any, int], priority: int, now: float) -> Any:
        """A call arrives: returns the agent chosen (now busy with it), or None (the call waits)."""
        check_now(now)
        if call in self._calls:
            raise MatchError("duplicate_call", repr(call))
        q = self._queues.get(queue)
        if q is None:
            raise MatchError("unknown_queue", repr(queue))
        for skill, level in requirements.items():
            if skill not in self._skills:
                raise MatchError("unknown_skill", repr(skill))
            check_level(skill, level)
        check_priority(priority)
        self._call_seq += 1
        c = CallRec(call, self._call_seq, q, priority, now, dict(requirements))
        for step, start in zip(q.steps, c.froms):
            oq = self._queues[step.overflow] if step.overflow is not None else None
            if oq is not None and all(oq is not seen for seen, _ in c.overflow):
                c.overflow.append((oq, start))
        self._calls[call] = c
        a = self._select_agent(c, now, 1)
        if a is not None:
            return a
        key = (-priority, now, c.seq)
        insort(q.calls, key)
        for oq, _ in c.overflow:
            insort(oq.calls, key)
        self._by_call_seq[c.seq] = c
        for start in c.froms:
            if start > now:
                self._timer_seq += 1
                heapq.heappush(self._timers, (start, self._timer_seq, _STEP_TIMER, c.seq, 0))
        return None

    def remove_call(self, call: Any) -> None:
        """A waiting call leaves (abandoned, timed out, answered elsewhere)."""
        c = self._calls.get(call)
        if c is None:
            raise MatchError("unknown_call", repr(call))
        if not c.waiting:
            raise MatchError("bad_transition", f"call {call!r} is with an agent: call_ended")
        self._unwait(c)
        del self._calls[call]

    def tick(self, now: float) -> list[tuple[Any, Any]]:
        """Apply the timers due by `now`, each at its own due time, in (due, creation) order:
        ACW ends (the agent becomes ready and may take a call) and escalation steps (the call,
        with its relaxed requirement, is offered again). Returns the [(call, agent)] matched."""
        check_now(now)
        out: list[tuple[Any, Any]] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            due, _, kind, ref, gen = heapq.heappop(timers)
            if kind == _ACW_TIMER:
                a = self._by_seq[ref]
                if a.state == ACW and a.gen == gen:
                    got = self._make_ready(a, due)
                    if got is not None:
                        out.append((got, a.id))
            else:
                c = self._by_call_seq.get(ref)
                if c is not None:
                    self._unwait(c)  # re-queued below if nobody takes it (same keys, same place)
                    a = self._select_agent(c, due, 3)
                    if a is None:
                        self._rewait(c)
                    else:
                        out.append((c.id, a))
        return out

    # -- introspection (not on the hot path) -----------------------------------------
    def explain(self) -> dict[str, Any]:
        """The last decision: op, winner, candidates considered, queue, tier (penalty), step."""
        op, winner, considered, queue, penalty, step = self._last
        q = self._queues.get(queue) if queue is not None else None
        return {"op": _OPS[op], "winner": winner, "considered": considered, "queue": queue,
                "tier": penalty if penalty >= 0 else None,
                "rule": STRATEGIES[q.strategy] if q is not None and op != 2 else ("priority_wait" if op == 2 else None),
                "step": step}

    def agent_state(self, agent: Any) -> tuple[str, Any, Any]:
        """(state, not_ready reason, call id while busy with a matched call)."""
        a = self._agent(agent)
        return STATES[a.state], a.reason, (a.call.id if a.call is not None else None)

    def ready_agents(self, queue: Any) -> list[tuple[int, Any]]:
        """[(penalty, agent)] of the queue in index order (tier, then strategy key)."""
        q = self._queue(queue)
        return [(p, self._by_seq[k[2]].id) for p, tier in zip(q.penalties, q.tiers) for k in tier]

    def waiting_calls(self, queue: Any) -> list[Any]:
        """The calls waiting in (or overflowed into) the queue, in order."""
        return [self._by_call_seq[k[2]].id for k in self._queue(queue).calls]

    def requirement(self, call: Any, now: float) -> dict[Any, int]:
        """The requirement of a known call at `now` (escalation steps applied)."""
        check_now(now)
        c = self._calls.get(call)
        if c is None:
            raise MatchError("unknown_call", repr(call))
        return dict(c.stages[c.stage(now)])

    # -- internals --------------------------------------------------------------------
    def _agent(self, agent: Any) -> AgentRec:
        a = self._agents.get(agent)
        if a is None:
            raise MatchError("unknown_agent", repr(agent))
        return a

    def _queue(self, queue: Any) -> QueueRec:
        q = self._queues.get(queue)
        if q is None:
            raise MatchError("unknown_queue", repr(queue))
        return q

    def _key(self, a: AgentRec, q: QueueRec) -> tuple[float, float, int]:
        s = q.strategy
        if s == ROUND_ROBIN:
            return (0.0, 0.0, a.seq)
        if s == FEWEST_CALLS:
            return (float(a.calls_today), a.idle_since, a.seq)
        if s == LEAST_OCCUPIED:
            return (a.occupancy, a.idle_since, a.seq)
        return (a.idle_since, 0.0, a.seq)  # longest_idle, best_skill

    def _index(self, a: AgentRec) -> None:
        a.keys = []
        for name, penalty in a.queues.items():
            q = self._queues[name]
            key = self._key(a, q)
            insort(q.tiers[q.penalties.index(penalty)], key)
            a.keys.append(key)

    def _unindex(self, a: AgentRec) -> None:
        for (name, penalty), key in zip(a.queues.items(), a.keys):
            q = self._queues[name]
            tier = q.tiers[q.penalties.index(penalty)]
            del tier[bisect_left(tier, key)]
        a.keys = []

    def _leave(self, a: AgentRec) -> None:
        """Out of the ready index / ACW timer, before any state change."""
        if a.state == READY:
            self._unindex(a)
        a.gen += 1

    def _make_ready(self, a: AgentRec, now: float) -> Any:
        a.state, a.reason, a.idle_since = READY, None, now
        c, queue, penalty, step, considered = self._select_call(a, now)
        self._last = (2, c.id if c else None, considered, queue, penalty, step)
        if c is None:
            self._index(a)
            return None
        self._unwait(c)
        self._assign(c, a)
        return c.id

    def _select_call(self, a: AgentRec, now: float) -> tuple[CallRec | None, Any, int, int, int]:
        best: CallRec | None = None
        best_queue, best_penalty, best_step, considered = None, -1, 0, 0
        best_eff = 0.0
        skills = a.skills
        for name, penalty in a.queues.items():
            q = self._queues[name]
            for key in q.calls:
                considered += 1
                c = self._by_call_seq[key[2]]
                if c.queue is not q and open_from(c, q) > now:
                    continue
                step = c.stage(now)
                if not qualifies(skills, c.stages[step]):
                    continue
                eff = (now - c.queued) * q.weight
                if best is None or c.priority > best.priority or (
                        c.priority == best.priority and (eff > best_eff or (eff == best_eff and c.seq < best.seq))):
                    best, best_eff, best_queue, best_penalty, best_step = c, eff, name, penalty, step
                break  # the first that qualifies is this queue's best
        return best, best_queue, best_penalty, best_step, considered

    def _select_agent(self, c: CallRec, now: float, op: int) -> Any:
        step = c.stage(now)
        req = c.stages[step]
        considered = 0
        targets = [(c.queue, now)] + c.overflow
        for q, start in targets:
            if start > now:
                continue
            for penalty, tier in zip(q.penalties, q.tiers):
                a, n = self._pick(q, tier, req)
                considered += n
                if a is not None:
                    self._last = (op, a.id, considered, q.name, penalty, step)
                    if q.strategy == ROUND_ROBIN:
                        q.rr_last = a.seq
                    self._unindex(a)
                    a.gen += 1
                    self._assign(c, a)
                    return a.id
        self._last = (op, None, considered, None, -1, step)
        return None

    def _pick(self, q: QueueRec, tier: list[tuple[float, float, int]], req: dict[Any, int]) -> tuple[AgentRec | None, int]:
        by_seq = self._by_seq
        n = 0
        if q.strategy == BEST_SKILL:
            best, score = None, -1
            for key in tier:
                n += 1
                a = by_seq[key[2]]
                if qualifies(a.skills, req):
                    s = sum(a.skills[k] for k in req)
                    if s > score:
                        best, score = a, s
            return best, n
        order = tier
        if q.strategy == ROUND_ROBIN:
            i = bisect_right(tier, (0.0, 0.0, q.rr_last))
            order = tier[i:] + tier[:i]
        for key in order:
            n += 1
            a = by_seq[key[2]]
            if qualifies(a.skills, req):
                return a, n
        return None, n

    def _assign(self, c: CallRec, a: AgentRec) -> None:
        c.waiting = False
        a.state, a.reason, a.call = BUSY, None, c
        a.calls_today += 1

    def _unwait(self, c: CallRec) -> None:
        if c.seq not in self._by_call_seq:
            return
        key = (-c.priority, c.queued, c.seq)
        for q in [c.queue] + [oq for oq, _ in c.overflow]:
            del q.calls[bisect_left(q.calls, key)]
        del self._by_call_seq[c.seq]

    def _rewait(self, c: CallRec) -> None:
        key = (-c.priority, c.queued, c.seq)
        for q in [c.queue] + [oq for oq, _ in c.overflow]:
            insort(q.calls, key)
        self._by_call_seq[c.seq] = c

"""A seeded call center on a virtual clock: Poisson arrivals, queues, agents, talk.

`CallCenter` keeps a heap of timed steps. `advance(until)` runs every step due by
virtual time `until`, in (time, order-of-scheduling) order, so the happenings do
not depend on how often or how late the caller advances the clock: the same seed
gives the same happenings. Every random draw comes from one `random.Random(seed)`
and is made inside a step, never at a wall-clock moment.

Each happening goes synchronously to the sinks, *after* the state it describes was
applied (an agent that stops ringing is idle when `ring_noanswer` is delivered), so
a renderer may read the live model to fill in what the happening does not carry.
What an answered call does (hold, transfers, the end of the talk) is in `talk.py`; wire
control (originate, pause, members, hangup, redirect) is in `control.py`.
"""

from __future__ import annotations

import heapq
import itertools
import random
from typing import Any, Callable

from ctid.sim.callers import CallerPool
from ctid.sim.control import Control
from ctid.sim.model import Agent, Call, Happening, Membership, Queue, SimConfig
from ctid.sim.talk import Talk

Sink = Callable[[Happening], None]


class CallCenter(Talk, Control):
    """The PBX-neutral call center. `traffic=False` gives a quiet PBX that only does what it is told."""

    def __init__(self, config: SimConfig | None = None, seed: int | None = None, *, traffic: bool = True,
                 sink: Sink | None = None) -> None:
        self.config = config or SimConfig.default()
        self.b = self.config.behaviour
        self.seed = seed if seed is not None else random.SystemRandom().randrange(1 << 31)
        self.rng = random.Random(self.seed)
        self.callers = CallerPool(self.rng, self.b.withheld)
        self.now = 0.0
        self.traffic = traffic
        self.sinks: list[Sink] = [sink] if sink else []
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._order = itertools.count()
        self._ids = itertools.count(1)
        self._kicked: set[str] = set()
        # Route-point mode: the queues do not pick agents; each queued call is handed to `router`
        # once, and whoever routes answers with `connect_routed` or `fallback_routed`.
        self.router: Callable[[Call], None] | None = None
        self._asked: set[int] = set()
        self.queues: dict[str, Queue] = {q.name: Queue(q) for q in self.config.queues}
        self.agents: dict[str, Agent] = {}
        self.calls: dict[int, Call] = {}
        for spec in self.config.agents:
            agent = self.agents[spec.extension] = Agent(spec.name, spec.extension, spec.no_answer, spec=spec)
            if not spec.dynamic:
                for q in spec.queues:
                    agent.members[q] = Membership(q, dynamic=False, penalty=spec.penalty)
                    self.queues[q].members.append(agent.ext)
        if traffic:
            for q in self.queues.values():
                if q.spec.rate > 0:
                    self._later(self.rng.expovariate(q.spec.rate / 3600.0), self._arrival, q.name)
            for agent in self.agents.values():
                self._start_routine(agent)

    # -- clock -----------------------------------------------------------------------------

    def next_time(self) -> float | None:
        """Virtual time of the next scheduled step (None: nothing will ever happen by itself)."""
        return self._heap[0][0] if self._heap else None

    def advance(self, until: float) -> None:
        """Run every step due by `until` and move the clock there."""
        heap = self._heap
        while heap and heap[0][0] <= until:
            t, _, step, args = heapq.heappop(heap)
            if t > self.now:
                self.now = t
            step(*args)
        if until > self.now:
            self.now = until

    def run_until(self, until: float) -> list[Happening]:
        """Headless use: advance to `until` and return what happened meanwhile."""
        seen: list[Happening] = []
        self.sinks.append(seen.append)
        try:
            self.advance(until)
        finally:
            self.sinks.remove(seen.append)
        return seen

    @property
    def active_calls(self) -> int:
        return len(self.calls)

    @property
    def spontaneous(self) -> bool:
        """Whether traffic may still start by itself (False after `traffic_until`)."""
        until = self.config.traffic_until
        return self.traffic and (until is None or self.now < until)

    # -- plumbing ----------------------------------------------------------------------------

    def _at(self, delay: float, step: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._heap, (self.now + max(0.0, delay), next(self._order), step, args))

    def _later(self, delay: float, step: Callable[..., None], *args: Any) -> None:
        """Schedule a spontaneous step, unless it would fall after `traffic_until`."""
        until = self.config.traffic_until
        if until is None or self.now + delay <= until:
            self._at(delay, step, *args)

    def _emit(self, kind: str, call: Call | None = None, agent: Agent | None = None, queue: str | None = None,
              **info: Any) -> None:
        h = Happening(kind, self.now, call, agent, queue, info)
        for sink in self.sinks:
            sink(h)

    def _kick(self, *queues: str) -> None:
        """Dispatch these queues once everything due now has been told (keeps happenings in order)."""
        for name in queues:
            if name in self.queues and name not in self._kicked:
                self._kicked.add(name)
                self._at(0.0, self._run_dispatch, name)

    def _new_call(self, number: str, name: str, did: str, direction: str, tag: str | None) -> Call:
        cid = next(self._ids)
        call = Call(cid, f"C{cid:06d}", number, name, did, direction, self.now, tag=tag)
        self.calls[cid] = call
        return call

    def _drop(self, call: Call) -> None:
        call.state = "ended"
        call.phase += 1
        self.calls.pop(call.id, None)
        self._asked.discard(call.id)

    # -- arrivals and queues ---------------------------------------------------------------

    def _arrival(self, queue: str) -> None:
        if not self.spontaneous:
            return
        q = self.queues[queue]
        self._later(self.rng.expovariate(q.spec.rate / 3600.0), self._arrival, queue)
        number, name = self.callers.draw()
        self.inbound(queue, number, name)

    def _draw_times(self, call: Call, patience: float | None) -> None:
        b = self.b
        call.patience = patience if patience is not None else b.patience_min + self.rng.expovariate(1 / b.patience_mean)
        call.talk = b.talk_min + self.rng.expovariate(1 / b.talk_mean)

    def _enter_queue(self, call: Call) -> None:
        q = self.queues[call.queue or ""]
        call.phase += 1
        call.state = "queued"
        call.t_join = self.now
        call.tried = set()
        call.retry_at = 0.0
        call.joins += 1
        call.recording = True
        self._emit("record_start", call, queue=q.name)
        q.waiting.append(call)
        call.original_position = len(q.waiting)
        self._emit("join", call, queue=q.name, position=len(q.waiting), count=len(q.waiting))
        if call.patience != float("inf"):
            self._at(call.patience, self._give_up, call, call.phase)
        if q.spec.timeout is not None:
            self._at(q.spec.timeout, self._time_out, call, call.phase)
        self._kick(q.name)

    def _give_up(self, call: Call, phase: int) -> None:
        if call.phase == phase and call.state in ("queued", "ringing"):
            self._leave_queue(call, "abandon")
            self._drop(call)

    def _time_out(self, call: Call, phase: int) -> None:
        if call.phase == phase and call.state in ("queued", "ringing"):
            self._leave_queue(call, "timeout")
            self._drop(call)

    def _leave_queue(self, call: Call, kind: str, **extra: Any) -> None:
        """The call leaves its queue unanswered (abandon, timeout, redirect); a ring in progress ends."""
        q = self.queues[call.queue or ""]
        position = q.position(call)
        q.waiting.remove(call)
        agent = self._unring(call)
        wait = self.now - call.t_join
        q.abandoned += 1  # Asterisk counts a timeout and a redirect out of the queue as abandoned too
        q.abandoned_in_sl += wait <= q.spec.service_level
        call.phase += 1
        self._emit(kind, call, agent, q.name, position=position, original_position=call.original_position,
                   wait=wait, **extra)
        if agent is not None:
            self._kick(*agent.members)

    def _unring(self, call: Call) -> Agent | None:
        agent = call.ringing
        if agent is not None:
            agent.state = "idle"
            agent.call = None
            call.ringing = None
            call.state = "queued"
        return agent

    def _run_dispatch(self, name: str) -> None:
        self._kicked.discard(name)
        q = self.queues[name]
        if self.router is not None:
            for call in list(q.waiting):
                if call.id not in self._asked:
                    self._asked.add(call.id)
                    self.router(call)
            return
        for call in list(q.waiting):
            if call.ringing is not None or call.retry_at > self.now:
                continue
            agent = self._choose(q, call)
            if agent is not None:
                self._ring(call, agent, q)

    def _choose(self, q: Queue, call: Call) -> Agent | None:
        avail = [self.agents[e] for e in q.members if self.agents[e].available(q.name)]
        if not avail:
            return None
        fresh = [a for a in avail if a.ext not in call.tried]
        if not fresh:  # everyone was tried: start a new round, as Asterisk does after `retry`
            call.tried.clear()
            fresh = avail
        strategy = q.spec.strategy
        if strategy in ("rrmemory", "roundrobin"):
            n = len(q.members)
            start = q.rr_next % n
            order = q.members[start:] + q.members[:start]
            pick = next(a for e in order for a in fresh if a.ext == e)
            q.rr_next = q.members.index(pick.ext) + 1
            return pick
        if strategy == "leastrecent":
            return min(fresh, key=lambda a: -1.0 if a.last_call is None else a.last_call)
        if strategy == "fewestcalls":
            return min(fresh, key=lambda a: a.calls_taken)
        if strategy == "random":
            return self.rng.choice(fresh)
        return fresh[0]  # linear

    def connect_routed(self, call_id: int, ext: str) -> bool:
        """Route-point mode: ring the agent the router chose for a queued call. False (nothing
        done) if the call is no longer waiting or the agent is not idle in one of its queues."""
        call, agent = self.calls.get(call_id), self.agents.get(ext)
        if call is None or agent is None or call.state != "queued" or agent.state != "idle" or \
                not any(not m.paused for m in agent.members.values()):
            return False
        self._ring(call, agent, self.queues[call.queue or ""])
        return True

    def fallback_routed(self, call_id: int) -> bool:
        """Route-point mode: the router sent the call elsewhere (voicemail, callback ...): it
        leaves its queue as a PBX timeout does. False if it was not waiting any more."""
        call = self.calls.get(call_id)
        if call is None or call.state != "queued":
            return False
        self._leave_queue(call, "timeout")
        self._drop(call)
        return True

    def _ring(self, call: Call, agent: Agent, q: Queue) -> None:
        call.ring_id += 1
        call.ringing = agent
        call.state = "ringing"
        call.ring_t0 = self.now
        agent.state = "ringing"
        agent.call = call
        answers = self.rng.random() >= agent.no_answer
        self._emit("ring", call, agent, q.name, answers=answers)
        if not answers:
            self._at(q.spec.ring_timeout, self._no_answer, call, agent, call.ring_id)
        else:
            ring = min(self.rng.uniform(self.b.ring_min, self.b.ring_max), q.spec.ring_timeout)
            self._at(ring, self._answer, call, agent, call.ring_id)

    def _no_answer(self, call: Call, agent: Agent, ring_id: int) -> None:
        if call.ringing is not agent or call.ring_id != ring_id:
            return
        q = self.queues[call.queue or ""]
        self._unring(call)
        self._asked.discard(call.id)  # route-point mode: ask again (ctid answers with the fallback)
        call.tried.add(agent.ext)
        call.retry_at = self.now + q.spec.retry
        self._emit("ring_noanswer", call, agent, q.name, ring=self.now - call.ring_t0)
        self._at(q.spec.retry, self._kick, q.name)
        self._kick(*(n for n in agent.members if n != q.name))

    def _answer(self, call: Call, agent: Agent, ring_id: int) -> None:
        if call.ringing is not agent or call.ring_id != ring_id:
            return
        q = self.queues[call.queue or ""]
        position = q.position(call)
        q.waiting.remove(call)
        call.ringing = None
        call.agent = agent
        call.state = "talking"
        call.t_connect = self.now
        call.wait = self.now - call.t_join
        call.phase += 1
        agent.state = "talking"
        q.holdtime = (q.holdtime * 3 + call.wait) / 4
        self._emit("connect", call, agent, q.name, wait=call.wait, position=position,
                   ring=self.now - call.ring_t0)
        self._plan_talk(call)

    # -- the agent is free again -------------------------------------------------------------

    def _complete(self, call: Call, by: str, kind: str = "end", late: bool = False, **extra: Any) -> Agent:
        """The agent's part of a queue call is over (end of talk or a transfer): count it, free the agent."""
        agent, q = call.agent, self.queues[call.queue or ""]
        assert agent is not None
        talk = self.now - call.t_connect
        q.completed += 1
        q.completed_in_sl += call.wait <= q.spec.service_level
        q.talktime = (q.talktime * 3 + talk) / 4
        agent.calls_taken += 1
        agent.last_call = self.now
        agent.state = "wrapup"
        agent.call = None
        call.agent = None
        if kind == "end":
            self._drop(call)
        else:
            call.phase += 1
        self._emit(kind, call, agent, q.name, by=by, talk=talk, wait=call.wait, late=late, **extra)
        self._release(agent, q.spec.wrapup)
        return agent

    def _release(self, agent: Agent, wrapup: float) -> None:
        if wrapup > 0:
            self._emit("wrapup_start", agent=agent, duration=wrapup)
        self._at(wrapup, self._wrapup_end, agent, wrapup)

    def _wrapup_end(self, agent: Agent, wrapup: float) -> None:
        if agent.state != "wrapup":
            return
        agent.state = "idle"
        if wrapup > 0:
            self._emit("wrapup_end", agent=agent)
        self._kick(*agent.members)

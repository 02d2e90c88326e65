"""What the call center does on request: from a wire (originate, pause, members, hangup,
redirect) or from its own agents (pauses with a reason, dynamic agents logging in and out).

A mixin of `ctid.sim.traffic.CallCenter`; it uses the engine's clock and helpers.
Requests the PBX would refuse raise `SimError` with a code the wire turns into its
own error message.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Callable

from ctid.sim.model import Agent, Behaviour, Call, Membership, Queue, SimError


class Control:
    # provided by CallCenter
    rng: random.Random
    b: Behaviour
    now: float
    queues: dict[str, Queue]
    agents: dict[str, Agent]
    calls: dict[int, Call]

    if TYPE_CHECKING:
        spontaneous: bool

        def _at(self, delay: float, step: Callable[..., None], *args: Any) -> None: ...
        def _later(self, delay: float, step: Callable[..., None], *args: Any) -> None: ...
        def _emit(self, kind: str, call: Call | None = None, agent: Agent | None = None,
                  queue: str | None = None, **info: Any) -> None: ...
        def _kick(self, *queues: str) -> None: ...
        def _new_call(self, number: str, name: str, did: str, direction: str, tag: str | None) -> Call: ...
        def _drop(self, call: Call) -> None: ...
        def _draw_times(self, call: Call, patience: float | None) -> None: ...
        def _enter_queue(self, call: Call) -> None: ...
        def _leave_queue(self, call: Call, kind: str, **extra: Any) -> None: ...
        def _unring(self, call: Call) -> Agent | None: ...
        def _no_answer(self, call: Call, agent: Agent, ring_id: int) -> None: ...
        def _complete(self, call: Call, by: str, kind: str = "end", late: bool = False, **extra: Any) -> Agent: ...
        def _transfer_done(self, call: Call, phase: int) -> None: ...
        def _finish(self, call: Call, phase: int, by: str, late: bool = False) -> None: ...
        def _live(self, call: Call, phase: int, *states: str) -> bool: ...

    # -- calls ------------------------------------------------------------------------------

    def inbound(self, queue: str, number: str = "anonymous", name: str = "", *, patience: float | None = None,
                tag: str | None = None, did: str | None = None) -> Call:
        """A caller dials `did` (default: the queue's name) and is put in `queue`."""
        if queue not in self.queues:
            raise SimError("no_such_queue", queue)
        call = self._new_call(number or "anonymous", name, did or queue, "inbound", tag)
        call.queue = queue
        self._draw_times(call, patience)
        self._emit("arrive", call, queue=queue)
        self._enter_queue(call)
        return call

    def outbound(self, ext: str, number: str, *, tag: str | None = None) -> Call:
        """The PBX rings agent `ext`'s device; when the agent answers it dials `number`."""
        agent = self.agents.get(ext)
        if agent is None:
            raise SimError("no_such_agent", ext)
        if agent.state not in ("idle", "wrapup"):  # after-call work does not stop an agent from dialling
            raise SimError("busy", ext)
        call = self._new_call(agent.ext, agent.name, number, "outbound", tag)
        self._draw_times(call, None)
        call.agent = agent
        call.state = "dialing"
        agent.state = "outbound"
        agent.call = call
        self._emit("dial_agent", call, agent)
        self._at(1.0, self._outbound_dial, call, call.phase)
        return call

    def _outbound_dial(self, call: Call, phase: int) -> None:
        if not self._live(call, phase, "dialing"):
            return
        call.state = "outbound"
        call.phase += 1
        self._emit("outbound_dial", call, call.agent, number=call.did)
        ring = self.rng.uniform(3.0, 10.0)
        if self.rng.random() < self.b.outbound_answer:
            self._at(ring, self._outbound_answer, call, call.phase)
        else:
            self._at(20.0, self._outbound_over, call, call.phase, "noanswer")

    def _outbound_answer(self, call: Call, phase: int) -> None:
        if not self._live(call, phase, "outbound"):
            return
        call.state = "talking_out"
        call.t_connect = self.now
        call.phase += 1
        self._emit("outbound_answer", call, call.agent, number=call.did)
        by = "caller" if self.rng.random() < self.b.caller_hangup else "agent"
        self._at(call.talk, self._outbound_over, call, call.phase, by)

    def _outbound_over(self, call: Call, phase: int, by: str) -> None:
        if self._live(call, phase, "outbound", "talking_out"):
            self._end_outbound(call, by)

    def _end_outbound(self, call: Call, by: str) -> None:
        agent = call.agent
        assert agent is not None
        stage = {"dialing": "agent", "outbound": "ringing"}.get(call.state, "talk")
        talk = self.now - call.t_connect if stage == "talk" else 0.0
        agent.state = "idle"
        agent.call = None
        self._drop(call)
        self._emit("end", call, agent, None, by=by, talk=talk, stage=stage, outbound=True)
        self._kick(*agent.members)

    def hangup(self, call: Call, side: str = "caller") -> None:
        """One side hangs up: `caller`, `agent` (the member's device) or `target` (a consulted party)."""
        state = call.state
        if state in ("queued", "ringing"):
            if side == "agent" and call.ringing is not None:
                self._no_answer(call, call.ringing, call.ring_id)  # the member rejected the ring
            else:
                self._leave_queue(call, "abandon")
                self._drop(call)
        elif state == "talking":
            self._complete(call, "agent" if side == "agent" else "caller")
        elif state == "consult":
            if side == "agent":  # hanging up an attended transfer completes it (atxferdropcall=no)
                self._transfer_done(call, call.phase)
            elif side == "target":
                self._consult_fail(call)
            else:
                self._complete(call, "caller")
        elif state == "transferred":
            self._drop(call)
            self._emit("end", call, None, call.queue, by="target" if side == "target" else "caller",
                       talk=self.now - call.t_connect, wait=call.wait)
        elif state in ("dialing", "outbound", "talking_out"):
            self._end_outbound(call, "agent" if side == "agent" else "caller")
        else:
            raise SimError("bad_state", state)

    def _consult_fail(self, call: Call) -> None:
        call.state = "talking"
        call.held = False
        call.phase += 1
        self._emit("consult_fail", call, call.agent, call.queue, target=call.target)
        call.target = None
        self._at(self.rng.uniform(5.0, 20.0), self._finish, call, call.phase, "agent")

    def redirect(self, call: Call, queue: str) -> None:
        """Send a waiting or talking inbound call into `queue` (as a Redirect to the queue's DID does)."""
        if queue not in self.queues:
            raise SimError("no_such_queue", queue)
        if call.state in ("queued", "ringing"):
            self._leave_queue(call, "redirect", target=queue, stage="queue")
        elif call.state == "talking" and not call.held:
            self._complete(call, "transfer", kind="redirect", target=queue, stage="talk")
        else:
            raise SimError("bad_state", call.state)
        call.queue = queue
        self._enter_queue(call)

    # -- the agent's phone, driven remotely ------------------------------------------------

    def answer(self, agent: Agent) -> Call:
        """The agent's ringing phone answers now (a queue ring, or the first leg of an originate)."""
        call = agent.call
        if call is not None and agent.state == "ringing" and call.ringing is agent:
            self._answer(call, agent, call.ring_id)
        elif call is not None and agent.state == "outbound" and call.state == "dialing":
            self._outbound_dial(call, call.phase)
        else:
            raise SimError("bad_state", agent.state)
        return call

    def hold(self, call: Call, on: bool) -> None:
        """The agent's phone puts the talking call on hold (`on`) or takes it off."""
        if call.state != "talking" or call.held == on:
            raise SimError("bad_state", call.state)
        self._hold(call, call.phase, on)

    def blind_transfer(self, call: Call, queue: str) -> None:
        """The agent sends the talking caller to `queue` and is free."""
        if queue not in self.queues:
            raise SimError("no_such_queue", queue)
        if call.state != "talking" or call.held:
            raise SimError("bad_state", call.state)
        self._blind(call, call.phase, queue)

    def consult(self, call: Call, target: str) -> None:
        """The agent holds the caller and calls `target`, who answers in a few seconds; the transfer
        completes when the agent hangs up (`hangup(call, "agent")`), fails when the target does."""
        if call.state != "talking" or call.held:
            raise SimError("bad_state", call.state)
        call.state = "consult"
        call.held = True
        call.target = target
        self._emit("consult", call, call.agent, call.queue, target=target)
        self._at(self.rng.uniform(2.0, 4.0), self._consult_answer, call, call.phase)

    # -- members ----------------------------------------------------------------------------

    def set_paused(self, ext: str, paused: bool, queue: str | None = None, reason: str = "") -> list[str]:
        """Pause or unpause a member in one queue or (queue None) in all its queues; returns the queues."""
        agent = self.agents.get(ext)
        if agent is None or not agent.members or (queue is not None and queue not in agent.members):
            raise SimError("no_such_member", ext)
        queues = [queue] if queue is not None else list(agent.members)
        for name in queues:
            m = agent.members[name]
            m.paused = paused
            m.reason = reason if paused else ""
            if paused:
                m.last_pause = self.now
        self._emit("pause" if paused else "unpause", agent=agent, queue=queue, queues=queues, reason=reason)
        if not paused:
            self._kick(*queues)
        return queues

    def add_member(self, queue: str, ext: str, name: str | None = None, *, interface: str | None = None,
                   penalty: int = 0, paused: bool = False, reason: str = "") -> Agent:
        q = self.queues.get(queue)
        if q is None:
            raise SimError("no_such_queue", queue)
        agent = self.agents.get(ext)
        if agent is None:
            agent = self.agents[ext] = Agent(name or interface or ext, ext, 0.0, interface=interface)
        if queue in agent.members:
            raise SimError("already_member", ext)
        agent.members[queue] = Membership(queue, True, penalty, paused, reason if paused else "", self.now,
                                          self.now if paused else None)
        q.members.append(ext)
        self._emit("member_add", agent=agent, queue=queue)
        self._kick(queue)
        return agent

    def remove_member(self, queue: str, ext: str) -> Agent:
        q = self.queues.get(queue)
        if q is None:
            raise SimError("no_such_queue", queue)
        agent = self.agents.get(ext)
        if agent is None or queue not in agent.members:
            raise SimError("no_such_member", ext)
        if not agent.members[queue].dynamic:
            raise SimError("not_dynamic", ext)
        member = agent.members.pop(queue)
        q.members.remove(ext)
        self._emit("member_remove", agent=agent, queue=queue, member=member)
        call = agent.call
        if agent.state == "ringing" and call is not None and call.queue == queue:
            self._unring(call)
            self._emit("ring_cancel", call, agent, queue)
            self._kick(queue)
        return agent

    # -- the agents' own doings -----------------------------------------------------------

    def _start_routine(self, agent: Agent) -> None:
        if agent.spec is not None and agent.spec.dynamic:
            self._later(self.rng.uniform(30.0, 120.0), self._float, agent)
        if self.b.pause_every > 0:
            self._later(self.rng.expovariate(1 / self.b.pause_every), self._pause_time, agent)

    def _pause_time(self, agent: Agent) -> None:
        if not self.spontaneous:
            return
        members = agent.members
        if agent.state != "idle" or not members or any(m.paused for m in members.values()):
            self._later(20.0, self._pause_time, agent)  # finish the call (or the other pause) first
            return
        queue = None
        if len(members) > 1 and self.rng.random() >= self.b.pause_all:
            queue = self.rng.choice(sorted(members))
        self.set_paused(agent.ext, True, queue, self.rng.choice(self.b.pause_reasons))
        self._at(self.rng.uniform(self.b.pause_min, self.b.pause_max), self._pause_over, agent, queue)

    def _pause_over(self, agent: Agent, queue: str | None) -> None:
        still = [m for m in agent.members.values() if m.paused and (queue is None or m.queue == queue)]
        if still:
            self.set_paused(agent.ext, False, queue if queue in agent.members else None)
        if self.spontaneous:
            self._later(self.rng.expovariate(1 / self.b.pause_every), self._pause_time, agent)

    def _float(self, agent: Agent) -> None:
        """A dynamic agent logs into its queues, stays a while, logs out."""
        if not self.spontaneous or agent.spec is None:
            return
        if not agent.members:
            for queue in agent.spec.queues:
                self.add_member(queue, agent.ext, agent.name)
            self._later(self.rng.uniform(self.b.login_min, self.b.login_max), self._float, agent)
        else:  # even on a call: Asterisk lets a member go mid-call (a-busy-queue shows it)
            for queue in list(agent.members):
                if agent.members[queue].dynamic:
                    self.remove_member(queue, agent.ext)
            self._later(self.rng.uniform(self.b.logout_min, self.b.logout_max), self._float, agent)

"""Live state of calls, agents and queues, built only from normalized events.

`State.apply(event)` runs on the hot path for every event, before the bus: it
updates the model and completes `call.cleared` with the figures every CDR needs
(wait, talk, hold, disposition, timestamps), so no driver computes them itself.
`snapshot()` is what a late joiner gets (ZeroMQ guide's Clone pattern).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Event = dict[str, Any]


@dataclass(slots=True)
class Call:
    call_id: str
    source: str
    caller: str | None = None
    caller_name: str | None = None
    called: str | None = None
    direction: str | None = None
    queue: str | None = None
    agent: str | None = None
    device: str | None = None
    state: str = "offered"  # offered | queued | ringing | established | held
    t_offered: float = 0.0
    t_queued: float | None = None
    t_answered: float | None = None
    wait: float | None = None
    talk: float = 0.0
    hold: float = 0.0
    transfers: int = 0
    recording: str | None = None
    outcome: str | None = None  # abandoned | timeout | redirected, set on a queue exit without answer
    data: dict[str, str] = field(default_factory=dict)  # call data attached by call.set_data (call.data events)
    _talk_since: float | None = None
    _hold_since: float | None = None

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


@dataclass(slots=True)
class Agent:
    agent: str
    source: str
    name: str | None = None
    device: str | None = None
    state: str = "ready"  # logged_off | ready | not_ready | busy | acw
    reason: str | None = None
    queues: dict[str, bool] = field(default_factory=dict)  # queue -> paused
    call_id: str | None = None
    since: float = 0.0
    acw_until: float | None = None
    calls_today: int = 0

    def public(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Queue:
    queue: str
    waiting: dict[str, float] = field(default_factory=dict)  # call_id -> queued since
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_in_sl: int = 0

    def public(self, now: float) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "waiting": len(self.waiting),
            "longest_wait": round(now - min(self.waiting.values()), 3) if self.waiting else 0.0,
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "answered_in_sl": self.answered_in_sl,
        }


class State:
    """Calls, agents and queues of one site. Not thread-safe: owned by the event loop."""

    def __init__(self, service_level: float = 20.0, service_levels: dict[str, float] | None = None) -> None:
        self.calls: dict[str, Call] = {}
        self.agents: dict[str, Agent] = {}
        self.queues: dict[str, Queue] = {}
        self.service_level = service_level  # seconds, for `answered_in_sl`
        self.service_levels = dict(service_levels or {})  # per queue, where the site sets one
        self.last_ts = 0.0
        self.orphans = 0  # events about calls the state never saw offered
        self._handlers = {
            "call.offered": self._offered,
            "call.queued": self._queued,
            "call.delivered": self._delivered,
            "call.established": self._established,
            "call.held": self._held,
            "call.retrieved": self._retrieved,
            "call.transferred": self._transferred,
            "call.diverted": self._diverted,
            "call.abandoned": self._abandoned,
            "call.cleared": self._cleared,
            "call.failed": self._cleared,
            "recording.started": self._recording,
            "call.data": self._data,
            "agent.logged_on": self._agent_on,
            "agent.logged_off": self._agent_off,
            "agent.ready": self._agent_ready,
            "agent.not_ready": self._agent_ready,
            "agent.acw": self._agent_acw,
        }

    # -- public --------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Update the model from one event; may add fields to the event (call.cleared)."""
        ts = event["ts"]
        if ts > self.last_ts:
            self.last_ts = ts
        handler = self._handlers.get(event["type"])
        if handler is not None:
            handler(event, ts)

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        now = self.last_ts if now is None else now
        for agent in self.agents.values():
            self._acw_expire(agent, now)
        return {
            "calls": [c.public() for c in self.calls.values()],
            "agents": [a.public() for a in self.agents.values()],
            "queues": [q.public(now) for q in self.queues.values()],
        }

    # -- calls ---------------------------------------------------------------------------

    def _queue(self, name: str) -> Queue:
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = Queue(name)
        return queue

    def _call(self, event: Event) -> Call | None:
        call = self.calls.get(event["call_id"])
        if call is None:
            self.orphans += 1
            return None
        for key in ("caller", "caller_name", "called", "queue", "direction"):
            value = event.get(key)
            if value is not None:
                setattr(call, key, value)
        return call

    def _offered(self, event: Event, ts: float) -> None:
        self.calls[event["call_id"]] = Call(
            event["call_id"], event.get("source", ""), event.get("caller"), event.get("caller_name"),
            event.get("called"), event.get("direction"), event.get("queue"), t_offered=ts,
        )

    def _leave_queue(self, call: Call) -> None:
        if call.queue and call.call_id in (q := self._queue(call.queue)).waiting:
            del q.waiting[call.call_id]

    def _queued(self, event: Event, ts: float) -> None:
        call = self._call(event)
        if call is None:
            return
        self._stop_talk(call, ts)  # a transferred call waiting in its next queue is not talking
        call.state = "queued"
        call.outcome = None
        call.t_queued = call.t_queued or ts
        queue = self._queue(event["queue"])
        queue.offered += 1
        queue.waiting[call.call_id] = ts

    def _delivered(self, event: Event, ts: float) -> None:
        call = self._call(event)
        if call is not None and call.data:
            event["data"] = dict(call.data)  # the call data follows the call to the agent it rings
        if call is not None and call.state in ("offered", "queued"):
            call.state = "ringing" if call.state == "offered" else call.state

    def _established(self, event: Event, ts: float) -> None:
        call = self._call(event)
        if call is None:
            return
        if call.data:
            event["data"] = dict(call.data)
        self._leave_queue(call)
        first = call.t_answered is None
        if first:
            call.t_answered = ts
            call.wait = event["wait"] if event.get("wait") is not None else round(ts - call.t_offered, 3)
        if call.queue and call.state == "queued":
            queue = self._queue(call.queue)
            queue.answered += 1
            if (event.get("wait") or 0.0) <= self.service_levels.get(call.queue, self.service_level):
                queue.answered_in_sl += 1
        call.state = "established"
        call.agent = event.get("agent")
        call.device = event.get("device")
        call._talk_since = ts
        if call.agent and (agent := self.agents.get(call.agent)) is not None:
            agent.state, agent.call_id, agent.since = "busy", call.call_id, ts
            agent.calls_today += 1

    def _stop_talk(self, call: Call, ts: float) -> None:
        if call._hold_since is not None:
            call.hold += ts - call._hold_since
            call._hold_since = None
        elif call._talk_since is not None:
            call.talk += ts - call._talk_since
        call._talk_since = None

    def _held(self, event: Event, ts: float) -> None:
        call = self._call(event)
        if call is None or call._hold_since is not None:
            return
        if call._talk_since is not None:
            call.talk += ts - call._talk_since
            call._talk_since = None
        call._hold_since = ts
        call.state = "held"

    def _retrieved(self, event: Event, ts: float) -> None:
        call = self._call(event)
        if call is None or call._hold_since is None:
            return
        event["hold"] = round(ts - call._hold_since, 3)
        call.hold += ts - call._hold_since
        call._hold_since = None
        call._talk_since = ts
        call.state = "established"

    def _free_agent(self, agent_id: str | None, call_id: str, ts: float) -> None:
        agent = self.agents.get(agent_id) if agent_id else None
        if agent is not None and agent.call_id == call_id:
            agent.call_id = None
            if agent.state == "busy":
                agent.state, agent.since = self._idle_state(agent), ts

    def _transferred(self, event: Event, ts: float) -> None:
        call = self._call(event)
        if call is None:
            return
        self._stop_talk(call, ts)
        call.transfers += 1
        self._free_agent(event.get("agent"), call.call_id, ts)
        call.agent = None
        call.device = event.get("target")
        call._talk_since = ts  # the caller now talks to the target (or waits in its queue)
        call.state = "established"

    def _diverted(self, event: Event, ts: float) -> None:
        call = self._call(event)
        if call is None or event.get("cause") == "no_answer":
            return
        self._leave_queue(call)
        call.outcome = event["cause"]
        call.state = "offered"

    def _abandoned(self, event: Event, ts: float) -> None:
        call = self._call(event)
        if call is None:
            return
        self._leave_queue(call)
        call.outcome = "abandoned"
        if call.t_answered is None:
            call.wait = event.get("wait", round(ts - call.t_offered, 3))
        if call.queue:
            self._queue(call.queue).abandoned += 1

    def _cleared(self, event: Event, ts: float) -> None:
        call = self.calls.pop(event["call_id"], None)
        if call is None:
            self.orphans += 1
            return
        self._leave_queue(call)
        self._stop_talk(call, ts)
        self._free_agent(call.agent, call.call_id, ts)
        if event.get("disposition") is None:
            if call.t_answered is not None:
                disposition = "answered"
            elif call.outcome is not None:
                disposition = call.outcome
            else:
                disposition = "failed" if event["type"] == "call.failed" else "unanswered"
            event["disposition"] = disposition
        if call.wait is None:
            call.wait = round((call.t_answered or ts) - call.t_offered, 3)
        event.update(
            wait=round(call.wait, 3), talk=round(call.talk, 3), hold=round(call.hold, 3),
            t_offered=call.t_offered, t_queued=call.t_queued, t_answered=call.t_answered, t_ended=ts,
            transfers=call.transfers, recording=call.recording,
        )
        if call.data:  # into the CDR's `x`, beside what the driver put there
            event["data"] = dict(call.data)
            event["x"] = {**(event.get("x") or {}), "data": dict(call.data)}
        # The event's own fields describe the last leg; restore the call-level identity.
        event["queue"] = call.queue
        event["agent"] = event.get("agent") or call.agent

    def _data(self, event: Event, ts: float) -> None:
        call = self.calls.get(event["call_id"])
        if call is None:
            self.orphans += 1
            return
        call.data.update(event.get("data") or {})
        event["data"] = dict(call.data)  # the whole map so far, so a late subscriber needs no history

    def _recording(self, event: Event, ts: float) -> None:
        call = self.calls.get(event["call_id"])
        if call is not None and call.recording is None:
            call.recording = event.get("path")

    # -- agents --------------------------------------------------------------------------

    def _agent(self, event: Event, ts: float) -> Agent:
        agent = self.agents.get(event["agent"])
        if agent is None:
            agent = self.agents[event["agent"]] = Agent(event["agent"], event.get("source", ""), since=ts)
        if event.get("name"):
            agent.name = event["name"]
        if event.get("device"):
            agent.device = event["device"]
        return agent

    @staticmethod
    def _idle_state(agent: Agent) -> str:
        if not agent.queues:
            return "logged_off"
        return "ready" if not all(agent.queues.values()) else "not_ready"

    def _settle(self, agent: Agent, ts: float) -> None:
        if agent.state in ("busy", "acw"):
            return
        state = self._idle_state(agent)
        if state != agent.state:
            agent.state, agent.since = state, ts

    def _agent_on(self, event: Event, ts: float) -> None:
        agent = self._agent(event, ts)
        if event.get("queue"):
            self._queue(event["queue"])  # a queue is known from its members, before its first call
        agent.queues.setdefault(event.get("queue") or "*", False)
        self._settle(agent, ts)

    def _agent_off(self, event: Event, ts: float) -> None:
        agent = self._agent(event, ts)
        if event.get("queue") is None:
            agent.queues.clear()
        else:
            agent.queues.pop(event["queue"], None)
        self._settle(agent, ts)

    def _agent_ready(self, event: Event, ts: float) -> None:
        agent = self._agent(event, ts)
        paused = event["type"] == "agent.not_ready"
        queues = [event["queue"]] if event.get("queue") else list(agent.queues) or ["*"]
        for q in queues:
            agent.queues[q] = paused
        agent.reason = event.get("reason") if paused else None
        self._settle(agent, ts)

    def _agent_acw(self, event: Event, ts: float) -> None:
        agent = self._agent(event, ts)
        agent.state, agent.since = "acw", ts
        agent.acw_until = ts + float(event.get("duration") or 0)

    def _acw_expire(self, agent: Agent, now: float) -> None:
        if agent.state == "acw" and agent.acw_until is not None and now >= agent.acw_until:
            agent.state, agent.since, agent.acw_until = self._idle_state(agent), agent.acw_until, None

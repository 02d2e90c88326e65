"""The routing engine: the matcher driven by the daemon's events and by route points.

Driver-neutral. A route point (Asterisk FastAGI, a CSTA RouteRequest, the `route` bus op)
calls `route(RouteRequest)` and acts on the `Decision`; when the answer is `wait`, the decision
for that call comes later through the listeners (`listen`), from `observe` (an agent became
ready) or `tick` (after-call work ended, an escalation step matched, the max wait ran out).

The daemon feeds `observe(event)` with every normalized event after the state applied it, so
the matcher's agents follow the PBX: ready / not_ready / logged off from the state's view of
the agent, busy from calls the PBX connected outside ctid's routing, free again when a call
clears. Every decision is published (`route.*`, docs/protocol.md) and counted (`routing.*`).

Bad input (an unknown queue or skill, a request for a call already routed, a refused
decision) is logged, published as `route.error`, counted, and the call goes to its queue's
fallback, else the routing-wide one: a call is never dropped and never left waiting for
nothing. Same events and times in, same decisions out (the matcher is deterministic and the
engine reads time only from its arguments).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ctid.acd import Matcher, MatchError
from ctid.acd.decision import Decision, RouteRequest
from ctid.acd.rules import Fallback, QueueRule, RoutingRules, build_matcher
from ctid.metrics import Counters

log = logging.getLogger("ctid.routing")

RouteHook = Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]]
_STATE_NAMES = {"logged_off": "logged_out", "ready": "ready", "not_ready": "not_ready"}
_ENDS_AGENT_CALL = ("call.cleared", "call.failed", "call.transferred")
_DONE_MEMORY = 10_000  # finished calls remembered, to refuse a second request for them


@dataclass
class _Route:
    """One call the engine routes: where it is and where it has been."""

    call_id: str
    asked: str  # the queue the route point named (after a VIP redirect)
    caller: str | None
    skills: Mapping[str, int] | None
    priority: int
    since: float
    queue: str | None = None
    status: str = "new"  # new | waiting | agent | done
    agent: str | None = None
    deadline: int = 0  # the max-wait timer that is current (older ones are void)
    visited: set[str] = field(default_factory=set)


class RoutingEngine:
    """See the module docstring. Not thread-safe: owned by the event loop."""

    def __init__(self, rules: RoutingRules, publish: Callable[[dict[str, Any]], None], counters: Counters, *,
                 route_hook: RouteHook | None = None, agent_state: Callable[[str], str | None] | None = None,
                 matcher_cls: Callable[[], Any] = Matcher) -> None:
        """`publish` takes route.* events (the daemon's dispatch); `route_hook` may veto or adjust
        a decision (the plugins' `ctid_route`); `agent_state(agent)` is the daemon state's view."""
        self.rules = rules
        self.matcher = build_matcher(rules, matcher_cls)
        self._publish = publish
        self.counters = counters
        self._hook = route_hook
        self._agent_state = agent_state or (lambda agent: None)
        self._routes: dict[str, _Route] = {}
        self._done: OrderedDict[str, None] = OrderedDict()
        self._deadlines: list[tuple[float, int, str]] = []  # (due, seq, call)
        self._seq = 0
        self._outside: dict[str, str] = {}  # agent -> call the PBX connected without ctid
        self._after_call: dict[str, str] = {}  # agent -> state it asked for while busy
        # Occupancy (the least_occupied key): seconds on calls over seconds logged in, per agent.
        self._on_since: dict[str, float] = {}
        self._busy_since: dict[str, float] = {}
        self._busy: dict[str, float] = {}
        self._listeners: list[Callable[[Decision], None]] = []

    # -- route points ---------------------------------------------------------------------

    def listen(self, listener: Callable[[Decision], None]) -> None:
        """Call `listener(decision)` for every decision made after `route` answered `wait`."""
        self._listeners.append(listener)

    def route(self, request: RouteRequest, now: float | None = None) -> Decision:
        """Decide for a call at a route point: an agent, wait, a fallback, or a rejection."""
        now = time.time() if now is None else now
        self.counters.inc("routing.requests")
        self._event("route.request", now, **request.public(), driver=request.source)
        if request.caller is not None and request.caller in self.rules.blacklist:
            self.counters.inc("routing.rejected")
            target = str(self.rules.reject)
            self._event("route.rejected", now, queue=request.queue, call_id=request.call_id,
                        caller=request.caller, target=target)
            self._finish(request.call_id)
            return Decision(request.call_id, "reject", request.queue, target=target, reason="blacklisted caller")
        old = self._routes.get(request.call_id)
        if old is not None or request.call_id in self._done:
            return self._again(request, old, now)
        vip = self.rules.vip.get(request.caller or "")
        r = _Route(request.call_id, (vip.queue if vip and vip.queue else request.queue), request.caller,
                   request.skills if not (vip and vip.queue) else None,
                   request.priority + (vip.boost if vip else 0), now)
        self._routes[r.call_id] = r
        if vip is not None:
            self.counters.inc("routing.vip")
        return self._offer(r, r.asked, now)

    def leave(self, call_id: str, now: float | None = None) -> bool:
        """The route point lost the call (the caller hung up): a waiting call leaves its queue;
        a call ctid had just given an agent, who never got it, gives the agent back at once (no
        wrap-up). True if the call was waiting or on its way to an agent. The PBX's own
        `call.abandoned` / `call.cleared` do the same through `observe`."""
        now = time.time() if now is None else now
        r = self._routes.get(call_id)
        if r is None or r.status not in ("waiting", "agent"):
            return False
        self.counters.inc("routing.abandoned")
        self._finish(call_id)
        if r.status == "waiting":
            self._unwait(r)
            return True
        have, _, with_call = self.matcher.agent_state(r.agent)
        if have == "busy" and with_call == call_id:
            self._busy_since.pop(r.agent, None)  # type: ignore[arg-type]
            self.matcher.call_ended(r.agent, now, acw=False)
            self._sync_agent(r.agent, now)
        return True

    def tick(self, now: float | None = None) -> list[Decision]:
        """Run the timers due by `now`: after-call work ends and escalation steps (the matcher's),
        then max waits. Returns the decisions made (also given to the listeners)."""
        now = time.time() if now is None else now
        out = []
        try:
            matched = self.matcher.tick(now)
        except MatchError as exc:  # only a NaN time gets here
            self._error(exc.code, exc.detail, now)
            matched = []
        for call, agent in matched:
            out.append(self._matched(call, agent, now))
        while self._deadlines and self._deadlines[0][0] <= now:
            due, seq, call = heapq.heappop(self._deadlines)
            r = self._routes.get(call)
            if r is None or r.status != "waiting" or r.deadline != seq:
                continue
            self._unwait(r)
            self.counters.inc("routing.max_wait")
            out.append(self._emit(self._fallback(r, self.rules.queues[r.queue], "max_wait", due)))  # type: ignore[index]
        return out

    async def run(self) -> None:
        """Run `tick` every `rules.tick` seconds until cancelled (the daemon's task)."""
        while True:
            await asyncio.sleep(self.rules.tick)
            self.tick(time.time())

    # -- the daemon's events --------------------------------------------------------------

    def observe(self, event: Mapping[str, Any]) -> None:
        """Follow one normalized event (after the daemon's state applied it)."""
        etype = event.get("type", "")
        now = event.get("ts")
        if now is None:
            now = time.time()
        try:
            if etype.startswith("agent."):
                self._sync_agent(event.get("agent"), now)
            elif etype == "call.established":
                self._established(event, now)
            elif etype in _ENDS_AGENT_CALL or etype == "call.abandoned":
                self._call_gone(event, now)
        except MatchError as exc:
            self._error(exc.code, exc.detail, now, call_id=event.get("call_id"), agent=event.get("agent"))

    def _sync_agent(self, agent: Any, now: float) -> None:
        if agent not in self.rules.agents:
            return
        want = _STATE_NAMES.get(self._agent_state(agent) or "")
        have, _, _ = self.matcher.agent_state(agent)
        if want is None:
            return  # busy and acw: the calls say when those start and end
        if have == "busy":
            # Asked for while on a call: applies when the call ends (after-call work is skipped).
            if want == "ready":
                self._after_call.pop(agent, None)
            else:
                self._after_call[agent] = want
            return
        if have == want:
            return
        if have == "logged_out":
            self._on_since.setdefault(agent, now)
        if want == "ready":
            call = self.matcher.agent_ready(agent, now)
            if call is not None:
                self._matched(call, agent, now)
        else:
            self.matcher.set_state(agent, want, now, None)

    def _established(self, event: Mapping[str, Any], now: float) -> None:
        agent, call = event.get("agent"), event.get("call_id")
        if agent not in self.rules.agents:
            return
        have, _, with_call = self.matcher.agent_state(agent)
        r = self._routes.get(call)  # type: ignore[arg-type]
        if r is not None and r.agent == agent:
            return  # the call ctid routed there
        if have == "busy":
            if with_call is not None and with_call != call:
                raise MatchError("bad_transition", f"agent {agent!r} answered {call!r} while routed {with_call!r}")
            return
        if have != "logged_out":
            self.matcher.set_state(agent, "busy", now)
            self._outside[agent] = call  # type: ignore[assignment]
            self._busy_since[agent] = now

    def _call_gone(self, event: Mapping[str, Any], now: float) -> None:
        call = event.get("call_id")
        r = self._routes.get(call)  # type: ignore[arg-type]
        if r is not None and r.status == "waiting":
            self.leave(r.call_id, now)
        elif r is not None and r.status == "agent" and event["type"] in _ENDS_AGENT_CALL:
            self._finish(r.call_id)
            self._free(r.agent, now)
        for agent, outside in list(self._outside.items()):
            if outside == call:
                del self._outside[agent]
                self._free(agent, now, outside=True)

    def _free(self, agent: Any, now: float, outside: bool = False) -> None:
        """The agent's call ended: wrap-up then ready, unless the agent asked otherwise."""
        have, _, _ = self.matcher.agent_state(agent)
        if have != "busy":
            return
        asked = self._after_call.pop(agent, None)
        self._occupancy(agent, now)
        # A call outside ctid has no wrap-up of ours: the agent goes back to what the PBX says.
        call = self.matcher.call_ended(agent, now, acw=asked is None and not outside)
        if asked == "logged_out":
            self.matcher.set_state(agent, "logged_out", now)
        if outside:
            self._sync_agent(agent, now)
        elif call is not None:
            self._matched(call, agent, now)

    # -- decisions ------------------------------------------------------------------------

    def _offer(self, r: _Route, queue: str, now: float) -> Decision:
        q = self.rules.queues.get(queue)
        if q is None:
            self._error("unknown_queue", repr(queue), now, call_id=r.call_id)
            return self._fallback(r, None, f"unknown_queue: {queue!r}", now)
        r.queue = queue
        r.visited.add(queue)
        skills = r.skills if (r.skills is not None and queue == r.asked) else q.skills
        try:
            agent = self.matcher.offer(r.call_id, queue, skills, r.priority, now)
        except MatchError as exc:
            self._error(exc.code, exc.detail, now, call_id=r.call_id, queue=queue)
            return self._fallback(r, q, f"{exc.code}: {exc.detail}", now)
        if agent is not None:
            return self._selected(r, agent, now)
        r.status = "waiting"
        if q.max_wait > 0:
            self._seq += 1
            r.deadline = self._seq
            heapq.heappush(self._deadlines, (r.since + q.max_wait if queue == r.asked else now + q.max_wait,
                                             self._seq, r.call_id))
        self.counters.inc("routing.queued")
        ex = self.matcher.explain()
        self._event("route.queued", now, queue=queue, call_id=r.call_id, priority=r.priority,
                    considered=ex["considered"], step=ex["step"])
        return Decision(r.call_id, "wait", queue, reason="no qualifying agent is ready",
                        explain={"considered": ex["considered"], "step": ex["step"]})

    def _selected(self, r: _Route, agent: str, now: float) -> Decision:
        ex = self.matcher.explain()
        queue = ex["queue"] or r.queue
        decision = Decision(r.call_id, "agent", queue, agent, self.rules.agents[agent].device,
                            reason=_why(ex), wait=now - r.since,
                            explain={"strategy": ex["rule"], "tier": ex["tier"], "step": ex["step"],
                                     "considered": ex["considered"], "direction": ex["op"]})
        if self._hook is not None:
            request = {"call_id": r.call_id, "queue": r.asked, "caller": r.caller, "priority": r.priority,
                       "skills": dict(r.skills) if r.skills is not None else None}
            answer = self._hook(request, decision.public())
            if answer.get("veto"):
                return self._vetoed(r, agent, str(answer.get("reason", "")), now)
            if answer.get("device"):
                decision.device = str(answer["device"])
        r.status, r.agent, r.queue = "agent", agent, queue
        self._busy_since[agent] = now
        self.counters.inc("routing.selected")
        self._event("route.selected", now, **decision.public())
        return decision

    def _vetoed(self, r: _Route, agent: str, reason: str, now: float) -> Decision:
        """A plugin refused the agent: the call goes to its fallback, the agent is ready again
        (and may take another call) without after-call work."""
        self.counters.inc("routing.vetoes")
        self.matcher.call_ended(agent, now, acw=False)
        q = self.rules.queues.get(r.queue or "")
        decision = self._fallback(r, q, f"vetoed: {reason}", now)
        self._sync_agent(agent, now)
        return decision

    def _fallback(self, r: _Route, q: QueueRule | None, reason: str, now: float) -> Decision:
        fb = q.fallback if q is not None and q.fallback is not None else self.rules.fallback
        if fb.kind == "queue" and fb.target in r.visited:
            fb = self.rules.fallback  # been there: the last resort, never a loop
        self.counters.inc("routing.fallbacks")
        self._event("route.fallback", now, queue=r.queue, call_id=r.call_id, target=str(fb), reason=reason)
        if fb.kind == "queue":
            return self._offer(r, fb.target, now)
        if self._routes.get(r.call_id, r) is r:  # not a stand-in for a call still with its agent
            self._finish(r.call_id)
        return Decision(r.call_id, "fallback", r.queue, target=str(fb), reason=reason, wait=now - r.since)

    def _again(self, request: RouteRequest, old: _Route | None, now: float) -> Decision:
        """A second request for a call: an error, and the call goes to its fallback."""
        self._error("already_routed", f"call {request.call_id!r} was routed already", now,
                    call_id=request.call_id, queue=request.queue)
        if old is None or old.status != "waiting":
            r = _Route(request.call_id, request.queue, request.caller, None, request.priority, now)
            r.visited.update(self.rules.queues)  # not into any queue: it may be with an agent now
            return self._fallback(r, None, "already_routed", now)
        self._unwait(old)
        return self._fallback(old, self.rules.queues.get(old.queue or ""), "already_routed", now)

    def _matched(self, call: Any, agent: Any, now: float) -> Decision:
        return self._emit(self._selected(self._routes[call], agent, now))

    def _emit(self, decision: Decision) -> Decision:
        for listener in self._listeners:
            try:
                listener(decision)
            except Exception:  # one broken route point must not stop the others hearing
                self.counters.inc("routing.listener_errors")
                log.exception("route listener failed", extra={"ctx": {"call_id": decision.call_id}})
        return decision

    # -- helpers --------------------------------------------------------------------------

    def _occupancy(self, agent: str, now: float) -> None:
        """The call ended: add its time to the agent's busy time and tell the matcher the
        agent's occupancy (busy / logged-in time), the key of the least_occupied strategy."""
        busy = self._busy[agent] = self._busy.get(agent, 0.0) + now - self._busy_since.pop(agent, now)
        on = now - self._on_since.get(agent, now)
        self.matcher.set_stats(agent, occupancy=busy / on if on > 0 else 0.0)

    def _unwait(self, r: _Route) -> None:
        self.matcher.remove_call(r.call_id)
        r.status = "new"

    def _finish(self, call_id: str) -> None:
        self._routes.pop(call_id, None)
        self._done[call_id] = None
        if len(self._done) > _DONE_MEMORY:
            self._done.popitem(last=False)

    def _error(self, code: str, detail: str, now: float, **where: Any) -> None:
        self.counters.inc("routing.errors")
        self.counters.inc(f"routing.errors.{code}")
        log.warning("routing error", extra={"ctx": {"code": code, "detail": detail, **where}})
        self._event("route.error", now, queue=where.get("queue"), code=code, detail=detail,
                    call_id=where.get("call_id"), agent=where.get("agent"))

    def _event(self, etype: str, now: float, **fields: Any) -> None:
        """Publish one route.* event; `queue` (the topic key) is always present, None if unknown."""
        self._publish({"type": etype, "ts": now, "source": "routing", "queue": None, **fields})


def _why(ex: Mapping[str, Any]) -> str:
    if ex["op"] == "agent_ready":
        return "the agent became ready: highest priority, then longest (weighted) wait"
    tier = f"tier {ex['tier']}" if ex["tier"] is not None else "no tier"
    step = f", escalation step {ex['step']}" if ex["step"] else ""
    return f"{ex['rule']}: first qualifying agent of {ex['considered']} considered in {tier}{step}"


__all__ = ["Decision", "Fallback", "RouteRequest", "RoutingEngine"]

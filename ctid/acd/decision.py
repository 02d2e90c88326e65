"""What a route point asks (`RouteRequest`) and what the routing engine answers (`Decision`).

Driver-neutral: the Asterisk FastAGI route point and a CSTA RouteRequest both build a
`RouteRequest`, call `RoutingEngine.route()`, and act on the `Decision` (docs/routing.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

#: What the route point does with the call.
ACTIONS = {
    "agent": "connect the call to `device` (the chosen `agent`'s)",
    "wait": "keep the call waiting (music on hold); a later decision for it follows",
    "fallback": "send the call to `target` (voicemail:BOX, callback, busy, announcement:NAME)",
    "reject": "refuse the call (blacklisted caller) with `target` (busy or announcement:NAME)",
}


@dataclass(frozen=True)
class RouteRequest:
    """A route point asking where a call should go."""

    call_id: str
    queue: str
    caller: str | None = None
    skills: Mapping[str, int] | None = None  # None: the queue's own requirement
    priority: int = 0
    source: str = ""  # the driver (or route point) asking

    def public(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "queue": self.queue, "caller": self.caller,
                "skills": dict(self.skills) if self.skills is not None else None, "priority": self.priority}


@dataclass
class Decision:
    """The engine's answer for one call. `action` is one of `ACTIONS`; `explain` says why
    (strategy, tier, escalation step, candidates considered, the winner's key)."""

    call_id: str
    action: str
    queue: str | None = None
    agent: str | None = None
    device: str | None = None
    target: str | None = None
    reason: str = ""
    wait: float = 0.0
    explain: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "action": self.action, "queue": self.queue, "agent": self.agent,
                "device": self.device, "target": self.target, "reason": self.reason, "wait": self.wait,
                **self.explain}

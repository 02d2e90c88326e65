"""Agents as CSTA reports them: which agent id sits at which station, its ACD groups and
whether it is ready in each; the agent.* events that Agent*Event messages cause.

CSTA says `AgentReady` both when an agent comes back from not-ready (news: `agent.ready`)
and when its after-call work ends (no news: the `agent.acw` event already carried the
duration) — the not-ready flags per group tell the two apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ctid.drivers.csta.protocol import device_id, private_data

Event = dict[str, Any]
Body = dict[str, Any]


@dataclass(slots=True)
class Agent:
    agent: str
    device: str
    groups: dict[str, bool] = field(default_factory=dict)  # acdGroup -> not ready
    last_call: str | None = None  # the call_id of its last answered call (for agent.acw)


class Agents:
    """Agents by station; the handlers append agent events to `out`."""

    def __init__(self, source: str, stations: tuple[str, ...], wrapup: dict[str, float],
                 reason_codes: dict[str, str], names: dict[str, str] | None = None) -> None:
        self.source = source
        self.stations = set(stations)
        self.wrapup = wrapup
        self.reason_codes = reason_codes
        self.names = names or {}  # CSTA agent events carry no name: the site's config gives them
        self.by_device: dict[str, Agent] = {}

    def __len__(self) -> int:
        return len(self.by_device)

    def at(self, dev: str | None) -> str | None:
        """The agent id at a station (the station itself for a configured station nobody logged on)."""
        if dev is None:
            return None
        agent = self.by_device.get(dev)
        if agent is not None:
            return agent.agent
        return dev if dev in self.stations else None

    def is_station(self, dev: str | None) -> bool:
        return dev is not None and (dev in self.stations or dev in self.by_device)

    def answered(self, dev: str | None, call_id: str) -> None:
        agent = self.by_device.get(dev or "")
        if agent is not None:
            agent.last_call = call_id

    def _agent(self, b: Body) -> Agent:
        dev = device_id(b.get("agentDevice")) or b["agentDevice"]
        agent = self.by_device.get(dev)
        agent_id = b.get("agentID") or dev
        if agent is None or agent.agent != agent_id:
            agent = self.by_device[dev] = Agent(agent_id, dev)
        return agent

    def event(self, type_: str, agent: Agent, ts: float, group: str | None, **extra: Any) -> Event:
        event: Event = {"type": type_, "ts": ts, "source": self.source, "agent": agent.agent,
                        "name": self.names.get(agent.agent),
                        "queue": group, "device": agent.device}
        event.update(extra)
        return event

    def _reason(self, code: str | None) -> str | None:
        return self.reason_codes.get(code, code) if code else None

    # -- handlers (message body, arrival time, server time, out) --------------------------------

    def logged_on(self, b: Body, ts: float, t: float, out: list[Event]) -> None:
        agent = self._agent(b)
        group = b.get("acdGroup") or None
        if group is not None:
            agent.groups[group] = False
        out.append(self.event("agent.logged_on", agent, ts, group))

    def logged_off(self, b: Body, ts: float, t: float, out: list[Event]) -> None:
        agent = self._agent(b)
        group = b.get("acdGroup") or None
        if group is None:
            agent.groups.clear()
        else:
            agent.groups.pop(group, None)
        out.append(self.event("agent.logged_off", agent, ts, group))

    def ready(self, b: Body, ts: float, t: float, out: list[Event]) -> None:
        agent = self._agent(b)
        group = b.get("acdGroup") or None
        groups = [group] if group is not None else list(agent.groups)
        if not any(agent.groups.get(g) for g in groups):
            return  # the end of after-call work
        for g in groups:
            agent.groups[g] = False
        out.append(self.event("agent.ready", agent, ts, group))

    def not_ready(self, b: Body, ts: float, t: float, out: list[Event]) -> None:
        agent = self._agent(b)
        group = b.get("acdGroup") or None
        for g in [group] if group is not None else list(agent.groups):
            agent.groups[g] = True
        reason = self._reason(private_data(b).get("ReasonCode"))
        out.append(self.event("agent.not_ready", agent, ts, group, reason=reason))

    def after_call(self, b: Body, ts: float, t: float, out: list[Event]) -> None:
        agent = self._agent(b)
        group = b.get("acdGroup") or None
        duration = self.wrapup.get(group) if group else None
        out.append(self.event("agent.acw", agent, ts, group, call_id=agent.last_call, duration=duration))

    def resync(self, states: dict[str, list[tuple[str, ...]]], ts: float, out: list[Event]) -> None:
        """GetAgentState answers (device -> [(agent id, group, ready|notReady, reason code)]):
        groups first seen are logged on; a readiness that changed out of sight is told."""
        for dev, entries in states.items():
            for agent_id, group, state, *rest in entries:
                agent = self.by_device.get(dev)
                known = agent.groups.get(group) if agent is not None else None
                if known is None:
                    self.logged_on({"agentDevice": dev, "agentID": agent_id, "acdGroup": group}, ts, ts, out)
                    known = False
                agent = self.by_device[dev]
                not_ready = state == "notReady"
                if not_ready != known:
                    agent.groups[group] = not_ready
                    if not_ready:
                        out.append(self.event("agent.not_ready", agent, ts, group,
                                              reason=self._reason(rest[0] if rest else None)))
                    else:
                        out.append(self.event("agent.ready", agent, ts, group))

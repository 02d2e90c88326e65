"""Agent happenings of the call center -> the CSTA agent events an AES-like server reports.

Logon and logoff per ACD split (`member_add` / `member_remove`), not-ready with its reason
code and ready per split (`pause` / `unpause`), after-call work and its end (`wrapup_start` /
`wrapup_end`). Agents log in with their extension as agent id and sit at the station of the
same number; each event is reported on the agent's station, and on the split where it names
one. Reason codes number the site's pause reasons from 1, as a Communication Manager's do.
"""

from __future__ import annotations

from typing import Any, Callable

from ctid.drivers.csta.protocol import device
from ctid.sim.model import Agent, Happening

Emit = Callable[..., None]  # CstaRenderer.emit(devices, name, fields, **private)


class AgentRenderer:
    """Renders agent happenings through `emit`; `handlers` maps each happening kind it takes."""

    def __init__(self, pause_reasons: tuple[str, ...], emit: Emit) -> None:
        self._emit = emit
        self.reasons = {r: str(i) for i, r in enumerate(pause_reasons, 1)}  # reason code per pause reason
        self.last_queue: dict[str, str] = {}  # agent ext -> the queue of its last call (for its ACW)
        self.handlers: dict[str, Callable[[Happening], None]] = {
            "wrapup_start": self.wrapup_start, "wrapup_end": self.wrapup_end, "pause": self.pause,
            "unpause": self.unpause, "member_add": self.member_add, "member_remove": self.member_remove}

    def reason_code(self, reason: str) -> str:
        """The reason code of a pause reason (an unknown reason passes as is; none is "0")."""
        return self.reasons.get(reason) or reason or "0"

    def _agent(self, agent: Agent, group: str | None = None) -> dict[str, Any]:
        return {"agentDevice": device(agent.ext), "agentID": agent.ext, "acdGroup": group}

    def wrapup_start(self, h: Happening) -> None:
        agent = h.agent
        assert agent is not None
        group = h.queue or self.last_queue.get(agent.ext)  # wrapup_start does not say which queue's call it follows
        self._emit((agent.ext, group), "AgentWorkingAfterCallEvent", self._agent(agent, group))

    def wrapup_end(self, h: Happening) -> None:
        agent = h.agent
        assert agent is not None
        if not any(m.paused for m in agent.members.values()):  # else it stays not ready
            self._emit((agent.ext,), "AgentReadyEvent", self._agent(agent))

    def pause(self, h: Happening, paused: bool = True) -> None:
        agent = h.agent
        assert agent is not None
        for queue in h.info["queues"]:
            if queue not in agent.members:
                continue
            if paused:
                self._emit((agent.ext, queue), "AgentNotReadyEvent", self._agent(agent, queue),
                           ReasonCode=self.reason_code(h.info.get("reason") or ""))
            else:
                self._emit((agent.ext, queue), "AgentReadyEvent", self._agent(agent, queue))

    def unpause(self, h: Happening) -> None:
        self.pause(h, paused=False)

    def member_add(self, h: Happening) -> None:
        agent, queue = h.agent, h.queue or ""
        assert agent is not None
        self._emit((agent.ext, queue), "AgentLoggedOnEvent", self._agent(agent, queue))
        m = agent.members.get(queue)
        if m is not None and m.paused:
            self._emit((agent.ext, queue), "AgentNotReadyEvent", self._agent(agent, queue),
                       ReasonCode=self.reason_code(m.reason))

    def member_remove(self, h: Happening) -> None:
        agent, queue = h.agent, h.queue or ""
        assert agent is not None
        self._emit((agent.ext, queue), "AgentLoggedOffEvent", self._agent(agent, queue))

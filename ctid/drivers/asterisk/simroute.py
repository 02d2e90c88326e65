"""The simulator's route-point mode: its queued calls ask ctid over FastAGI who takes them.

`RoutePoint(sim, host, port).install()` turns the simulated Asterisk's queues off: every call
that joins a queue runs `AGI(agi://host:port/route?queue=Q)` (simagi.py, as the dialplan in
config/extensions-ctid.conf does), waits with music on hold, and when ctid answers the call
rings the agent whose device ctid named, or leaves for its fallback. A caller whose patience
runs out hangs up on the AGI, as a real one would. The rest of the simulator (AMI events,
agents, talk, wrap-up) is unchanged, so the daemon sees the same PBX it always sees.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ctid.config import agent_id_of
from ctid.drivers.asterisk.simagi import run_agi
from ctid.sim.model import Call, Happening

if TYPE_CHECKING:
    from ctid.drivers.asterisk.sim import AmiSimulator

log = logging.getLogger("ctid.sim.route")


class RoutePoint:
    def __init__(self, sim: AmiSimulator, host: str, port: int) -> None:
        self.sim, self.host, self.port = sim, host, port
        self.hangups: dict[int, asyncio.Event] = {}  # call id -> set when the caller leaves
        self.tasks: set[asyncio.Task] = set()
        self.answers: dict[str, int] = {}  # CTID_ACTION (or "none") -> count
        self.refused = 0  # ctid named an agent the simulated PBX could not ring

    def install(self) -> RoutePoint:
        self.sim.model.router = self._ask
        self.sim.model.sinks.append(self._watch)
        return self

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def _watch(self, h: Happening) -> None:
        if h.kind in ("abandon", "timeout") and h.call is not None and h.call.id in self.hangups:
            self.hangups[h.call.id].set()

    def _ask(self, call: Call) -> None:
        legs = self.sim.renderer.legs.get(call.id)
        if legs is None:  # not rendered (cannot happen for a queued inbound call): let it wait
            return
        self.hangups.setdefault(call.id, asyncio.Event())
        task = asyncio.ensure_future(self._session(call, legs.c1.linkedid))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _session(self, call: Call, linkedid: str) -> None:
        hangup = self.hangups[call.id]
        try:
            channel = await run_agi(self.host, self.port, linkedid=linkedid, queue=call.queue or "",
                                    caller=None if call.number == "anonymous" else call.number, hangup=hangup)
        except OSError as exc:  # ctid is not there: the call keeps waiting, as with a dead AGI server
            log.warning("route point unreachable", extra={"ctx": {"call": call.ref, "error": repr(exc)}})
            return
        action = channel.variables.get("CTID_ACTION", "none")
        self.answers[action] = self.answers.get(action, 0) + 1
        self.sim.sync()  # the model up to now before it acts on the answer
        if action == "agent":
            if not self.sim.model.connect_routed(call.id, agent_id_of(channel.variables.get("CTID_DEVICE", ""))):
                self.refused += 1
                self.sim.model.fallback_routed(call.id)
        elif not channel.hung_up:
            self.sim.model.fallback_routed(call.id)
        self.hangups.pop(call.id, None)
        self.sim.flush()
        self.sim._wake.set()  # the ring it scheduled may be due before the ticker's next look

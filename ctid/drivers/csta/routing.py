"""Where a RouteRequest goes. The link asks a `RouteChooser` for each request and answers
RouteSelect with the destination it names (None: no answer, the PBX's vector goes on).

`DefaultRoute` answers with a configured destination per routing device, else a site-wide
default. `EngineRoute` asks ctid's ACD (`ctid.acd`, `[routing]`): the daemon attaches it to
the driver when the site has routing rules; the engine publishes its own route.* events.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Mapping, Protocol

if TYPE_CHECKING:
    from ctid.acd.decision import Decision
    from ctid.acd.engine import RoutingEngine


class RouteChooser(Protocol):
    name: str
    publishes: bool  # True: it publishes route.request / route.selected itself

    async def choose(self, request: Mapping[str, Any]) -> str | None:
        """The destination (a device id: a split, a station, a number) for a `route.request` event."""


class DefaultRoute:
    """The configured answer: `targets[routing device]`, else `default` (None: do not answer)."""

    name = "default"
    publishes = False

    def __init__(self, default: str | None = None, targets: Mapping[str, str] | None = None) -> None:
        self.default = default
        self.targets = dict(targets or {})

    async def choose(self, request: Mapping[str, Any]) -> str | None:
        return self.targets.get(str(request.get("queue") or ""), self.default)


class EngineRoute:
    """ctid's routing engine decides. A call the engine makes wait gets its RouteSelect when
    the engine's later decision for it comes (an agent frees up, or max wait's fallback)."""

    name = "engine"
    publishes = True

    def __init__(self, engine: RoutingEngine, source: str) -> None:
        self.engine = engine
        self.source = source
        self._waiting: dict[str, asyncio.Future[Decision]] = {}
        engine.listen(self._later)

    def _later(self, decision: Decision) -> None:
        future = self._waiting.pop(decision.call_id, None)
        if future is not None and not future.done():
            future.set_result(decision)

    async def choose(self, request: Mapping[str, Any]) -> str | None:
        from ctid.acd.decision import RouteRequest

        call_id = str(request.get("call_id") or (request.get("x") or {}).get("cross_ref") or "")
        decision = self.engine.route(RouteRequest(call_id, str(request.get("queue") or ""),
                                                  request.get("caller"), source=self.source))
        if decision.action == "wait":
            future = self._waiting[call_id] = asyncio.get_running_loop().create_future()
            try:
                decision = await future
            finally:  # cancelled when the server ends the route (the caller left) or the link drops
                self._waiting.pop(call_id, None)
        return decision.device if decision.action == "agent" else decision.target

"""The routing engine inside the daemon: built from `[routing]`, fed every event, ticking, and
serving its route points (the `route` bus op; FastAGI when `routing.fastagi` is set).

Without `[routing]` queues the service is inert: `observe` returns at once and the `route` op
answers `not_configured`, so a site that lets its PBX route pays nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Mapping

from ctid.acd.decision import RouteRequest
from ctid.acd.engine import RouteHook, RoutingEngine
from ctid.acd.rules import RoutingRules
from ctid.bus import RequestError
from ctid.metrics import Counters

log = logging.getLogger("ctid.routing")

_ROUTE_KEYS = {"op", "id", "call_id", "queue", "caller", "skills", "priority"}


class RoutingService:
    def __init__(self, rules: RoutingRules, publish: Callable[[dict[str, Any]], None], counters: Counters,
                 route_hook: RouteHook, agent_state: Callable[[str], str | None],
                 register_op: Callable[..., None]) -> None:
        self.engine = RoutingEngine(rules, publish, counters, route_hook=route_hook, agent_state=agent_state) \
            if rules.enabled else None
        self._servers: list[Any] = []
        self._tasks: list[asyncio.Task] = []
        register_op("route", self._route_op, "a route point's request: where the call goes (docs/routing.md)")

    def observe(self, event: dict[str, Any]) -> None:
        if self.engine is not None and not event["type"].startswith("route."):
            self.engine.observe(event)

    async def start(self) -> None:
        if self.engine is None:
            return
        self._tasks.append(asyncio.ensure_future(self.engine.run()))
        if self.engine.rules.fastagi:
            # Asterisk's route point; imported here so a site without it never loads the module.
            from ctid.drivers.asterisk.fastagi import FastAgiServer

            host, _, port = self.engine.rules.fastagi.rpartition(":")
            server = FastAgiServer(self.engine, self.engine.counters, poll=self.engine.rules.fastagi_poll)
            await server.start(host or "127.0.0.1", int(port))
            self._servers.append(server)

    async def stop(self) -> None:
        for server in self._servers:
            await server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _route_op(self, request: Mapping[str, Any]) -> dict[str, Any]:
        if self.engine is None:
            raise RequestError("not_configured", "this site has no [routing] queues")
        return self.engine.route(parse_request(request, "bus")).public()


def parse_request(request: Mapping[str, Any], source: str) -> RouteRequest:
    """A `route` op's map as a RouteRequest; RequestError('bad_request') names the bad key."""
    unknown = sorted(set(request) - _ROUTE_KEYS)
    if unknown:
        raise RequestError("bad_request", f"unknown key(s): {', '.join(unknown)}")
    for key in ("call_id", "queue"):
        if not isinstance(request.get(key), str) or not request[key]:
            raise RequestError("bad_request", f"{key}: a non-empty string is required")
    caller = request.get("caller")
    if caller is not None and not isinstance(caller, str):
        raise RequestError("bad_request", f"caller: expected a string, got {caller!r}")
    skills = request.get("skills")
    if skills is not None and not (isinstance(skills, dict) and all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in skills.items())):
        raise RequestError("bad_request", f"skills: expected a map of skill -> level, got {skills!r}")
    priority = request.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise RequestError("bad_request", f"priority: expected an int, got {priority!r}")
    return RouteRequest(request["call_id"], request["queue"], caller, skills, priority, source)

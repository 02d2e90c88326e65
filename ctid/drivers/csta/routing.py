"""Where a RouteRequest goes. The link asks a `RouteChooser` for each request and answers
RouteSelect with the destination it names (None: no answer, the PBX's vector goes on).

Today's chooser is `DefaultRoute`: a configured destination per routing device and a
site-wide default. The ACD routing engine (`ctid/acd/`, issue #3) is meant to plug in
here as another `RouteChooser` once it has landed; nothing else in the driver changes.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol


class RouteChooser(Protocol):
    name: str

    async def choose(self, request: Mapping[str, Any]) -> str | None:
        """The destination (a device id: a split, a station, a number) for a `route.request` event."""


class DefaultRoute:
    """The configured answer: `targets[routing device]`, else `default` (None: do not answer)."""

    name = "default"

    def __init__(self, default: str | None = None, targets: Mapping[str, str] | None = None) -> None:
        self.default = default
        self.targets = dict(targets or {})

    async def choose(self, request: Mapping[str, Any]) -> str | None:
        return self.targets.get(str(request.get("queue") or ""), self.default)

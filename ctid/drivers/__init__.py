"""PBX drivers. A driver is found by its kind through the `ctid.drivers` entry point group,
so a site installs a driver package and names it in `[[driver]] kind = ...`.

The contract (`Driver`): built from its `DriverConfig`, a sink that takes normalized
event dicts, and the daemon's counters; `run()` serves until `stop()`, reconnecting
by itself; bad PBX input is counted, never raised.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, Callable, Protocol

from ctid.config import DriverConfig
from ctid.metrics import Counters

ENTRY_POINT_GROUP = "ctid.drivers"

Sink = Callable[[dict[str, Any]], None]


class Driver(Protocol):
    kind: str
    name: str

    def __init__(self, config: DriverConfig, sink: Sink, counters: Counters) -> None: ...

    async def run(self) -> None:
        """Connect, log in, resync, publish events; reconnect with backoff until stop()."""

    async def stop(self) -> None:
        """Log off and close; run() returns soon after."""


class UnknownDriver(LookupError):
    pass


def available() -> dict[str, str]:
    """Installed driver kinds -> 'module:attr'."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load(kind: str) -> type[Driver]:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == kind:
            return ep.load()
    known = ", ".join(sorted(available())) or "none installed"
    raise UnknownDriver(f"no driver of kind {kind!r} (installed: {known})")

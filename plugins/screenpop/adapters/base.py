"""What a CRM adapter is: built from its options, started, asked per call, closed.

An adapter class (or any factory) takes `(options, env)`: its own `[plugins.screenpop.NAME]`
table and an `AdapterEnv`. It has a static `check(options) -> list[str]` that returns
problems as `key: problem`, a `needs_number` flag (False: it is asked even for a withheld or
invalid caller id), and three coroutines: `start()`, `lookup(call) -> Lookup` and
`close()`. `lookup` raises `LookupFailed` (or anything) when the CRM failed; the pop then
goes out partial, with the error. It must not block the event loop: blocking work goes to a
thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from sqlalchemy import Engine

from ctid_plugins.screenpop.numbers import NumberPlan

#: The contact record fields a pop carries (`contact` in the payload).
CONTACT_FIELDS = ("name", "company", "level", "vip", "notes", "custom")


class LookupFailed(Exception):
    """The CRM did not give a usable answer (HTTP 500, invalid JSON, ...): a clear message."""


@dataclass
class Lookup:
    """One adapter's answer: a record (None: not found), tickets, a URL for the desktop."""

    contact: dict[str, Any] | None = None
    tickets: list[Any] = field(default_factory=list)
    url: str | None = None


@dataclass(frozen=True)
class AdapterEnv:
    """What an adapter gets from the plugin."""

    name: str  # the adapter's name, as in `adapters = [...]`
    engine: Engine  # the ctid database (SQLAlchemy), shared by the plugin
    plan: NumberPlan  # how numbers are normalized at this site
    log: logging.Logger
    count: Callable[..., None]  # ctx.count: counter plugins.screenpop.<what>


class Adapter(Protocol):
    needs_number: bool

    async def start(self) -> None: ...

    async def lookup(self, call: Mapping[str, str]) -> Lookup: ...

    async def close(self) -> None: ...


class AdapterFactory(Protocol):
    def __call__(self, options: Mapping[str, Any], env: AdapterEnv) -> Adapter: ...

    @staticmethod
    def check(options: Mapping[str, Any]) -> list[str]: ...


def unknown_keys(options: Mapping[str, Any], allowed: set[str]) -> list[str]:
    """`key: unknown key` for every key an adapter does not know."""
    return [f"{key}: unknown key (known: {', '.join(sorted(allowed))})" for key in options if key not in allowed]

"""The plugin contract: every hook a ctid plugin may implement.

A plugin is any object or module with `@hookimpl` functions, found through the
`ctid.plugins` entry point group and enabled by name in `[plugins] enabled`. Its
own settings are the `[plugins.NAME]` table, handed to it as `ctx.options`.

The host (`ctid.plugins.PluginHost`) calls each plugin on its own: a plugin that
raises, hangs or is slow is timed out, logged with its name, counted, and disabled
after `max_failures` failures in a row; the daemon and the other plugins go on.
`docs/plugins.md` documents every hook here; a test fails when one is missing.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

import pluggy

if TYPE_CHECKING:
    from ctid.plugins import PluginContext

PROJECT = "ctid"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Event = dict[str, Any]
RequestHandler = Callable[[dict[str, Any]], Any]


@hookspec
def ctid_config_check(options: Mapping[str, Any]) -> list[str] | None:
    """When the config is loaded, before anything starts: check this plugin's own
    `[plugins.NAME]` table. Return problems as `"key: problem"` strings (reported as
    `plugins.NAME.key: problem`, and the daemon does not start), or None. Sync."""


@hookspec
def ctid_startup(ctx: PluginContext) -> Awaitable[None] | None:
    """Once, after the bus is bound and before drivers connect. May be async; it is
    awaited with the plugin timeout. Raising disables the plugin, not the daemon."""


@hookspec
def ctid_shutdown(ctx: PluginContext) -> Awaitable[None] | None:
    """Once, when the daemon stops, after the last event was delivered. May be async."""


@hookspec
def ctid_event_types() -> set[str] | None:
    """Which event types (exact `type` values, or `category.` prefixes such as `call.`)
    this plugin's `ctid_event` wants; None means all. Asked once at startup: events a
    plugin does not want are never queued for it."""


@hookspec
def ctid_event(event: Event, ctx: PluginContext) -> Awaitable[None] | None:
    """For every normalized event (after the state applied it and the bus published it),
    in order, from the plugin's own queue. A sync implementation runs in the plugin's own
    worker thread; an async one on the event loop. Each call is bounded by the plugin
    timeout. Must not modify `event` (other plugins get the same dict)."""


@hookspec
def ctid_request_ops(ctx: PluginContext) -> Mapping[str, RequestHandler] | None:
    """At startup: request ops this plugin adds to the bus's request socket, as
    {op name: handler}. A handler gets the request map and returns the result, or an
    awaitable of it; it raises `ctid.bus.RequestError(code, message)` for a clear error.
    A name already taken is an error that disables the plugin."""


@hookspec
def ctid_cli(subparsers: argparse._SubParsersAction) -> None:
    """When the `ctid` command line is built: add subcommands with
    `subparsers.add_parser(...)` and `set_defaults(func=...)`; `func(args)` returns the
    exit code. Called for every installed plugin, enabled or not."""


@hookspec(firstresult=True)
def ctid_route(request: Mapping[str, Any], decision: Mapping[str, Any], ctx: PluginContext) -> Mapping[str, Any] | None:
    """When the routing engine has chosen an agent for a call: return None to keep
    `decision`, a changed decision to adjust it, or `{"veto": True, "reason": ...}` to
    refuse it. The first non-None result wins. Sync and fast: it is on the routing path."""

"""The reporting plugin's hookimpls, and nothing else: each one hands over to the module doing the job.

Registered as `reporting = "ctid_plugins.reporting.plugin:plugin"` in the `ctid.plugins` entry
point group. Heavy imports (SQLAlchemy engines, plotly, aiohttp) happen when a hook needs them,
not at import: every `ctid` command imports this module to collect plugin subcommands.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Mapping

from ctid.hookspecs import hookimpl

from ctid_plugins.reporting import config

if TYPE_CHECKING:
    from ctid.plugins import PluginContext

    from ctid_plugins.reporting.live import Live


class Reporting:
    """One instance per daemon (or the module's `plugin` for the installed entry point)."""

    def __init__(self) -> None:
        self.live: Live | None = None

    @hookimpl
    def ctid_config_check(self, options: Mapping[str, Any]) -> list[str]:
        return config.check(options)

    @hookimpl
    async def ctid_startup(self, ctx: PluginContext) -> None:
        from ctid_plugins.reporting.live import Live

        self.live = await Live.start(ctx)

    @hookimpl
    async def ctid_shutdown(self) -> None:
        if self.live is not None:
            await self.live.close()
            self.live = None

    @hookimpl
    def ctid_event_types(self) -> set[str]:
        return {"queue.stats"}  # no events needed: stats come from the state and the store

    @hookimpl
    def ctid_cli(self, subparsers: argparse._SubParsersAction) -> None:
        from ctid_plugins.reporting.cli import add_commands

        add_commands(subparsers)


plugin = Reporting()

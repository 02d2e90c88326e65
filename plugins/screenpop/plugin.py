"""The screen pop's hookimpls, and nothing else: each one hands over to the module doing the job.

Registered as `screenpop = "ctid_plugins.screenpop.plugin:plugin"` in the `ctid.plugins`
entry point group. Heavy imports (SQLAlchemy engines, httpx) happen in `ctid_startup`, not
at import: every `ctid` command imports this module to collect plugin subcommands.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ctid.hookspecs import hookimpl

from ctid_plugins.screenpop import config

if TYPE_CHECKING:
    from ctid.plugins import PluginContext

    from ctid_plugins.screenpop.service import Service


class ScreenPop:
    """One instance per daemon (or the module's `plugin` for the installed entry point)."""

    def __init__(self) -> None:
        self.service: Service | None = None

    @hookimpl
    def ctid_config_check(self, options: Mapping[str, Any]) -> list[str]:
        return config.check(options)

    @hookimpl
    async def ctid_startup(self, ctx: PluginContext) -> None:
        from ctid_plugins.screenpop.service import Service

        self.service = await Service.start(ctx)

    @hookimpl
    async def ctid_shutdown(self) -> None:
        if self.service is not None:
            await self.service.close()
            self.service = None

    @hookimpl
    def ctid_event_types(self) -> set[str]:
        return {"call.delivered", "call.established"}

    @hookimpl
    async def ctid_event(self, event: dict[str, Any]) -> None:
        if self.service is not None:
            self.service.submit(event)

    @hookimpl
    def ctid_request_ops(self) -> Mapping[str, Callable[[dict[str, Any]], Any]]:
        from ctid_plugins.screenpop.contacts.ops import make_ops

        assert self.service is not None, "ctid_request_ops is asked after ctid_startup"
        return make_ops(self.service.contacts)

    @hookimpl
    def ctid_cli(self, subparsers: argparse._SubParsersAction) -> None:
        from ctid_plugins.screenpop.contacts.cli import add_commands

        add_commands(subparsers)


plugin = ScreenPop()

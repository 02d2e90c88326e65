"""The QA plugin's hookimpls, and nothing else: each one hands over to the module doing the job.

Registered as `qa = "ctid_plugins.qa.plugin:plugin"` in the `ctid.plugins` entry point group.
SQLAlchemy engines are made in `ctid_startup`, not at import.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ctid.hookspecs import hookimpl

from ctid_plugins.qa import config

if TYPE_CHECKING:
    from ctid.plugins import PluginContext

    from ctid_plugins.qa.service import QaService


class Qa:
    """One instance per daemon (or the module's `plugin` for the installed entry point)."""

    def __init__(self) -> None:
        self.service: QaService | None = None

    @hookimpl
    def ctid_config_check(self, options: Mapping[str, Any]) -> list[str]:
        return config.check(options)

    @hookimpl
    def ctid_startup(self, ctx: PluginContext) -> None:
        from ctid_plugins.qa.service import QaService

        self.service = QaService.open(ctx.database_url, config.Options.parse(ctx.options))

    @hookimpl
    def ctid_shutdown(self) -> None:
        if self.service is not None:
            self.service.close()
            self.service = None

    @hookimpl
    def ctid_event_types(self) -> set[str]:
        return {"qa."}  # no call events needed: QA works on the stored CDRs

    @hookimpl
    def ctid_request_ops(self) -> Mapping[str, Callable[[dict[str, Any]], Any]]:
        from ctid_plugins.qa.ops import make_ops

        assert self.service is not None, "ctid_request_ops is asked after ctid_startup"
        return make_ops(self.service)

    @hookimpl
    def ctid_cli(self, subparsers: argparse._SubParsersAction) -> None:
        from ctid_plugins.qa.cli import add_commands

        add_commands(subparsers)


plugin = Qa()

"""The reporting plugin's hookimpls, and nothing else: each one hands over to the module doing the job.

Registered as `reporting = "ctid_plugins.reporting.plugin:plugin"` in the `ctid.plugins` entry
point group. Heavy imports (SQLAlchemy, plotly, aiohttp) happen when a hook needs them, not at
import: every `ctid` command imports this module to collect plugin subcommands.
"""

from __future__ import annotations

import argparse
from typing import Any, Mapping

from ctid.hookspecs import hookimpl

from ctid_plugins.reporting import config


class Reporting:
    """One instance per daemon (or the module's `plugin` for the installed entry point)."""

    @hookimpl
    def ctid_config_check(self, options: Mapping[str, Any]) -> list[str]:
        return config.check(options)

    @hookimpl
    def ctid_cli(self, subparsers: argparse._SubParsersAction) -> None:
        from ctid_plugins.reporting.cli import add_commands

        add_commands(subparsers)


plugin = Reporting()

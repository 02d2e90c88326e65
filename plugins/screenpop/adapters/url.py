"""The URL-only adapter: no lookup, just the agent's CRM page for this call.

`[plugins.screenpop.url] url = "https://crm.example/calls/new?number={caller}&queue={queue}"`:
the pop's `url` is the template filled with the call's fields. It is sent for every call,
withheld and invalid caller ids included (`{caller}` is then empty), so the desktop can
always open the CRM.
"""

from __future__ import annotations

from typing import Any, Mapping

from ctid_plugins.screenpop.adapters import template
from ctid_plugins.screenpop.adapters.base import AdapterEnv, Lookup, unknown_keys


class UrlAdapter:
    needs_number = False

    def __init__(self, options: Mapping[str, Any], env: AdapterEnv) -> None:
        self.template: str = options["url"]

    @staticmethod
    def check(options: Mapping[str, Any]) -> list[str]:
        if "url" not in options:
            return ["url: required: the URL template, e.g. https://crm.example/pop?number={caller}"]
        problem = template.check(options["url"])
        return ([f"url: {problem}"] if problem else []) + unknown_keys(options, {"url"})

    async def start(self) -> None:
        pass

    async def lookup(self, call: Mapping[str, str]) -> Lookup:
        return Lookup(url=template.fill(self.template, call))

    async def close(self) -> None:
        pass

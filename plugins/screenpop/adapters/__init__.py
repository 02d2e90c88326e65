"""The adapter registry: the built-in CRM adapters plus any installed in the
`ctid.screenpop.adapters` entry point group (`name = "module:Factory"`).

A built-in name cannot be taken over by an installed adapter: a site that configures
`contacts` always gets ctid's own contact store.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from ctid_plugins.screenpop.adapters.base import AdapterFactory

ENTRY_POINT_GROUP = "ctid.screenpop.adapters"

BUILTIN = {
    "contacts": "ctid_plugins.screenpop.adapters.contacts:ContactsAdapter",
    "http": "ctid_plugins.screenpop.adapters.http:HttpAdapter",
    "url": "ctid_plugins.screenpop.adapters.url:UrlAdapter",
}


def available() -> dict[str, str]:
    """Every adapter name -> where it comes from (`module:object`)."""
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {**found, **BUILTIN}


def load(name: str) -> AdapterFactory:
    """The factory of one adapter; LookupError if there is none by that name."""
    target = BUILTIN.get(name)
    if target is None:
        for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
            return ep.load()
        raise LookupError(f"no screen pop adapter named {name!r}")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)

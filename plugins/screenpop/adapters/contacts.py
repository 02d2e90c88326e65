"""The built-in CRM: the `contact` table of the ctid database (see `contacts/`).

No settings of its own. The lookup is one indexed SELECT, run in a thread
(`asyncio.to_thread`) so the event loop never waits for the database.
"""

from __future__ import annotations

import asyncio
from typing import Any, Mapping

from ctid_plugins.screenpop.adapters.base import CONTACT_FIELDS, AdapterEnv, Lookup, unknown_keys
from ctid_plugins.screenpop.contacts.store import ContactStore


class ContactsAdapter:
    needs_number = True

    def __init__(self, options: Mapping[str, Any], env: AdapterEnv) -> None:
        self.store = ContactStore(env.engine, env.plan)

    @staticmethod
    def check(options: Mapping[str, Any]) -> list[str]:
        return unknown_keys(options, set())

    async def start(self) -> None:
        await asyncio.to_thread(self.store.create_tables)

    async def lookup(self, call: Mapping[str, str]) -> Lookup:
        row = await asyncio.to_thread(self.store.get, call["caller"])
        if row is None:
            return Lookup()
        return Lookup(contact={k: row[k] for k in CONTACT_FIELDS})

    async def close(self) -> None:
        pass

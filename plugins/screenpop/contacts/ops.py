"""The `contacts.*` request ops on the bus (`ctid_request_ops`).

Handlers are plain functions: the plugin host runs them in the plugin's own thread, so the
blocking database calls never touch the event loop. A refused request raises
`RequestError` (`bad_request`, `not_found`), which the client gets as its error code.
"""

from __future__ import annotations

from typing import Any, Callable

from ctid.bus import RequestError

from ctid_plugins.screenpop.contacts.models import FIELDS
from ctid_plugins.screenpop.contacts.store import ContactError, ContactStore


def make_ops(store: ContactStore) -> dict[str, Callable[[dict[str, Any]], Any]]:
    def number(request: dict[str, Any]) -> str:
        try:
            return store.number(request.get("number"))
        except ContactError as exc:
            raise RequestError("bad_request", str(exc)) from None

    def search(request: dict[str, Any]) -> list[dict[str, Any]]:
        """contacts whose number, name or company contains `q` (`limit`, default 50)"""
        q, limit = request.get("q", ""), request.get("limit", 50)
        if not isinstance(q, str) or not isinstance(limit, int) or isinstance(limit, bool):
            raise RequestError("bad_request", "expected `q` text and `limit` an integer")
        return store.search(q, limit)

    def get(request: dict[str, Any]) -> dict[str, Any]:
        """the contact of `number`"""
        contact = store.get(number(request))
        if contact is None:
            raise RequestError("not_found", f"no contact with number {number(request)}")
        return contact

    def upsert(request: dict[str, Any]) -> dict[str, Any]:
        """create the contact of `number` or change the fields given; {contact, created}"""
        fields = {k: v for k, v in request.items() if k in FIELDS}
        unknown = sorted(set(request) - set(FIELDS) - {"op", "id"})
        if unknown:
            raise RequestError("bad_request", f"{unknown[0]}: unknown field (fields: {', '.join(FIELDS)})")
        try:
            contact, created = store.upsert(fields)
        except ContactError as exc:
            raise RequestError("bad_request", str(exc)) from None
        return {"contact": contact, "created": created}

    def delete(request: dict[str, Any]) -> dict[str, Any]:
        """delete the contact of `number`"""
        if not store.delete(number(request)):
            raise RequestError("not_found", f"no contact with number {number(request)}")
        return {"deleted": number(request)}

    return {"contacts.search": search, "contacts.get": get, "contacts.upsert": upsert, "contacts.delete": delete}


"""CRM JSON -> pop fields, by dotted paths: `name = "data.customer.full_name"`.

A path walks objects by key and arrays by index (`results.0.name`); a missing step gives
None. Targets are the contact fields (`name`, `company`, `level`, `vip`, `notes`,
`custom`), `custom.<key>` for one custom field, `tickets` (an array of the CRM's open
tickets or service orders, passed on as they are) and `url`. Without a mapping each target
is read from the top-level key of the same name.
"""

from __future__ import annotations

from typing import Any, Mapping

from ctid_plugins.screenpop.adapters.base import Lookup

TARGETS = ("name", "company", "level", "vip", "notes", "custom", "tickets", "url")
DEFAULT = {t: t for t in TARGETS}
_TEXT = ("name", "company", "level", "notes")


def check(mapping: object) -> list[str]:
    if not isinstance(mapping, Mapping):
        return [f"expected a table of pop field = \"dotted.path\", got {mapping!r}"]
    problems = []
    for target, path in mapping.items():
        if target not in TARGETS and not (target.startswith("custom.") and len(target) > 7):
            problems.append(f"{target}: not a pop field (fields: {', '.join(TARGETS)}, custom.<key>)")
        elif not isinstance(path, str) or not path or any(not part for part in path.split(".")):
            problems.append(f"{target}: expected a dotted path such as \"data.customer.name\", got {path!r}")
    return problems


def resolve(doc: Any, path: str) -> Any:
    cur = doc
    for part in path.split("."):
        if isinstance(cur, Mapping):
            cur = cur.get(part)
        elif isinstance(cur, list) and part.lstrip("-").isdigit() and -len(cur) <= int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
        if cur is None:
            return None
    return cur


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "y", "vip")
    return bool(value)


def apply(doc: Any, mapping: Mapping[str, str] | None = None) -> Lookup:
    """The Lookup a CRM answer gives; no contact when none of the record's fields is there."""
    values = {target: resolve(doc, path) for target, path in (mapping or DEFAULT).items()}
    custom = values.get("custom")
    custom = dict(custom) if isinstance(custom, Mapping) else {}
    for target, value in values.items():
        if target.startswith("custom.") and value is not None:
            custom[target[7:]] = value
    contact: dict[str, Any] = {k: None if values.get(k) is None else _text(values[k]) for k in _TEXT}
    contact["vip"] = _truthy(values.get("vip"))
    contact["custom"] = custom or None
    found = any(contact[k] is not None for k in _TEXT) or contact["vip"] or bool(custom)
    tickets = values.get("tickets")
    if isinstance(tickets, Mapping):
        tickets = [tickets]
    url = values.get("url")
    return Lookup(contact=contact if found else None, tickets=list(tickets) if isinstance(tickets, list) else [],
                  url=url if isinstance(url, str) and url else None)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)

"""URL templates filled with call fields: `https://crm.example/lookup?number={caller}`.

Every value is percent-encoded for a URL (`+1202...` -> `%2B1202...`); a field the call
does not have becomes the empty string. Only the names in FIELDS may appear, so a typo is
a config error, not a broken URL at the first call.
"""

from __future__ import annotations

import string
from typing import Mapping
from urllib.parse import quote

#: Fields a template may use.
FIELDS = ("caller", "caller_raw", "caller_name", "called", "queue", "agent", "call_id", "site", "phase")

_FORMATTER = string.Formatter()


def check(template: object) -> str | None:
    """A problem with the template, or None."""
    if not isinstance(template, str) or not template.startswith(("http://", "https://")):
        return f"expected an http:// or https:// URL template, got {template!r}"
    try:
        parts = list(_FORMATTER.parse(template))
    except ValueError as exc:
        return f"bad template {template!r}: {exc}"
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in FIELDS:
            return f"unknown field {{{name}}} in {template!r} (fields: {', '.join(FIELDS)})"
        if spec or conversion:
            return f"{{{name}}}: format specs and conversions are not supported"
    return None


def fill(template: str, fields: Mapping[str, object]) -> str:
    """The template with each `{field}` replaced by its URL-encoded value."""
    out = []
    for literal, name, _, _ in _FORMATTER.parse(template):
        out.append(literal)
        if name is not None:
            value = fields.get(name)
            out.append(quote("" if value is None else str(value), safe=""))
    return "".join(out)

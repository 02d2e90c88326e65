"""Phone numbers: one normalized, E.164-ish form for lookups, keys and the prefix table.

The PBX gives caller ids in whatever form the trunk delivered them (`+12025550111`,
`0012025550111`, `(202) 555-0111`, `013812345678`). Contacts, CRM lookups and the region
table need one form, so:

- formatting (spaces, dashes, dots, parentheses, a `tel:` scheme) is dropped;
- `+digits` stays as is; the international prefix (`00`) becomes `+`;
- with a `country_code`, a number with the national prefix (`0` in most countries, `1` in
  North America) or a long national number becomes `+<cc><number>`;
- short numbers (extensions, service numbers) are kept as digits without `+`;
- anything else (letters, a SIP URI, too few or too many digits) is not a number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Characters people and PBXs put into numbers for readability.
_FORMATTING = re.compile(r"[\s\-.()/]")
_DIGITS = re.compile(r"^\d+$")

#: E.164 allows at most 15 digits; fewer than 3 is no caller id anyone can look up.
MIN_DIGITS, MAX_DIGITS = 3, 15
#: A national number at least this long gets the country code; shorter ones are local
#: (extensions, short codes) and are kept as dialled.
MIN_NATIONAL = 8

NO_CALLER_ID = "no_caller_id"
WITHHELD = "withheld"
INVALID = "invalid_number"


@dataclass(frozen=True)
class NumberPlan:
    """How national numbers of this site become international ones (all optional)."""

    country_code: str = ""  # e.g. "1" (NANP) or "86"; "" = do not guess a country
    national_prefix: str = "0"  # "1" in North America
    international_prefix: str = "00"  # "011" in North America


def normalize(raw: object, plan: NumberPlan = NumberPlan()) -> tuple[str | None, str | None]:
    """(number, None) for a usable number, else (None, reason): `no_caller_id` or `invalid_number`."""
    if raw is None:
        return None, NO_CALLER_ID
    text = str(raw).strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    text = _FORMATTING.sub("", text)
    if not text:
        return None, NO_CALLER_ID
    if text.startswith("+"):
        return _checked("+", text[1:])
    if not _DIGITS.match(text):
        return None, INVALID
    intl = plan.international_prefix
    if intl and text.startswith(intl) and len(text) > len(intl) + MIN_DIGITS:
        return _checked("+", text[len(intl):])
    cc = plan.country_code
    if cc:
        national = plan.national_prefix
        if national and text.startswith(national) and len(text) - len(national) >= MIN_NATIONAL - 1:
            return _checked("+", cc + text[len(national):])
        if len(text) >= MIN_NATIONAL:
            return _checked("+", cc + text)
    return _checked("", text)


def _checked(plus: str, digits: str) -> tuple[str | None, str | None]:
    if not _DIGITS.match(digits) or not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        return None, INVALID
    return plus + digits, None


def variants(number: str, raw: str | None) -> list[str]:
    """The forms a stored record may carry: the normalized number and the PBX's own text
    (the cdr table keeps caller ids as the PBX sent them)."""
    out = [number]
    if raw and raw.strip() != number:
        out.append(raw.strip())
    return out

"""Scorecards: weighted items grouped in sections, critical items, N/A, and the score.

A card is plain data (from the config's `[plugins.qa.scorecards.NAME]` table):

```toml
[[plugins.qa.scorecards.default.sections]]
name = "Opening"
items = [
  { id = "greet", text = "Greets with the company name", weight = 10 },
  { id = "verify", text = "Verifies the caller's identity", weight = 20, critical = true },
]
```

The weights of a card sum to 100. An answer per item is `pass`, `fail`, `na` (not applicable,
where the item allows it: `na = false` forbids it) or a fraction from 0 to 1 for partial
credit. The score is the weighted share of applicable items passed, 0-100; a failed critical
item makes the whole score 0 (the "fatal error" rule).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping

ANSWERS = ("pass", "fail", "na")


class ScorecardError(ValueError):
    """A card that cannot be used (weights that do not sum up, duplicate items ...) or a bad answer."""


@dataclass(frozen=True)
class Item:
    id: str
    text: str
    weight: float
    section: str
    critical: bool = False
    na: bool = True  # may be answered "na"


@dataclass(frozen=True)
class Scorecard:
    name: str
    items: tuple[Item, ...]
    definition: Mapping[str, Any]  # as configured: what a version stores

    @property
    def digest(self) -> str:
        """Identity of the content: a changed card gets a new version, an unchanged one does not."""
        return hashlib.sha256(json.dumps(self.definition, sort_keys=True).encode()).hexdigest()[:16]

    def score(self, answers: Mapping[str, Any]) -> tuple[float | None, bool]:
        """(score 0-100 or None when every item is N/A, whether a critical item failed)."""
        values = self.check_answers(answers)
        if any(item.critical and values[item.id] == 0.0 for item in self.items):
            return 0.0, True
        applicable = [(item.weight, values[item.id]) for item in self.items if values[item.id] is not None]
        total = sum(w for w, _ in applicable)
        if not total:
            return None, False
        return round(100.0 * sum(w * v for w, v in applicable) / total, 2), False

    def check_answers(self, answers: Mapping[str, Any]) -> dict[str, float | None]:
        """Each item's value (1 pass, 0 fail, None N/A, or the fraction); every problem in one error."""
        errors, values = [], {}
        for item in self.items:
            if item.id not in answers:
                errors.append(f"{item.id}: no answer")
                continue
            a = answers[item.id]
            if a == "na":
                if not item.na:
                    errors.append(f"{item.id}: may not be N/A")
                values[item.id] = None
            elif a in ("pass", "fail"):
                values[item.id] = 1.0 if a == "pass" else 0.0
            elif isinstance(a, (int, float)) and not isinstance(a, bool) and 0 <= a <= 1 and not item.critical:
                values[item.id] = float(a)
            else:
                allowed = "pass, fail, na" + ("" if item.critical else " or a fraction 0-1")
                errors.append(f"{item.id}: expected {allowed}, got {a!r}")
        errors += [f"{k}: not an item of scorecard {self.name!r}" for k in answers if k not in {i.id for i in self.items}]
        if errors:
            raise ScorecardError("; ".join(errors))
        return values


def parse(name: str, definition: Mapping[str, Any]) -> Scorecard:
    """A card from its table; ScorecardError lists every problem (weights must sum to 100)."""
    errors: list[str] = []
    items: list[Item] = []
    sections = definition.get("sections")
    if not isinstance(sections, list) or not sections:
        raise ScorecardError(f"{name}.sections: expected a list of sections with items")
    for s, section in enumerate(sections):
        where = f"{name}.sections[{s}]"
        if not isinstance(section, Mapping) or not isinstance(section.get("name"), str):
            errors.append(f"{where}: expected a table with a name and items")
            continue
        for i, raw in enumerate(section.get("items") or []):
            at = f"{where}.items[{i}]"
            if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str) or not isinstance(raw.get("text"), str):
                errors.append(f"{at}: expected {{ id = ..., text = ..., weight = ... }}")
                continue
            weight = raw.get("weight")
            if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight <= 0:
                errors.append(f"{at}.weight: expected a number > 0, got {weight!r}")
                continue
            unknown = set(raw) - {"id", "text", "weight", "critical", "na"}
            if unknown:
                errors.append(f"{at}: unknown key(s) {', '.join(sorted(unknown))}")
            items.append(Item(raw["id"], raw["text"], float(weight), section["name"], bool(raw.get("critical", False)),
                              bool(raw.get("na", True))))
    ids = [item.id for item in items]
    errors += [f"{name}: item id {i!r} is used twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    total = sum(item.weight for item in items)
    if items and abs(total - 100) > 1e-9:
        errors.append(f"{name}: the weights sum to {total:g}, expected 100")
    if not items and not errors:
        errors.append(f"{name}: no items")
    if errors:
        raise ScorecardError("; ".join(errors))
    return Scorecard(name, tuple(items), definition)

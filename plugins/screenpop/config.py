"""The `[plugins.screenpop]` table: options with their defaults, and the check that reports
every problem with its key path (`ctid_config_check`), so a bad table never starts a daemon.

Each adapter's own settings are a subtable named like the adapter
(`[plugins.screenpop.http]`); the adapter checks them itself (`adapters.load(name).check`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ctid_plugins.screenpop.numbers import NumberPlan

DIRECTIONS = ("inbound", "outbound", "internal")
_DIGITS = re.compile(r"^\d{0,4}$")


@dataclass(frozen=True)
class Options:
    """The plugin's settings, defaults as documented in README.md."""

    adapters: tuple[str, ...] = ("contacts",)  # lookup order: the first record found wins
    deadline: float = 0.3  # seconds from the event to the pop, whatever the lookups do
    history: int = 5  # last N calls of the caller from the cdr table; 0 = none
    history_index: bool = True  # create ix_cdr_caller_t_offered at startup if missing
    regions: str | None = None  # prefix table CSV; None = the shipped sample, "" = no regions
    on_answer: bool = True  # pop again on call.established (phase "answered")
    directions: tuple[str, ...] = ("inbound",)  # calls of these directions pop (unknown always does)
    plan: NumberPlan = NumberPlan()
    adapter_options: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> Options:
        """Options from a table that `check()` passed (or an empty one: all defaults)."""
        regions = options.get("regions")
        if regions is False:
            regions = ""
        plan = NumberPlan(
            country_code=str(options.get("country_code", "")),
            national_prefix=str(options.get("national_prefix", NumberPlan.national_prefix)),
            international_prefix=str(options.get("international_prefix", NumberPlan.international_prefix)),
        )
        adapters = tuple(options.get("adapters", cls.adapters))
        return cls(
            adapters=adapters,
            deadline=float(options.get("deadline", cls.deadline)),
            history=int(options.get("history", cls.history)),
            history_index=bool(options.get("history_index", cls.history_index)),
            regions=regions,
            on_answer=bool(options.get("on_answer", cls.on_answer)),
            directions=tuple(options.get("directions", cls.directions)),
            plan=plan,
            adapter_options={name: options.get(name) or {} for name in adapters},
        )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check(options: Mapping[str, Any]) -> list[str]:
    """Every problem of the table as `key.path: problem` (relative to `plugins.screenpop`)."""
    from ctid_plugins.screenpop import adapters as registry  # entry points: only when checking

    errors: list[str] = []
    names = options.get("adapters", list(Options.adapters))
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        errors.append(f"adapters: expected a list of adapter names, got {names!r}")
        names = []
    elif len(set(names)) != len(names):
        errors.append(f"adapters: {names!r} names an adapter twice")
    known = registry.available()
    for name in names:
        if name not in known:
            errors.append(f"adapters: unknown adapter {name!r} (available: {', '.join(sorted(known))})")
            continue
        sub = options.get(name, {})
        if not isinstance(sub, Mapping):
            errors.append(f"{name}: expected a table of the {name} adapter's settings")
            continue
        try:
            problems = registry.load(name).check(sub)
        except Exception as exc:  # a third-party adapter that cannot even check
            problems = [f": the adapter could not be loaded: {type(exc).__name__}: {exc}"]
        errors += [f"{name}{'' if p.startswith(':') else '.'}{p}" for p in problems]

    deadline = options.get("deadline", Options.deadline)
    if not _number(deadline) or not 0 < deadline <= 10:
        errors.append(f"deadline: expected seconds > 0 and <= 10, got {deadline!r}")
    history = options.get("history", Options.history)
    if not isinstance(history, int) or isinstance(history, bool) or not 0 <= history <= 100:
        errors.append(f"history: expected a number of calls from 0 to 100, got {history!r}")
    for key in ("history_index", "on_answer"):
        if not isinstance(options.get(key, True), bool):
            errors.append(f"{key}: expected true or false, got {options[key]!r}")
    directions = options.get("directions", list(Options.directions))
    if not isinstance(directions, list) or not set(directions) <= set(DIRECTIONS):
        errors.append(f"directions: expected a list of {', '.join(DIRECTIONS)}, got {directions!r}")
    for key in ("country_code", "national_prefix", "international_prefix"):
        value = options.get(key, "")
        if not (isinstance(value, str) and _DIGITS.match(value)) and not (isinstance(value, int) and 0 < value < 10_000):
            errors.append(f"{key}: expected up to 4 digits as a string, got {value!r}")
    errors += _check_regions(options.get("regions"))

    fixed = {"adapters", "deadline", "history", "history_index", "regions", "on_answer", "directions",
             "country_code", "national_prefix", "international_prefix"}
    for key in options:
        if key in fixed or key in names:
            continue
        if key in known:
            errors.append(f"{key}: settings for an adapter that is not in adapters")
        else:
            errors.append(f"{key}: unknown key")
    return errors


def _check_regions(regions: Any) -> list[str]:
    from ctid_plugins.screenpop.regions import RegionTable

    if regions is None or regions is False or regions == "":
        return []
    if not isinstance(regions, str):
        return [f"regions: expected the path of a prefix,region CSV file (or false), got {regions!r}"]
    try:
        _, problems = RegionTable.load(Path(regions))
    except (OSError, UnicodeDecodeError) as exc:
        return [f"regions: cannot read {regions}: {exc}"]
    return [f"regions: {regions}: {p}" for p in problems]

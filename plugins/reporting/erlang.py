"""Erlang C staffing: agents needed for a service-level target, with SL, ASA and occupancy at
each staffing level, shrinkage, and per-interval staffing from a forecast CSV.

The queue is M/M/N (Poisson arrivals, exponential handle times, no abandons), the model the
published Erlang C tables use. P(wait) comes from the Erlang B recursion, which stays exact
for hundreds of agents where A**N / N! would overflow.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator


class StaffingError(ValueError):
    """Inputs Erlang C cannot staff (no traffic, a target of 100 % ...), or a bad forecast row."""


def traffic(calls_per_hour: float, aht: float) -> float:
    """Offered load in erlangs: calls per second times seconds per call."""
    return calls_per_hour * aht / 3600.0


def erlang_b(agents: int, load: float) -> float:
    """Blocking probability of N servers offered `load` erlangs (recursive form)."""
    b = 1.0
    for n in range(1, agents + 1):
        b = load * b / (n + load * b)
    return b


def erlang_c(agents: int, load: float) -> float:
    """Probability that a call waits (1.0 when the agents cannot keep up: N <= A)."""
    if agents <= load:
        return 1.0
    b = erlang_b(agents, load)
    return agents * b / (agents - load * (1.0 - b))


@dataclass(frozen=True)
class Level:
    """What a staffing level gives: service level, ASA (s), occupancy and P(wait)."""

    agents: int
    service_level: float
    asa: float
    occupancy: float
    p_wait: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def level(agents: int, load: float, aht: float, target_time: float) -> Level:
    """The figures of one staffing level; an overloaded level has SL 0 and an infinite ASA."""
    if agents <= load:
        return Level(agents, 0.0, math.inf, 1.0, 1.0)
    pw = erlang_c(agents, load)
    sl = 1.0 - pw * math.exp(-(agents - load) * target_time / aht)
    return Level(agents, sl, pw * aht / (agents - load), load / agents, pw)


@dataclass(frozen=True)
class Staffing:
    """Agents needed on the phones, scheduled agents after shrinkage, and nearby levels."""

    calls_per_hour: float
    aht: float
    target: float  # fraction, e.g. 0.8
    target_time: float  # seconds
    shrinkage: float  # fraction of paid time off the phones
    load: float
    agents: int
    scheduled: int
    levels: tuple[Level, ...]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["levels"] = [lv.to_json() for lv in self.levels]
        return out


def staff(calls_per_hour: float, aht: float, target: float, target_time: float, shrinkage: float = 0.0,
          spread: int = 3) -> Staffing:
    """The fewest agents whose service level reaches `target` (answered within `target_time`)."""
    if calls_per_hour < 0 or aht <= 0:
        raise StaffingError(f"calls per hour must be >= 0 and AHT > 0 s, got {calls_per_hour:g} and {aht:g}")
    if not 0 < target < 1:
        raise StaffingError(f"the service-level target must be between 0 and 100 % (exclusive), got {target * 100:g} %")
    if not 0 <= shrinkage < 1:
        raise StaffingError(f"shrinkage must be from 0 to under 100 %, got {shrinkage * 100:g} %")
    if target_time < 0:
        raise StaffingError(f"the answer time must be >= 0 s, got {target_time:g}")
    load = traffic(calls_per_hour, aht)
    if load == 0:
        return Staffing(calls_per_hour, aht, target, target_time, shrinkage, 0.0, 0, 0, ())
    n = math.floor(load) + 1
    while level(n, load, aht, target_time).service_level < target:
        n += 1
    levels = tuple(level(k, load, aht, target_time) for k in range(max(1, n - spread), n + spread + 1))
    return Staffing(calls_per_hour, aht, target, target_time, shrinkage, load, n,
                    math.ceil(n / (1.0 - shrinkage) - 1e-9), levels)


def parse_target(text: str) -> tuple[float, float]:
    """(0.8, 20.0) from '80/20' (percent answered within seconds)."""
    pct, sep, secs = text.partition("/")
    try:
        if not sep:
            raise ValueError
        return float(pct) / 100.0, float(secs)
    except ValueError:
        raise StaffingError(f"service level {text!r}: expected PERCENT/SECONDS such as 80/20") from None


def forecast(path: Path, default_aht: float | None, interval_minutes: int, target: float, target_time: float,
             shrinkage: float) -> Iterator[tuple[str, Staffing]]:
    """(interval, staffing) for each row of a forecast CSV with columns `interval,calls[,aht]`
    (`calls` offered in that interval). A bad row raises StaffingError naming its line."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"interval", "calls"} <= set(reader.fieldnames):
            raise StaffingError(f"{path}: expected a header with interval,calls[,aht], got {reader.fieldnames}")
        for row in reader:
            line = reader.line_num
            try:
                calls = float(row["calls"])
                aht_text = (row.get("aht") or "").strip()
                aht = float(aht_text) if aht_text else default_aht
                if aht is None:
                    raise StaffingError("no aht column value and no --aht")
                yield row["interval"], staff(calls * 60.0 / interval_minutes, aht, target, target_time, shrinkage)
            except (ValueError, TypeError) as exc:
                raise StaffingError(f"{path}:{line}: {exc}") from None

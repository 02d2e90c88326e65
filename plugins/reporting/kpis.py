"""KPIs from summed measures: each one a ratio or a count, None when its denominator is 0
(an empty period shows "n/a", never a made-up 0 %). Definitions: docs/kpis.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

Measures = Mapping[str, float]


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


@dataclass(frozen=True)
class Kpi:
    name: str
    label: str
    unit: str  # count | percent | seconds | hours | rate
    value: Callable[[Measures], float | None]


def _m(name: str) -> Callable[[Measures], float]:
    return lambda m: m.get(name, 0)


def _handle(m: Measures) -> float:
    return m.get("talk", 0) + m.get("hold", 0) + m.get("acw", 0)


#: Every KPI, in report column order.
KPIS: tuple[Kpi, ...] = (
    Kpi("offered", "Offered (PBX)", "count", _m("offered")),
    Kpi("acd_offered", "Offered (ACD)", "count", _m("acd_offered")),
    Kpi("ivr_completed", "Completed in IVR", "count", _m("ivr_completed")),
    Kpi("answered", "Answered", "count", _m("answered")),
    Kpi("abandoned", "Abandoned", "count", _m("abandoned")),
    Kpi("short_abandoned", "Short abandons", "count", _m("short_abandoned")),
    Kpi("abandon_rate", "Abandon rate", "percent", lambda m: _ratio(m.get("abandoned", 0), m.get("acd_offered", 0))),
    Kpi("avg_abandon_time", "Avg time to abandon", "seconds", lambda m: _ratio(m.get("abandon_wait", 0), m.get("abandoned", 0))),
    Kpi("service_level", "Service level", "percent",
        lambda m: _ratio(m.get("answered_in_sl", 0), m.get("answered", 0) + m.get("abandoned", 0))),
    Kpi("asa", "ASA", "seconds", lambda m: _ratio(m.get("answer_wait", 0), m.get("answered", 0))),
    Kpi("over_threshold", "Answered over threshold", "count", _m("over_threshold")),
    Kpi("handled", "Handled by agents", "count", _m("handled")),
    Kpi("avg_talk", "Avg talk", "seconds", lambda m: _ratio(m.get("talk", 0), m.get("handled", 0))),
    Kpi("avg_hold", "Avg hold", "seconds", lambda m: _ratio(m.get("hold", 0), m.get("handled", 0))),
    Kpi("avg_acw", "Avg after-call work", "seconds", lambda m: _ratio(m.get("acw", 0), m.get("handled", 0))),
    Kpi("aht", "AHT", "seconds", lambda m: _ratio(_handle(m), m.get("handled", 0))),
    Kpi("answer_rate", "Answer rate", "percent",
        lambda m: _ratio(m.get("handled", 0) + m.get("ivr_completed", 0), m.get("offered", 0))),
    Kpi("fcr", "First-call resolution", "percent", lambda m: _ratio(m.get("fcr_resolved", 0), m.get("fcr_eligible", 0))),
    Kpi("transfers", "Transfers", "count", _m("transfers")),
    Kpi("transfer_rate", "Transfer rate", "percent", lambda m: _ratio(m.get("transferred", 0), m.get("handled", 0))),
    Kpi("outbound_attempts", "Outbound attempts", "count", _m("outbound_attempts")),
    Kpi("outbound_connects", "Outbound connects", "count", _m("outbound_connects")),
)

#: KPIs from agent time: only for groupings by time, agent, team and site (docs/kpis.md).
AGENT_KPIS: tuple[Kpi, ...] = (
    Kpi("logged_in", "Logged-in time", "hours", lambda m: m["logged_in"] / 3600 if "logged_in" in m else None),
    Kpi("not_ready", "Not-ready time", "hours", lambda m: m.get("not_ready", 0) / 3600 if "logged_in" in m else None),
    Kpi("occupancy", "Occupancy", "percent",
        lambda m: _ratio(m.get("agent_handle", 0), m["logged_in"] - m.get("not_ready", 0)) if "logged_in" in m else None),
    Kpi("utilization", "Utilization", "percent",
        lambda m: _ratio(m.get("agent_handle", 0), m["logged_in"]) if "logged_in" in m else None),
    Kpi("calls_per_hour", "Calls per agent-hour", "rate",
        lambda m: _ratio(m.get("agent_calls", 0), m["logged_in"] / 3600) if "logged_in" in m else None),
    Kpi("adherence", "Schedule adherence", "percent",
        lambda m: _ratio(m.get("adherent", 0), m["scheduled"]) if "scheduled" in m else None),
)

BY_NAME = {k.name: k for k in (*KPIS, *AGENT_KPIS)}


def compute(m: Measures, agent_time: bool) -> dict[str, float | None]:
    """Every KPI of one group's measures (the agent-time ones only when `agent_time`)."""
    out: dict[str, float | None] = {k.name: k.value(m) for k in KPIS}
    for k in KPIS:
        if k.unit == "count":
            out[k.name] = int(round(out[k.name] or 0))  # sums of counts are floats after the roll-up
    for k in AGENT_KPIS:
        out[k.name] = k.value(m) if agent_time or (k.name == "adherence" and "scheduled" in m) else None
    return out


def not_ready_reasons(m: Measures) -> dict[str, float]:
    """Not-ready hours per reason."""
    return {k.split(":", 1)[1]: v / 3600 for k, v in sorted(m.items()) if k.startswith("not_ready:")}

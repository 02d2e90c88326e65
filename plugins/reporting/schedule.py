"""A schedule of agents' shifts on the phones, for schedule adherence: a CSV `agent,start,end`
with local times `YYYY-MM-DD HH:MM` (or with an offset). Bad rows raise ScheduleError naming
their line; overlapping shifts of one agent are merged so no second counts twice."""

from __future__ import annotations

import csv
from pathlib import Path
from zoneinfo import ZoneInfo

from ctid_plugins.reporting.periods import parse_time


class ScheduleError(ValueError):
    """A schedule file that cannot be read as shifts."""


def load(path: Path, zone: ZoneInfo) -> dict[str, list[tuple[float, float]]]:
    """agent -> sorted, merged [(start, end)] epoch seconds."""
    shifts: dict[str, list[tuple[float, float]]] = {}
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"agent", "start", "end"} <= set(reader.fieldnames):
                raise ScheduleError(f"{path}: expected a header with agent,start,end, got {reader.fieldnames}")
            for row in reader:
                try:
                    start, end = parse_time(row["start"].strip(), zone), parse_time(row["end"].strip(), zone)
                except (ValueError, AttributeError) as exc:
                    raise ScheduleError(f"{path}:{reader.line_num}: {exc}") from None
                if end <= start or not (row["agent"] or "").strip():
                    raise ScheduleError(f"{path}:{reader.line_num}: a shift needs an agent and an end after its start")
                shifts.setdefault(row["agent"].strip(), []).append((start, end))
    except OSError as exc:
        raise ScheduleError(f"cannot read the schedule: {exc}") from None
    return {agent: _merge(spans) for agent, spans in shifts.items()}


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out

"""Labels of the report's time dimensions: 15-minute UTC buckets to local intervals, days,
ISO weeks and months in the report's time zone (daylight saving included)."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

BUCKET = 900


@lru_cache(maxsize=65536)
def label(bucket: int, dim: str, zone: ZoneInfo, interval: int) -> str:
    """The label of a bucket for one time dimension: `2026-11-02 09:30`, `2026-11-02`,
    `2026-W45` (ISO week, Monday first) or `2026-11`."""
    local = datetime.fromtimestamp(bucket * BUCKET, timezone.utc).astimezone(zone)
    if dim == "interval":
        minute = local.minute - local.minute % interval
        return local.strftime("%Y-%m-%d %H:") + f"{minute:02d}"
    if dim == "day":
        return local.strftime("%Y-%m-%d")
    if dim == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if dim == "month":
        return local.strftime("%Y-%m")
    raise ValueError(f"not a time dimension: {dim}")


def parse_time(text: str, zone: ZoneInfo) -> float:
    """Epoch seconds of `YYYY-MM-DD` or `YYYY-MM-DD HH:MM[:SS]` local to `zone` (or with an offset)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or time (YYYY-MM-DD HH:MM)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    return when.timestamp()

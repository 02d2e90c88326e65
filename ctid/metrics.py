"""Daemon counters: plain integers by name, cheap enough for the hot path.

Names are dotted: `<area>.<what>` or `driver.<name>.<what>`; `snapshot()` is what
the `stats` request and the periodic log line show.
"""

from __future__ import annotations

from collections import defaultdict


class Counters:
    def __init__(self) -> None:
        self._values: defaultdict[str, int] = defaultdict(int)
        self._gauges: dict[str, object] = {}

    def inc(self, name: str, n: int = 1) -> None:
        self._values[name] += n

    def set(self, name: str, value: int) -> None:
        """A gauge: a level rather than a count (e.g. connected subscribers)."""
        self._values[name] = value

    def gauge(self, name: str, read) -> None:
        """Register a callable read at snapshot time (e.g. a parser's own counters)."""
        self._gauges[name] = read

    def get(self, name: str) -> int:
        return self._values.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        out = dict(self._values)
        for name, read in self._gauges.items():
            out[name] = read()  # type: ignore[operator]
        return dict(sorted(out.items()))

"""ACD: skills-based routing. The matcher decides which agent gets which call.

`Matcher` is the compiled matcher (`ctid._fast.matcher`) when it was built, else the
pure-Python `PyMatcher`, which is the specification (docs/routing.md). Both raise `MatchError`.
"""

from __future__ import annotations

from ctid.acd.matcher import PyMatcher
from ctid.acd.model import STATES, STRATEGIES, MatchError, Step, requirement_at

try:
    from ctid._fast.matcher import Matcher

    COMPILED = True
except ImportError:  # pragma: no cover - depends on the build
    Matcher = PyMatcher  # type: ignore[misc,assignment]
    COMPILED = False

__all__ = ["COMPILED", "STATES", "STRATEGIES", "MatchError", "Matcher", "PyMatcher", "Step", "requirement_at"]

"""What both matchers share: names, the error type, escalation steps and argument checks.

The pure-Python `PyMatcher` (matcher.py) and the compiled `Matcher` (_fast/matcher.pyx) both
validate their slow-path arguments (queues, agents, steps) here, so the two can never disagree
on what is accepted or on which error comes first. The hot-path checks (`offer`'s requirements)
are repeated in each, in the same order; the property test in tests/test_acd_matcher.py keeps
them equal. docs/routing.md is the prose version of this file and of matcher.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

#: Agent-selection strategies, by code (the compiled matcher stores the index).
STRATEGIES = ("longest_idle", "round_robin", "fewest_calls", "least_occupied", "best_skill")
#: Agent states, by code.
STATES = ("logged_out", "ready", "not_ready", "busy", "acw")
LOGGED_OUT, READY, NOT_READY, BUSY, ACW = range(5)

MIN_LEVEL, MAX_LEVEL = 1, 10
#: Priorities outside this range are refused: the compiled matcher keeps them in a C integer.
MAX_PRIORITY = 1_000_000_000
#: Calls-today counts above this are refused (kept exactly in a C double).
MAX_CALLS = 1 << 52

#: Error codes a `MatchError` carries.
CODES = (
    "unknown_queue", "unknown_agent", "unknown_skill", "unknown_call", "unknown_strategy",
    "unknown_state", "duplicate_queue", "duplicate_agent", "duplicate_call", "bad_value",
    "bad_transition",
)


class MatchError(Exception):
    """A refused matcher operation; nothing was changed. `code` is one of `CODES`."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Step:
    """One escalation step of a queue: from `after` seconds of wait on, a waiting call's
    requirement is relaxed. Steps are cumulative and applied in order; within a step:
    `relax` lowers every minimum level (never below 1), then `drop` removes skills, then
    `add` sets extra skills (skill -> minimum level), and `overflow` lets the agents of that
    queue take the call too (after the agents of its own queue)."""

    after: float
    relax: int = 0
    drop: tuple[str, ...] = ()
    add: Mapping[str, int] = field(default_factory=dict)
    overflow: str | None = None


def _is_level(value: Any) -> bool:
    return isinstance(value, int) and MIN_LEVEL <= value <= MAX_LEVEL


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def check_level(skill: Any, level: Any) -> None:
    if not _is_level(level):
        raise MatchError("bad_value", f"level of skill {skill!r} must be an int 1-10, not {level!r}")


def check_now(now: float) -> None:
    if now != now:  # NaN would silently corrupt the sorted indexes (it compares false to everything)
        raise MatchError("bad_value", "time is NaN")


def check_priority(priority: Any) -> None:
    if not (isinstance(priority, int) and -MAX_PRIORITY <= priority <= MAX_PRIORITY):
        raise MatchError("bad_value", f"priority must be an int within +-{MAX_PRIORITY:,}, not {priority!r}")


def check_queue(
    name: Any, strategy: Any, weight: Any, wrapup: Any, steps: Any, queues: Any, skills: Any
) -> tuple[int, float, float, tuple[Step, ...]]:
    """Validate `add_queue` arguments against the known `queues` and `skills` (containers of
    names); returns (strategy code, weight, wrapup, steps). Raises MatchError, first problem first."""
    if name in queues:
        raise MatchError("duplicate_queue", repr(name))
    if strategy not in STRATEGIES:
        raise MatchError("unknown_strategy", f"{strategy!r} (one of {', '.join(STRATEGIES)})")
    if not (_finite(weight) and weight > 0):
        raise MatchError("bad_value", f"weight must be a finite number > 0, not {weight!r}")
    if not (_finite(wrapup) and wrapup >= 0):
        raise MatchError("bad_value", f"wrapup must be a finite number >= 0, not {wrapup!r}")
    checked: list[Step] = []
    last = 0.0
    for step in steps:
        if not isinstance(step, Step):
            raise MatchError("bad_value", f"steps must be Step objects, not {step!r}")
        if not (_finite(step.after) and step.after >= last):
            raise MatchError("bad_value", f"step after={step.after!r}: steps must be in order of wait, >= 0")
        if not (isinstance(step.relax, int) and step.relax >= 0):
            raise MatchError("bad_value", f"step relax must be an int >= 0, not {step.relax!r}")
        for skill in step.drop:
            if skill not in skills:
                raise MatchError("unknown_skill", repr(skill))
        for skill, level in step.add.items():
            if skill not in skills:
                raise MatchError("unknown_skill", repr(skill))
            check_level(skill, level)
        if step.overflow is not None:
            if step.overflow == name:
                raise MatchError("bad_value", f"queue {name!r} cannot overflow into itself")
            if step.overflow not in queues:
                raise MatchError("unknown_queue", f"overflow {step.overflow!r}")
        last = float(step.after)
        checked.append(Step(float(step.after), step.relax, tuple(step.drop), dict(step.add), step.overflow))
    return STRATEGIES.index(strategy), float(weight), float(wrapup), tuple(checked)


def check_agent(agent: Any, skills: Any, queues: Any, agents: Any, known_queues: Any) -> None:
    """Validate `add_agent` arguments (skills: {skill: level}, queues: {queue: penalty})."""
    if agent in agents:
        raise MatchError("duplicate_agent", repr(agent))
    for skill, level in skills.items():
        check_level(skill, level)
    for queue, penalty in queues.items():
        if queue not in known_queues:
            raise MatchError("unknown_queue", repr(queue))
        if not (isinstance(penalty, int) and 0 <= penalty <= MAX_PRIORITY):
            raise MatchError("bad_value", f"penalty in {queue!r} must be an int >= 0, not {penalty!r}")


def check_stats(calls_today: Any, occupancy: Any) -> None:
    if calls_today is not None and not (isinstance(calls_today, int) and 0 <= calls_today <= MAX_CALLS):
        raise MatchError("bad_value", f"calls_today must be an int >= 0, not {calls_today!r}")
    if occupancy is not None and not (_finite(occupancy) and occupancy >= 0):
        raise MatchError("bad_value", f"occupancy must be a finite number >= 0, not {occupancy!r}")


def requirement_at(requirements: Mapping[str, int], steps: tuple[Step, ...], queued: float,
                   now: float) -> tuple[dict[str, int], tuple[str, ...], int]:
    """The requirement of a call queued at `queued` with `requirements`, at time `now`:
    (skills -> minimum level, overflow queues open to it, number of steps applied).
    A step applies from `queued + step.after` on (absolute times, so a timer due then agrees)."""
    req = dict(requirements)
    overflow: list[str] = []
    applied = 0
    for step in steps:
        if now < queued + step.after:
            break
        req = apply_step(req, step)
        if step.overflow is not None and step.overflow not in overflow:
            overflow.append(step.overflow)
        applied += 1
    return req, tuple(overflow), applied


def apply_step(req: dict[str, int], step: Step) -> dict[str, int]:
    """One step on a requirement: relax, then drop, then add (see `Step`)."""
    out = {skill: max(MIN_LEVEL, level - step.relax) for skill, level in req.items()}
    for skill in step.drop:
        out.pop(skill, None)
    out.update(step.add)
    return out

"""The records PyMatcher keeps: queues, agents, calls (plain slotted classes, no behaviour
beyond reading a call's current escalation stage) and the qualification test."""

from __future__ import annotations

from typing import Any

from ctid.acd.model import LOGGED_OUT, Step, apply_step


class QueueRec:
    __slots__ = ("name", "strategy", "weight", "wrapup", "steps", "penalties", "tiers", "rr_last", "calls")

    def __init__(self, name: str, strategy: int, weight: float, wrapup: float, steps: tuple[Step, ...]) -> None:
        self.name, self.strategy, self.weight, self.wrapup, self.steps = name, strategy, weight, wrapup, steps
        self.penalties: list[int] = []  # sorted; tiers[i] holds the ready agents of penalties[i]
        self.tiers: list[list[tuple[float, float, int]]] = []  # (k1, k2, agent seq), sorted
        self.rr_last = -1  # round robin: seq of the last agent chosen
        self.calls: list[tuple[int, float, int]] = []  # (-priority, queued, call seq), sorted


class AgentRec:
    __slots__ = ("id", "seq", "skills", "queues", "state", "reason", "idle_since", "calls_today",
                 "occupancy", "call", "gen", "keys")

    def __init__(self, agent_id: Any, seq: int, skills: dict[Any, int], queues: dict[Any, int]) -> None:
        self.id, self.seq, self.skills, self.queues = agent_id, seq, skills, queues
        self.state, self.reason = LOGGED_OUT, None
        self.idle_since, self.calls_today, self.occupancy = 0.0, 0, 0.0
        self.call: CallRec | None = None  # the matched call while busy with it
        self.gen = 0  # bumped on every state change: a pending ACW timer with an older gen is void
        self.keys: list[tuple[float, float, int]] = []  # per queue (in `queues` order) while ready


class CallRec:
    __slots__ = ("id", "seq", "queue", "priority", "queued", "stages", "froms", "overflow", "waiting")

    def __init__(self, call_id: Any, seq: int, queue: QueueRec, priority: int, queued: float,
                 req: dict[Any, int]) -> None:
        self.id, self.seq, self.queue, self.priority, self.queued = call_id, seq, queue, priority, queued
        self.stages = [req]  # the requirement after 0, 1, ... steps
        self.froms: list[float] = []  # when each step applies (absolute)
        self.overflow: list[tuple[QueueRec, float]] = []  # (queue, open from), first appearance order
        for step in queue.steps:
            self.stages.append(apply_step(self.stages[-1], step))
            self.froms.append(queued + step.after)
        self.waiting = True

    def stage(self, now: float) -> int:
        n = 0
        for start in self.froms:
            if now < start:
                break
            n += 1
        return n


def open_from(c: CallRec, q: _Queue) -> float:
    for oq, start in c.overflow:
        if oq is q:
            return start
    return c.queued


def qualifies(skills: dict[Any, int], req: dict[Any, int]) -> bool:
    for skill, level in req.items():
        if skills.get(skill, 0) < level:
            return False
    return True

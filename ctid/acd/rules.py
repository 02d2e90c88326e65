"""The `[routing]` config: queues with their strategy, skills, escalation steps, max wait and
fallback; agents with skills and queues; the VIP whitelist and the blacklist.

`parse_routing(raw)` turns the decoded TOML table into a frozen `RoutingRules`, collecting every
problem as a `routing.<key path>: problem` line (the same shape as `ctid.config` errors, which
reports them together with its own). docs/routing.md documents every key with an example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ctid.acd.matcher import PyMatcher
from ctid.acd.model import MAX_LEVEL, MAX_PRIORITY, MIN_LEVEL, STRATEGIES, MatchError, Step

#: Where a call goes when its queue cannot take it (max wait, bad input, a veto).
#: `queue` re-routes it into another queue; the others end the route point with that action.
FALLBACK_KINDS = ("queue", "voicemail", "callback", "busy", "announcement")
#: What a blacklisted caller gets at the route point.
REJECT_KINDS = ("busy", "announcement")


@dataclass(frozen=True)
class Fallback:
    kind: str  # one of FALLBACK_KINDS
    target: str = ""  # the queue, mailbox or announcement; "" where the kind needs none

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}" if self.target else self.kind


@dataclass(frozen=True)
class QueueRule:
    name: str
    strategy: str = "longest_idle"
    skills: Mapping[str, int] = field(default_factory=dict)  # the default requirement of its calls
    weight: float = 1.0  # multiplies a call's wait when an agent of several queues picks a call
    wrapup: float = 0.0  # seconds of after-call work before the agent is ready again
    max_wait: float = 0.0  # seconds; 0 = wait forever
    fallback: Fallback | None = None  # None = the routing-wide default
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class AgentRule:
    id: str
    device: str  # what the PBX dials, e.g. PJSIP/1001
    skills: Mapping[str, int] = field(default_factory=dict)
    queues: Mapping[str, int] = field(default_factory=dict)  # queue -> penalty (0 = first tier)


@dataclass(frozen=True)
class Vip:
    boost: int = 0  # added to the call's priority
    queue: str | None = None  # route straight to this queue (a team, or one named agent's queue)


@dataclass(frozen=True)
class RoutingRules:
    queues: Mapping[str, QueueRule] = field(default_factory=dict)
    agents: Mapping[str, AgentRule] = field(default_factory=dict)
    skills: tuple[str, ...] = ()
    vip: Mapping[str, Vip] = field(default_factory=dict)
    blacklist: frozenset[str] = frozenset()
    reject: Fallback = Fallback("busy")
    fallback: Fallback = Fallback("voicemail", "default")
    tick: float = 0.25  # seconds between timer runs (ACW ends, escalation steps, max waits)
    fastagi: str = ""  # host:port the FastAGI route point listens on; "" = none
    # seconds between two checks that a waiting FastAGI caller is still there: the AGI cannot be
    # interrupted, so this is also the longest delay between a decision and the call hearing it
    fastagi_poll: float = 0.25

    @property
    def enabled(self) -> bool:
        return bool(self.queues)


_TOP_KEYS = {"skills", "queue", "agent", "vip", "blacklist", "reject", "fallback", "tick", "fastagi", "fastagi_poll"}
_QUEUE_KEYS = {"name", "strategy", "skills", "weight", "wrapup", "max_wait", "fallback", "steps"}
_STEP_KEYS = {"after", "relax", "drop", "add", "overflow"}


def _number(errors: list[str], where: str, value: Any, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
        errors.append(f"{where}: expected a number >= {minimum:g}, got {value!r}")
        return minimum
    return float(value)


def _levels(errors: list[str], where: str, value: Any, skills: set[str]) -> dict[str, int]:
    if not isinstance(value, dict):
        errors.append(f"{where}: expected a table of skill = level, got {value!r}")
        return {}
    out = {}
    for skill, level in value.items():
        if skills and skill not in skills:
            errors.append(f"{where}.{skill}: unknown skill (not in routing.skills)")
        elif isinstance(level, bool) or not isinstance(level, int) or not MIN_LEVEL <= level <= MAX_LEVEL:
            errors.append(f"{where}.{skill}: level must be an int {MIN_LEVEL}-{MAX_LEVEL}, got {level!r}")
        else:
            out[skill] = level
    return out


def _fallback(errors: list[str], where: str, value: Any, kinds: tuple[str, ...]) -> Fallback | None:
    """`"voicemail:100"`, `"queue:support"`, `"callback"`, `"busy"`, `"announcement:closed"`."""
    if not isinstance(value, str):
        errors.append(f"{where}: expected a string such as 'voicemail:100', got {value!r}")
        return None
    kind, _, target = value.partition(":")
    if kind not in kinds:
        errors.append(f"{where}: {kind!r} is not one of {', '.join(kinds)}")
        return None
    if kind in ("queue", "announcement") and not target:
        errors.append(f"{where}: {kind} needs a target ('{kind}:NAME')")
        return None
    return Fallback(kind, target)


def _steps(errors: list[str], where: str, raw: Any) -> tuple[Step, ...]:
    if not isinstance(raw, list):
        errors.append(f"{where}: expected an array of tables")
        return ()
    steps = []
    for i, s in enumerate(raw):
        path = f"{where}[{i}]"
        if not isinstance(s, dict):
            errors.append(f"{path}: expected a table")
            continue
        for key in sorted(set(s) - _STEP_KEYS):
            errors.append(f"{path}.{key}: unknown key")
        after = _number(errors, f"{path}.after", s.get("after", 0))
        relax = s.get("relax", 0)
        if isinstance(relax, bool) or not isinstance(relax, int) or relax < 0:
            errors.append(f"{path}.relax: expected an int >= 0, got {relax!r}")
            relax = 0
        drop = s.get("drop", [])
        if not (isinstance(drop, list) and all(isinstance(d, str) for d in drop)):
            errors.append(f"{path}.drop: expected a list of skills, got {drop!r}")
            drop = []
        add = _levels(errors, f"{path}.add", s.get("add", {}), set())
        overflow = s.get("overflow")
        if overflow is not None and not isinstance(overflow, str):
            errors.append(f"{path}.overflow: expected a queue name, got {overflow!r}")
            overflow = None
        steps.append(Step(after, relax, tuple(drop), add, overflow))
    return tuple(steps)


def parse_routing(raw: Any, errors: list[str]) -> RoutingRules:
    """Validate a decoded `[routing]` table, appending `routing.<path>: problem` lines to
    `errors`. Returns the rules as far as they are valid (use them only if errors is empty)."""
    if not raw:
        return RoutingRules()
    if not isinstance(raw, dict):
        errors.append("routing: expected a table")
        return RoutingRules()
    for key in sorted(set(raw) - _TOP_KEYS):
        errors.append(f"routing.{key}: unknown key")
    skills = raw.get("skills", [])
    if not (isinstance(skills, list) and all(isinstance(s, str) for s in skills)):
        errors.append(f"routing.skills: expected a list of skill names, got {skills!r}")
        skills = []
    known = set(skills)

    queues: dict[str, QueueRule] = {}
    raw_queues = raw.get("queue", [])
    for i, q in enumerate(raw_queues if isinstance(raw_queues, list) else []):
        path = f"routing.queue[{i}]"
        if not isinstance(q, dict) or not isinstance(q.get("name"), str) or not q["name"]:
            errors.append(f"{path}: expected a table with a name")
            continue
        for key in sorted(set(q) - _QUEUE_KEYS):
            errors.append(f"{path}.{key}: unknown key")
        name = q["name"]
        if name in queues:
            errors.append(f"{path}.name: duplicate queue {name!r}")
        strategy = q.get("strategy", "longest_idle")
        if strategy not in STRATEGIES:
            errors.append(f"{path}.strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
            strategy = "longest_idle"
        weight = _number(errors, f"{path}.weight", q.get("weight", 1.0), 0.0) or 1.0
        fallback = _fallback(errors, f"{path}.fallback", q["fallback"], FALLBACK_KINDS) if "fallback" in q else None
        queues[name] = QueueRule(name, strategy, _levels(errors, f"{path}.skills", q.get("skills", {}), known), weight,
                                 _number(errors, f"{path}.wrapup", q.get("wrapup", 0)),
                                 _number(errors, f"{path}.max_wait", q.get("max_wait", 0)), fallback,
                                 _steps(errors, f"{path}.steps", q.get("steps", [])))
    if not isinstance(raw_queues, list):
        errors.append("routing.queue: expected an array of tables ([[routing.queue]])")
    for i, q in enumerate(queues.values()):
        _check_refs(errors, f"routing.queue[{i}]", q, queues, known)

    agents: dict[str, AgentRule] = {}
    raw_agents = raw.get("agent", [])
    for i, a in enumerate(raw_agents if isinstance(raw_agents, list) else []):
        path = f"routing.agent[{i}]"
        if not isinstance(a, dict) or not isinstance(a.get("id"), str) or not isinstance(a.get("device"), str):
            errors.append(f"{path}: expected a table with an id and a device")
            continue
        for key in sorted(set(a) - {"id", "device", "skills", "queues"}):
            errors.append(f"{path}.{key}: unknown key")
        if a["id"] in agents:
            errors.append(f"{path}.id: duplicate agent {a['id']!r}")
        penalties = a.get("queues", {})
        if not isinstance(penalties, dict):
            errors.append(f"{path}.queues: expected a table of queue = penalty")
            penalties = {}
        for queue, penalty in penalties.items():
            if queue not in queues:
                errors.append(f"{path}.queues.{queue}: unknown queue (not a [[routing.queue]])")
            if isinstance(penalty, bool) or not isinstance(penalty, int) or not 0 <= penalty <= MAX_PRIORITY:
                errors.append(f"{path}.queues.{queue}: penalty must be an int >= 0, got {penalty!r}")
        agents[a["id"]] = AgentRule(a["id"], a["device"], _levels(errors, f"{path}.skills", a.get("skills", {}), known),
                                    {k: v for k, v in penalties.items() if k in queues and isinstance(v, int)})
    if not isinstance(raw_agents, list):
        errors.append("routing.agent: expected an array of tables ([[routing.agent]])")

    vip: dict[str, Vip] = {}
    for number, v in (raw.get("vip") or {}).items():
        path = f"routing.vip.{number}"
        if not isinstance(v, dict) or set(v) - {"boost", "queue"}:
            errors.append(f"{path}: expected a table with boost and/or queue")
            continue
        boost = v.get("boost", 0)
        if isinstance(boost, bool) or not isinstance(boost, int) or abs(boost) > MAX_PRIORITY:
            errors.append(f"{path}.boost: expected an int, got {boost!r}")
            boost = 0
        if v.get("queue") is not None and v["queue"] not in queues:
            errors.append(f"{path}.queue: unknown queue {v['queue']!r}")
        vip[number] = Vip(boost, v.get("queue"))
    blacklist = raw.get("blacklist", [])
    if not (isinstance(blacklist, list) and all(isinstance(n, str) for n in blacklist)):
        errors.append(f"routing.blacklist: expected a list of numbers, got {blacklist!r}")
        blacklist = []
    reject = _fallback(errors, "routing.reject", raw.get("reject", "busy"), REJECT_KINDS) or Fallback("busy")
    fallback = _fallback(errors, "routing.fallback", raw.get("fallback", "voicemail:default"), FALLBACK_KINDS)
    if fallback is not None and fallback.kind == "queue":
        # The last resort must end the route point: a queue could be unable to take the call too.
        errors.append("routing.fallback: the default fallback must not be a queue (voicemail, callback, busy, announcement)")
    tick = _number(errors, "routing.tick", raw.get("tick", 0.25), 0.01)
    fastagi = raw.get("fastagi", "")
    if not isinstance(fastagi, str) or (fastagi and not fastagi.rpartition(":")[2].isdigit()):
        errors.append(f"routing.fastagi: expected 'host:port', got {fastagi!r}")
        fastagi = ""
    poll = _number(errors, "routing.fastagi_poll", raw.get("fastagi_poll", 0.25), 0.01)
    rules = RoutingRules(queues, agents, tuple(skills), vip, frozenset(blacklist), reject,
                         fallback or Fallback("voicemail", "default"), tick, fastagi, poll)
    if not errors:
        try:  # the matcher's own checks (the one implementation of them) on the whole set
            build_matcher(rules, PyMatcher)
        except MatchError as exc:
            errors.append(f"routing: {exc}")
    return rules


def queue_order(queues: Mapping[str, QueueRule]) -> list[QueueRule]:
    """Queues in an order where every overflow target comes before the queues overflowing into
    it (the matcher wants to know a queue before a step names it). Raises MatchError on a cycle."""
    done: dict[str, QueueRule] = {}
    visiting: set[str] = set()

    def visit(q: QueueRule) -> None:
        if q.name in done:
            return
        if q.name in visiting:
            raise MatchError("bad_value", f"overflow steps go round in a circle through queue {q.name!r}")
        visiting.add(q.name)
        for step in q.steps:
            if step.overflow in queues:
                visit(queues[step.overflow])
        visiting.discard(q.name)
        done[q.name] = q

    for q in queues.values():
        visit(q)
    return list(done.values())


def build_matcher(rules: RoutingRules, matcher_cls: Callable[[], Any]) -> Any:
    """A matcher (`PyMatcher` or the compiled `Matcher`) loaded with the rules' skills, queues
    and agents, every agent logged out. Raises MatchError for what the matcher refuses."""
    m = matcher_cls()
    named = [*rules.skills, *(s for a in rules.agents.values() for s in a.skills)]
    for q in rules.queues.values():
        named += [*q.skills, *(s for step in q.steps for s in (*step.drop, *step.add))]
    for skill in dict.fromkeys(named):  # registration order is part of determinism
        m.add_skill(skill)
    for q in queue_order(rules.queues):
        m.add_queue(q.name, q.strategy, q.weight, q.wrapup, q.steps)
    for a in rules.agents.values():
        m.add_agent(a.id, a.skills, a.queues)
    return m


def _check_refs(errors: list[str], path: str, q: QueueRule, queues: Mapping[str, QueueRule], known: set[str]) -> None:
    """Names a queue refers to must exist: overflow queues, the fallback queue, skills in steps."""
    if q.fallback is not None and q.fallback.kind == "queue" and q.fallback.target not in queues:
        errors.append(f"{path}.fallback: queue {q.fallback.target!r} does not exist")
    last = 0.0
    for i, step in enumerate(q.steps):
        where = f"{path}.steps[{i}]"
        if step.after < last:
            errors.append(f"{where}.after: steps must be in order of wait")
        last = step.after
        if step.overflow is not None and (step.overflow not in queues or step.overflow == q.name):
            errors.append(f"{where}.overflow: {step.overflow!r} is not another [[routing.queue]]")
        for skill in (*step.drop, *step.add):
            if known and skill not in known:
                errors.append(f"{where}: unknown skill {skill!r} (not in routing.skills)")

"""The ACD bench's call center and its SQL baseline (used by test_acd.py).

`Center` is a seeded population: agents with 3-8 of the skills at levels 1-10, each serving
1-3 queues (penalty 0 or 1); queues with one or two required skills at a low minimum level,
mixed strategies and escalation steps (the full semantics) or all longest-idle with no steps
(the simple model). `SqlAcd` decides the way FreeSWITCH's mod_callcenter does: SQLite tables
of agents, tiers and members; a call takes the available agent of its queue ordered by tier
level and last bridge end, an agent takes the waiting member of its queues ordered by
priority and join time.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass

from ctid.acd import STRATEGIES, Step


@dataclass
class Center:
    agents: list[tuple[str, dict[str, int], dict[str, int]]]  # (id, skills, queues -> penalty)
    queues: list[tuple[str, str, tuple[Step, ...]]]  # (name, strategy, steps)
    needs: dict[str, dict[str, int]]  # queue -> its calls' requirement
    skills: list[str]


def make_center(n_agents: int, n_skills: int = 100, n_queues: int = 100, full: bool = True, seed: int = 7) -> Center:
    rnd = random.Random(seed)
    skills = [f"s{i}" for i in range(n_skills)]
    # Each queue needs one or two skills; its agents are drawn so that most of them qualify.
    needs = {}
    for i in range(n_queues):
        picked = rnd.sample(skills, 2 if full and i % 2 else 1)
        needs[f"q{i}"] = {s: rnd.randint(1, 4) for s in picked}
    queues = []
    for i, name in enumerate(needs):
        strategy = STRATEGIES[i % len(STRATEGIES)] if full else "longest_idle"
        steps: tuple[Step, ...] = ()
        if full:
            steps = (Step(30.0, relax=2), Step(60.0, overflow=f"q{(i + 1) % n_queues}"))
        queues.append((name, strategy, steps))
    agents = []
    names = list(needs)
    for a in range(n_agents):
        served = rnd.sample(names, rnd.randint(1, 3))
        own = {s: rnd.randint(3, 10) for q in served for s in needs[q]}
        extra = rnd.sample(skills, rnd.randint(3, 8))
        sk = {**{s: rnd.randint(1, 10) for s in extra}, **own}
        while len(sk) > 8:  # 3-8 skills each, the ones its queues need kept
            sk.pop(next(s for s in sk if s not in own))
        agents.append((f"a{a}", sk, {q: rnd.randint(0, 1) for q in served}))
    return Center(agents, queues, needs, skills)


def queue_order(queues: list[tuple[str, str, tuple[Step, ...]]]) -> list[tuple[str, str, tuple[Step, ...]]]:
    """Overflow targets first (each queue overflows into the next: add them backwards, the last
    one's target, q0, without its steps ... the matcher needs a queue known before a step names it)."""
    return list(reversed(queues))


def load(matcher, center: Center):
    for s in center.skills:
        matcher.add_skill(s)
    known = set()
    for name, strategy, steps in queue_order(center.queues):
        usable = tuple(st for st in steps if st.overflow is None or st.overflow in known)
        matcher.add_queue(name, strategy, 1.0, 0.0, usable)
        known.add(name)
    for agent, skills, queues in center.agents:
        matcher.add_agent(agent, skills, queues)
    return matcher


class SqlAcd:
    """mod_callcenter's selection in SQLite (in memory, indexed as it would be)."""

    def __init__(self, center: Center) -> None:
        db = self.db = sqlite3.connect(":memory:", isolation_level=None)
        db.executescript("""
            CREATE TABLE agents (name TEXT PRIMARY KEY, status TEXT, state TEXT, last_bridge_end REAL);
            CREATE TABLE tiers (queue TEXT, agent TEXT, level INTEGER, position INTEGER);
            CREATE TABLE members (uuid TEXT PRIMARY KEY, queue TEXT, priority INTEGER, joined_epoch REAL,
                                  state TEXT);
            CREATE INDEX tiers_queue ON tiers (queue, level);
            CREATE INDEX tiers_agent ON tiers (agent);
            CREATE INDEX agents_avail ON agents (status, state, last_bridge_end);
            CREATE INDEX members_wait ON members (queue, state, priority, joined_epoch);
        """)
        db.executemany("INSERT INTO agents VALUES (?, 'Logged Out', 'Idle', 0)", [(a,) for a, _, _ in center.agents])
        db.executemany("INSERT INTO tiers VALUES (?, ?, ?, 1)",
                       [(q, a, p) for a, _, qs in center.agents for q, p in qs.items()])

    def agent_ready(self, agent: str, now: float) -> str | None:
        """The agent is available: the waiting member of its queues it takes, else it waits."""
        row = self.db.execute(
            "SELECT m.uuid FROM tiers t JOIN members m ON m.queue = t.queue AND m.state = 'Waiting' "
            "WHERE t.agent = ? ORDER BY m.priority DESC, m.joined_epoch LIMIT 1", (agent,)).fetchone()
        if row is None:
            self.db.execute("UPDATE agents SET status = 'Available', state = 'Waiting', last_bridge_end = ? "
                            "WHERE name = ?", (now, agent))
            return None
        self.db.execute("UPDATE members SET state = 'Answered' WHERE uuid = ?", row)
        self.db.execute("UPDATE agents SET status = 'Available', state = 'In a queue call' WHERE name = ?", (agent,))
        return row[0]

    def offer(self, call: str, queue: str, priority: int, now: float) -> str | None:
        """A member joins: the available agent of the queue by tier level then last bridge end."""
        row = self.db.execute(
            "SELECT a.name FROM tiers t JOIN agents a ON a.name = t.agent "
            "WHERE t.queue = ? AND a.status = 'Available' AND a.state = 'Waiting' "
            "ORDER BY t.level, a.last_bridge_end LIMIT 1", (queue,)).fetchone()
        if row is None:
            self.db.execute("INSERT INTO members VALUES (?, ?, ?, ?, 'Waiting')", (call, queue, priority, now))
            return None
        self.db.execute("UPDATE agents SET state = 'In a queue call' WHERE name = ?", row)
        return row[0]

    def call_ended(self, agent: str) -> None:
        self.db.execute("UPDATE agents SET status = 'On Break', state = 'Idle' WHERE name = ?", (agent,))


def center_rules(center: Center):
    """The same call center as `[routing]` rules, for the engine (ctid.acd.engine)."""
    from ctid.acd.rules import AgentRule, QueueRule, RoutingRules

    known: set[str] = set()
    queues = {}
    for name, strategy, steps in queue_order(center.queues):
        usable = tuple(st for st in steps if st.overflow is None or st.overflow in known)
        queues[name] = QueueRule(name, strategy, center.needs[name], steps=usable)
        known.add(name)
    agents = {a: AgentRule(a, f"PJSIP/{a}", skills, queues) for a, skills, queues in center.agents}
    return RoutingRules(queues, agents, tuple(center.skills))

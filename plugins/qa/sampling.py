"""Sampling runs: which calls an evaluator scores this week.

A run is (evaluator, period, seed, rules). It is reproducible: its calls are picked with a
random generator seeded by those, from candidates in a fixed order, and a run that was made
before returns the calls it picked then. An evaluator is never given a call twice: calls any
earlier run gave them are not candidates, and the table refuses a duplicate (unique key).
Candidates are calls answered by an agent in the period whose CDR passes the reporting
plugin's data checks (docs/kpis.md): a call with no end or skewed times is never sampled.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import Engine, func, insert, select

from ctid.store.models import CDR
from ctid_plugins.qa.config import Options, Rule
from ctid_plugins.qa.models import Sample
from ctid_plugins.reporting.measures import exclusion_reason

S = Sample.__table__
c = CDR.c


@dataclass(frozen=True)
class Picked:
    rule: str
    site: str
    call_id: str
    agent: str | None


def run_id(evaluator: str, since: float, until: float, seed: int, rules: Iterable[Rule]) -> str:
    text = f"{evaluator}|{since}|{until}|{seed}|" + "|".join(f"{r.name}:{r.kind}:{r.n}:{r.tag}:{r.within}" for r in rules)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def sample(engine: Engine, evaluator: str, since: float, until: float, options: Options, *,
           now: float | None = None) -> list[Picked]:
    """The calls of this run (made now, or the ones it made before)."""
    run = run_id(evaluator, since, until, options.seed, options.rules)
    stamp = time.time() if now is None else now
    with engine.begin() as conn:
        before = conn.execute(select(S.c.rule, S.c.site, S.c.call_id, S.c.agent).where(S.c.run == run).order_by(S.c.id)).all()
        if before:
            return [Picked(*row) for row in before]
        taken = {(s, cid) for s, cid in conn.execute(select(S.c.site, S.c.call_id).where(S.c.evaluator == evaluator))}
        rows = [dict(r) for r in conn.execute(
            select(c.site, c.call_id, c.agent, c.queue, c.caller, c.talk, c.transfers, c.x, c.t_offered)
            .where(c.t_offered >= since, c.t_offered < until, c.disposition == "answered", c.agent.is_not(None),
                   exclusion_reason(stamp).is_(None))  # the CDRs the KPIs trust (docs/kpis.md)
            .order_by(c.t_offered, c.site, c.call_id)).mappings()]
        new = _new_agents(conn, options, until)
        picked: list[Picked] = []
        for rule in options.rules:
            rnd = random.Random(f"{run}|{rule.name}")
            pool = [r for r in rows if (r["site"], r["call_id"]) not in taken]
            for r in _pick(rule, pool, rnd, new, options.new_agent_factor):
                taken.add((r["site"], r["call_id"]))
                picked.append(Picked(rule.name, r["site"], r["call_id"], r["agent"]))
        if picked:
            conn.execute(insert(S), [dict(run=run, rule=p.rule, evaluator=evaluator, site=p.site, call_id=p.call_id,
                                          agent=p.agent, created=stamp) for p in picked])
    return picked


def _new_agents(conn: Any, options: Options, until: float) -> set[str]:
    new = set(options.new_agents)
    if options.new_agent_days > 0:
        first = select(c.agent, func.min(c.t_offered)).where(c.agent.is_not(None)).group_by(c.agent)
        new |= {a for a, t in conn.execute(first) if t is not None and t >= until - options.new_agent_days * 86400}
    return new


def _tags(x: Any) -> set[str]:
    tags = (x or {}).get("tags") if isinstance(x, dict) else None
    return {tags} if isinstance(tags, str) else set(tags or [])


def _pick(rule: Rule, pool: list[dict[str, Any]], rnd: random.Random, new: set[str], factor: int) -> list[dict[str, Any]]:
    def some(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
        return rnd.sample(rows, min(n, len(rows)))

    if rule.kind in ("random", "stratified"):
        key = "agent" if rule.kind == "random" else "queue"
        groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for r in pool:
            groups[r[key]].append(r)
        out = []
        for group in sorted(groups, key=str):
            n = rule.n * (factor if rule.kind == "random" and group in new else 1)
            out += some(groups[group], n)
        return out
    if rule.kind in ("longest", "shortest"):
        ordered = sorted(pool, key=lambda r: (r["talk"] or 0.0), reverse=rule.kind == "longest")
        return ordered[: rule.n]
    if rule.kind == "abandoned_after_answer":
        return some([r for r in pool if (r["talk"] or 0.0) < rule.within], rule.n)
    if rule.kind == "transfers":
        return some([r for r in pool if (r["transfers"] or 0) > 0], rule.n)
    if rule.kind == "repeat_callers":
        calls: dict[str, int] = defaultdict(int)
        for r in pool:
            if r["caller"]:
                calls[r["caller"]] += 1
        return some([r for r in pool if r["caller"] and calls[r["caller"]] > 1], rule.n)
    if rule.kind == "tagged":
        return some([r for r in pool if rule.tag in _tags(r["x"])], rule.n)
    raise ValueError(f"unknown rule kind {rule.kind!r}")

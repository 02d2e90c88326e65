"""The `[plugins.qa]` table: sampling rules, scorecards, new agents; `ctid_config_check`.

```toml
[plugins.qa]
seed = 7                      # sampling runs are reproducible for a seed
scorecard = "default"         # the card evaluations use unless told otherwise
new_agents = ["1009"]         # sampled `new_agent_factor` times as much by `random` rules ...
new_agent_days = 30           # ... as is every agent whose first call is this recent (0 = off)
new_agent_factor = 2
teams = { north = ["1001"] }  # for reports by team (if absent: the site's [[team]]s, or the reporting plugin's teams)

[[plugins.qa.rules]]
name = "weekly"
kind = "random"               # see RULE_KINDS
per_agent = 2

[plugins.qa.scorecards.default]
sections = [ { name = "Opening", items = [ { id = "greet", text = "...", weight = 100 } ] } ]
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ctid_plugins.qa.scorecard import Scorecard, ScorecardError, parse

#: Rule kind -> (its count key, what it picks).
RULE_KINDS = {
    "random": ("per_agent", "N calls per agent, at random"),
    "stratified": ("per_queue", "N calls per queue, at random"),
    "longest": ("count", "the N longest calls (talk)"),
    "shortest": ("count", "the N shortest answered calls (talk)"),
    "abandoned_after_answer": ("count", "N calls the caller left within `within` s of the answer (default 10)"),
    "transfers": ("count", "N transferred calls"),
    "repeat_callers": ("count", "N calls from numbers with more than one answered call in the period"),
    "tagged": ("count", "N calls tagged `tag` (the cdr's x.tags) e.g. complaint"),
}


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    n: int
    tag: str | None = None
    within: float = 10.0


@dataclass(frozen=True)
class Options:
    seed: int = 0
    scorecard: str = "default"
    new_agents: frozenset[str] = frozenset()
    new_agent_days: float = 0.0
    new_agent_factor: int = 2
    rules: tuple[Rule, ...] = ()
    scorecards: dict[str, Scorecard] = field(default_factory=dict)
    teams: dict[str, str] = field(default_factory=dict)  # agent -> team

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> Options:
        """Options from a table that `check()` passed."""
        rules = tuple(Rule(r.get("name", f"{r['kind']}{i}"), r["kind"], int(r[RULE_KINDS[r["kind"]][0]]), r.get("tag"),
                           float(r.get("within", 10))) for i, r in enumerate(options.get("rules", [])))
        cards = {name: parse(name, d) for name, d in (options.get("scorecards") or {}).items()}
        return cls(
            seed=int(options.get("seed", 0)), scorecard=str(options.get("scorecard", "default")),
            new_agents=frozenset(map(str, options.get("new_agents", []))),
            new_agent_days=float(options.get("new_agent_days", 0)), new_agent_factor=int(options.get("new_agent_factor", 2)),
            rules=rules, scorecards=cards,
            teams={str(a): t for t, agents in (options.get("teams") or {}).items() for a in agents},
        )


def check(options: Mapping[str, Any]) -> list[str]:
    """Every problem as `key.path: problem` (relative to `plugins.qa`)."""
    errors: list[str] = []
    for key in ("seed", "new_agent_factor"):
        v = options.get(key, 1)
        if not isinstance(v, int) or isinstance(v, bool) or v < (0 if key == "seed" else 1):
            errors.append(f"{key}: expected an integer >= {0 if key == 'seed' else 1}, got {v!r}")
    days = options.get("new_agent_days", 0)
    if not isinstance(days, (int, float)) or isinstance(days, bool) or days < 0:
        errors.append(f"new_agent_days: expected days >= 0, got {days!r}")
    if not isinstance(options.get("new_agents", []), list):
        errors.append(f"new_agents: expected a list of agent ids, got {options['new_agents']!r}")
    names = set()
    for i, rule in enumerate(options.get("rules", [])):
        where = f"rules[{i}]"
        if not isinstance(rule, Mapping) or rule.get("kind") not in RULE_KINDS:
            errors.append(f"{where}.kind: expected one of {', '.join(RULE_KINDS)}, got {rule.get('kind') if isinstance(rule, Mapping) else rule!r}")
            continue
        key = RULE_KINDS[rule["kind"]][0]
        n = rule.get(key)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            errors.append(f"{where}.{key}: expected a number of calls >= 1, got {n!r}")
        if rule["kind"] == "tagged" and not isinstance(rule.get("tag"), str):
            errors.append(f"{where}.tag: a tagged rule needs the tag to look for")
        name = rule.get("name", f"{rule['kind']}{i}")
        if name in names:
            errors.append(f"{where}.name: {name!r} is used by another rule")
        names.add(name)
    cards = options.get("scorecards", {})
    if not isinstance(cards, Mapping):
        errors.append("scorecards: expected tables of scorecards by name")
        cards = {}
    for name, definition in cards.items():
        try:
            parse(name, definition if isinstance(definition, Mapping) else {})
        except ScorecardError as exc:
            errors += [f"scorecards.{p}" for p in str(exc).split("; ")]
    card = options.get("scorecard", "default")
    if cards and card not in cards:
        errors.append(f"scorecard: {card!r} is not one of the scorecards ({', '.join(sorted(cards))})")
    known = {"seed", "scorecard", "new_agents", "new_agent_days", "new_agent_factor", "rules", "scorecards", "teams"}
    errors += [f"{k}: unknown key" for k in options if k not in known]
    return errors

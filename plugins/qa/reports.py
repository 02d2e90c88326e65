"""QA reports: average scores per agent, team or week, item failure rates, and the averages the
reporting plugin's HTML plots against calls per hour. Calibration evaluations are left out
(they measure the evaluators, not the agent)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from typing import Any, Mapping

from sqlalchemy import Engine, select

from ctid_plugins.qa.evaluations import card_of
from ctid_plugins.qa.models import Evaluation

E = Evaluation.__table__
GROUPS = ("agent", "team", "week", "evaluator", "queue")


def _rows(engine: Engine, since: float, until: float) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            select(E).where(E.c.t_call >= since, E.c.t_call < until, E.c.calibration.is_(None))
            .order_by(E.c.t_call, E.c.id)).mappings()]


def _week(t: float) -> str:
    year, week, _ = datetime.fromtimestamp(t, timezone.utc).isocalendar()
    return f"{year}-W{week:02d}"


def summary(engine: Engine, since: float, until: float, by: str = "agent",
            teams: Mapping[str, str] | None = None) -> dict[str, Any]:
    """{"groups": [{by, evaluations, average, critical_failures, disputed}], "items": failure rates, "excluded"}."""
    if by not in GROUPS:
        raise ValueError(f"unknown grouping {by!r} (known: {', '.join(GROUPS)})")
    rows = _rows(engine, since, until)
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        key = {"team": (teams or {}).get(r["agent"] or "", "(none)"), "week": _week(r["t_call"])}.get(by, r.get(by))
        groups[str(key if key is not None else "(none)")].append(r)
    out = []
    unscored = 0
    for key in sorted(groups):
        scored = [r["score"] for r in groups[key] if r["score"] is not None]
        unscored += len(groups[key]) - len(scored)
        out.append({by: key, "evaluations": len(groups[key]),
                    "average": round(sum(scored) / len(scored), 2) if scored else None,
                    "critical_failures": sum(1 for r in groups[key] if r["critical_failed"]),
                    "disputed": sum(1 for r in groups[key] if r["status"] == "disputed")})
    notes = [f"{unscored} evaluation(s) with every item N/A have no score and are not in the averages."] if unscored else []
    return {"by": by, "groups": out, "items": item_failures(engine, rows), "footnotes": notes}


def item_failures(engine: Engine, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scorecard version and item: how often it was failed of the times it applied."""
    counts: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # failed, applicable, n/a
    for r in rows:
        for item, answer in (r["answers"] or {}).items():
            cell = counts[(r["scorecard_id"], item)]
            if answer == "na":
                cell[2] += 1
                continue
            cell[1] += 1
            if answer == "fail" or (isinstance(answer, (int, float)) and answer < 1):
                cell[0] += 1
    out = []
    cards: dict[int, tuple[Any, int]] = {}
    for (version_id, item), (failed, applicable, na) in sorted(counts.items()):
        if version_id not in cards:
            cards[version_id] = card_of(engine, version_id)
        card, version = cards[version_id]
        out.append({"scorecard": card.name, "version": version, "item": item, "failed": failed,
                    "applicable": applicable, "na": na, "failure_rate": failed / applicable if applicable else None})
    return out


def average_by_agent(engine: Engine, since: float, until: float) -> dict[str, float]:
    """Average QA score per agent for calls in [since, until): the reporting HTML's quadrant."""
    try:
        rows = _rows(engine, since, until)
    except Exception:  # the QA tables do not exist in this database: no scores, not an error
        return {}
    scores: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["agent"] and r["score"] is not None:
            scores[r["agent"]].append(r["score"])
    return {a: sum(v) / len(v) for a, v in scores.items()}

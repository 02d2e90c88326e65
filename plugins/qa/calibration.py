"""Calibration sessions: several evaluators score the same call(s) in a named session; the spread
shows where they disagree, per item and per evaluator."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from sqlalchemy import Engine, select

from ctid_plugins.qa.evaluations import NotFound
from ctid_plugins.qa.models import Evaluation

E = Evaluation.__table__


def _value(answer: Any) -> float | None:
    if answer == "na":
        return None
    if answer in ("pass", "fail"):
        return 1.0 if answer == "pass" else 0.0
    return float(answer)


def spread(engine: Engine, session: str) -> dict[str, Any]:
    """Per item (for each call): the values the evaluators gave, their range and standard deviation;
    per evaluator: mean score and its deviation from the session's mean of each call."""
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(E).where(E.c.calibration == session).order_by(E.c.id)).mappings()]
    if not rows:
        raise NotFound(f"no evaluations in calibration session {session!r}")
    by_call: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_call[r["call_id"]].append(r)
    items = []
    deviations: dict[str, list[float]] = defaultdict(list)
    for call_id, evals in sorted(by_call.items()):
        values: dict[str, dict[str, float | None]] = defaultdict(dict)
        for r in evals:
            for item, answer in r["answers"].items():
                values[item][r["evaluator"]] = _value(answer)
        for item, given in sorted(values.items()):
            nums = [v for v in given.values() if v is not None]
            items.append({"call_id": call_id, "item": item, "values": given,
                          "range": (max(nums) - min(nums)) if nums else None,
                          "stdev": statistics.pstdev(nums) if len(nums) > 1 else 0.0 if nums else None,
                          "agree": len(set(given.values())) == 1})
        scored = [r for r in evals if r["score"] is not None]
        if scored:
            mean = sum(r["score"] for r in scored) / len(scored)
            for r in scored:
                deviations[r["evaluator"]].append(r["score"] - mean)
    evaluators = [{"evaluator": e, "calls": len(d), "mean_deviation": sum(d) / len(d),
                   "mean_abs_deviation": sum(abs(x) for x in d) / len(d)} for e, d in sorted(deviations.items())]
    return {"session": session, "calls": len(by_call), "items": items, "evaluators": evaluators}

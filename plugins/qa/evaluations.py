"""Evaluations: scoring a call on the current version of a scorecard; the agent acknowledges
or disputes. Scorecard versions: a card whose content changed gets a new version at startup
(or when a command loads the config); evaluations keep the version they were scored on."""

from __future__ import annotations

import time
from typing import Any, Mapping

from sqlalchemy import Engine, insert, select, update

from ctid.store.models import CDR
from ctid_plugins.qa.models import Evaluation, ScorecardVersion
from ctid_plugins.qa.scorecard import Scorecard, parse

E = Evaluation.__table__
V = ScorecardVersion.__table__


class EvaluationError(ValueError):
    """An evaluation that cannot be stored or changed, with the reason."""


class NotFound(EvaluationError):
    """No such call, recording or evaluation."""


def sync_scorecards(engine: Engine, cards: Mapping[str, Scorecard], now: float | None = None) -> dict[str, int]:
    """{name: current version id}: a new version row for each card whose content changed."""
    out = {}
    with engine.begin() as conn:
        for name, card in cards.items():
            last = conn.execute(select(V.c.id, V.c.version, V.c.digest).where(V.c.name == name)
                                .order_by(V.c.version.desc()).limit(1)).first()
            if last is not None and last.digest == card.digest:
                out[name] = last.id
                continue
            version = 1 if last is None else last.version + 1
            out[name] = conn.execute(insert(V).values(name=name, version=version, digest=card.digest,
                                                      definition=dict(card.definition),
                                                      created=time.time() if now is None else now)).inserted_primary_key[0]
    return out


def card_of(engine: Engine, version_id: int) -> tuple[Scorecard, int]:
    """The scorecard of a stored version, and its version number."""
    with engine.connect() as conn:
        row = conn.execute(select(V.c.name, V.c.version, V.c.definition).where(V.c.id == version_id)).first()
    if row is None:
        raise NotFound(f"no scorecard version {version_id}")
    return parse(row.name, row.definition), row.version


def evaluate(engine: Engine, version_id: int, evaluator: str, answers: Mapping[str, Any], *,
             call_id: str | None = None, recording: str | None = None, site: str | None = None,
             comments: Mapping[str, str] | None = None, calibration: str | None = None,
             now: float | None = None) -> dict[str, Any]:
    """Score one call (named by its call id or its recording) and store the evaluation."""
    if not evaluator:
        raise EvaluationError("an evaluation needs its evaluator")
    card, _ = card_of(engine, version_id)
    score, critical = card.score(answers)  # ScorecardError on a bad answer
    if comments:
        unknown = set(comments) - {i.id for i in card.items}
        if unknown:
            raise EvaluationError(f"comments on unknown item(s) {', '.join(sorted(unknown))}")
    cdr = CDR.c
    stmt = select(cdr.site, cdr.call_id, cdr.recording, cdr.agent, cdr.queue, cdr.t_offered)
    if call_id is not None:
        stmt = stmt.where(cdr.call_id == call_id)
    elif recording is not None:
        stmt = stmt.where(cdr.recording == recording)
    else:
        raise EvaluationError("name the call: its call id or its recording")
    if site is not None:
        stmt = stmt.where(cdr.site == site)
    stamp = time.time() if now is None else now
    with engine.begin() as conn:
        calls = conn.execute(stmt).all()
        if not calls:
            what = f"call {call_id!r}" if call_id is not None else f"recording {recording!r}"
            raise NotFound(f"{what} is not in the cdr table")
        if len(calls) > 1:
            raise EvaluationError(f"{len(calls)} calls match (sites {', '.join(sorted(r.site for r in calls))}): give the site")
        call = calls[0]
        if not call.recording:
            raise NotFound(f"call {call.call_id!r} has no recording to evaluate")
        row = dict(site=call.site, call_id=call.call_id, recording=call.recording, agent=call.agent, queue=call.queue,
                   t_call=call.t_offered, evaluator=evaluator, scorecard_id=version_id, answers=dict(answers),
                   comments=dict(comments or {}), score=score, critical_failed=critical, calibration=calibration,
                   status="submitted", dispute=None, created=stamp, updated=stamp)
        row["id"] = conn.execute(insert(E).values(**row)).inserted_primary_key[0]
    return row


def get(engine: Engine, evaluation_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(E).where(E.c.id == evaluation_id)).mappings().first()
    if row is None:
        raise NotFound(f"no evaluation {evaluation_id}")
    return dict(row)


def for_agent(engine: Engine, agent: str) -> list[dict[str, Any]]:
    """An agent's own evaluations, newest first."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(E).where(E.c.agent == agent).order_by(E.c.created.desc(), E.c.id.desc())).mappings()]


def respond(engine: Engine, evaluation_id: int, agent: str, action: str, reason: str | None = None,
            now: float | None = None) -> dict[str, Any]:
    """The evaluated agent acknowledges (`acknowledge`) or disputes (`dispute`, with a reason)."""
    current = get(engine, evaluation_id)
    if current["agent"] != agent:
        raise EvaluationError(f"evaluation {evaluation_id} is of agent {current['agent']!r}, not {agent!r}")
    if action not in ("acknowledge", "dispute"):
        raise EvaluationError(f"expected acknowledge or dispute, got {action!r}")
    if current["status"] != "submitted":
        raise EvaluationError(f"evaluation {evaluation_id} is already {current['status']}")
    if action == "dispute" and not (reason or "").strip():
        raise EvaluationError("a dispute needs a reason")
    status = "acknowledged" if action == "acknowledge" else "disputed"
    with engine.begin() as conn:
        conn.execute(update(E).where(E.c.id == evaluation_id).values(
            status=status, dispute=reason if action == "dispute" else None, updated=time.time() if now is None else now))
    return get(engine, evaluation_id)

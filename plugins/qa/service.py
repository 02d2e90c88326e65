"""The QA plugin's state in one place: the database engine, the options and the current
scorecard versions; used by the bus ops and the `ctid qa` commands alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from sqlalchemy import Engine

from ctid.store.engine import make_engine
from ctid.store.models import metadata as store_metadata
from ctid_plugins.qa import calibration, evaluations, reports, sampling
from ctid_plugins.qa.config import Options
from ctid_plugins.qa.models import metadata


@dataclass
class QaService:
    engine: Engine
    options: Options
    versions: dict[str, int]  # scorecard name -> current version id

    @classmethod
    def open(cls, url: str, options: Options) -> QaService:
        """Connect, create the QA tables if missing (the cdr table too: an empty database works),
        and give every changed scorecard a new version."""
        engine = make_engine(url)
        store_metadata.create_all(engine)
        metadata.create_all(engine)
        return cls(engine, options, evaluations.sync_scorecards(engine, options.scorecards))

    def close(self) -> None:
        self.engine.dispose()

    def sample(self, evaluator: str, since: float, until: float) -> list[sampling.Picked]:
        return sampling.sample(self.engine, evaluator, since, until, self.options)

    def evaluate(self, evaluator: str, answers: Mapping[str, Any], *, scorecard: str | None = None,
                 **call: Any) -> dict[str, Any]:
        name = scorecard or self.options.scorecard
        if name not in self.versions:
            raise evaluations.EvaluationError(f"no scorecard {name!r} (configured: {', '.join(sorted(self.versions)) or 'none'})")
        return evaluations.evaluate(self.engine, self.versions[name], evaluator, answers, **call)

    def respond(self, evaluation_id: int, agent: str, action: str, reason: str | None = None) -> dict[str, Any]:
        return evaluations.respond(self.engine, evaluation_id, agent, action, reason)

    def evaluations_of(self, agent: str) -> list[dict[str, Any]]:
        return evaluations.for_agent(self.engine, agent)

    def report(self, since: float, until: float, by: str = "agent") -> dict[str, Any]:
        return reports.summary(self.engine, since, until, by, self.options.teams)

    def calibration(self, session: str) -> dict[str, Any]:
        return calibration.spread(self.engine, session)

"""The QA plugin's request ops on the bus: errors come back as `RequestError(code, message)`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Callable

from ctid.bus import RequestError
from ctid_plugins.qa.evaluations import EvaluationError, NotFound
from ctid_plugins.qa.scorecard import ScorecardError
from ctid_plugins.qa.service import QaService


def _need(request: dict[str, Any], *keys: str) -> list[Any]:
    missing = [k for k in keys if request.get(k) in (None, "")]
    if missing:
        raise RequestError("bad_request", f"missing {', '.join(missing)}")
    return [request[k] for k in keys]


def _guard(fn: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    def handler(request: dict[str, Any]) -> Any:
        try:
            return fn(request)
        except NotFound as exc:
            raise RequestError("not_found", str(exc)) from None
        except (EvaluationError, ScorecardError, ValueError) as exc:
            raise RequestError("bad_request", str(exc)) from None
    handler.__doc__ = fn.__doc__
    return handler


def make_ops(qa: QaService) -> dict[str, Callable[[dict[str, Any]], Any]]:
    def sample(r: dict[str, Any]) -> Any:
        """pick calls for an evaluator: evaluator, since, until (epoch s); reproducible"""
        evaluator, since, until = _need(r, "evaluator", "since", "until")
        return [asdict(p) for p in qa.sample(evaluator, float(since), float(until))]

    def evaluate(r: dict[str, Any]) -> Any:
        """score a call: evaluator, answers {item: pass|fail|na|0-1}, call_id or recording, [scorecard, comments, calibration]"""
        evaluator, answers = _need(r, "evaluator", "answers")
        return qa.evaluate(evaluator, answers, scorecard=r.get("scorecard"), call_id=r.get("call_id"),
                           recording=r.get("recording"), site=r.get("site"), comments=r.get("comments"),
                           calibration=r.get("calibration"))

    def evaluations(r: dict[str, Any]) -> Any:
        """an agent's own evaluations: agent"""
        (agent,) = _need(r, "agent")
        return qa.evaluations_of(agent)

    def acknowledge(r: dict[str, Any]) -> Any:
        """the evaluated agent acknowledges: id, agent"""
        eid, agent = _need(r, "id", "agent")
        return qa.respond(int(eid), agent, "acknowledge")

    def dispute(r: dict[str, Any]) -> Any:
        """the evaluated agent disputes: id, agent, reason"""
        eid, agent = _need(r, "id", "agent")
        return qa.respond(int(eid), agent, "dispute", r.get("reason"))

    def report(r: dict[str, Any]) -> Any:
        """averages and item failure rates: since, until, [by agent|team|week|evaluator|queue]"""
        since, until = _need(r, "since", "until")
        return qa.report(float(since), float(until), r.get("by", "agent"))

    def calibration(r: dict[str, Any]) -> Any:
        """spread of a calibration session per item and evaluator: session"""
        (session,) = _need(r, "session")
        return qa.calibration(session)

    ops = {"sample": sample, "evaluate": evaluate, "evaluations": evaluations, "acknowledge": acknowledge,
           "dispute": dispute, "report": report, "calibration": calibration}
    return {f"qa.{name}": _guard(fn) for name, fn in ops.items()}

"""The QA plugin's request ops on the bus: errors come back as `RequestError(code, message)`.

On a CURVE bus each op runs as the client key's role (`ctid.bus.current_client`): an agent key
sees, acknowledges and disputes only its own evaluations (whatever `agent` the request names:
another one is `forbidden`); sampling and evaluating are for supervisor and admin keys; a crm
key may read (evaluations, reports, calibration) but not score. On a plain loopback bus, and
for admin keys, the request is taken as sent.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Callable

from ctid.bus import RequestError, current_client
from ctid_plugins.qa.evaluations import EvaluationError, NotFound
from ctid_plugins.qa.scorecard import ScorecardError
from ctid_plugins.qa.service import QaService


def _need(request: dict[str, Any], *keys: str) -> list[Any]:
    missing = [k for k in keys if request.get(k) in (None, "")]
    if missing:
        raise RequestError("bad_request", f"missing {', '.join(missing)}")
    return [request[k] for k in keys]


#: What each role other than admin may do on a secured bus (op names without `qa.`).
ROLE_OPS = {
    "agent": frozenset({"evaluations", "acknowledge", "dispute"}),  # its own evaluations only
    "supervisor": frozenset({"sample", "evaluate", "evaluations", "report", "calibration"}),
    "crm": frozenset({"evaluations", "report", "calibration"}),
}


def as_client(op: str, request: dict[str, Any]) -> dict[str, Any]:
    """The request as the sender's role may make it; RequestError(forbidden) when it may not."""
    who = current_client.get()
    if who is None or who.key is None or who.kind == "admin":
        return request
    if op not in ROLE_OPS.get(who.kind, ()):
        raise RequestError("forbidden", f"qa.{op} is not allowed for {who.role}")
    if who.kind == "agent":
        if request.get("agent") not in (None, "", who.arg):
            raise RequestError("forbidden", f"qa.{op} is not allowed for {who.role}: agent {request['agent']!r} is not you")
        return {**request, "agent": who.arg}
    return request


def _guard(op: str, fn: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    def handler(request: dict[str, Any]) -> Any:
        request = as_client(op, request)
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
    return {f"qa.{name}": _guard(name, fn) for name, fn in ops.items()}

"""`ctid qa sample|evaluate|report`: quality assurance from the shell, on the daemon's database.

    ctid qa sample -c CONFIG --evaluator eve --from 2026-11-02 --to 2026-11-09 [--json]
    ctid qa evaluate -c CONFIG --evaluator eve CALL_ID --answers '{"greet": "pass", ...}' [--comment ITEM=TEXT]
    ctid qa evaluate -c CONFIG --acknowledge ID --agent 1001 | --dispute ID --agent 1001 --reason TEXT
    ctid qa report -c CONFIG --from ... --to ... [--by agent|team|week|evaluator|queue] [--calibration SESSION] [--json]

Times are read in the reporting plugin's time zone when it is configured, else UTC.
Exit codes: 0 done, 1 refused (not found, bad answers), 2 bad config or arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    qa = subparsers.add_parser("qa", help="quality assurance: sample calls, evaluate them, report",
                               description="quality assurance: sample calls, evaluate them, report")
    sub = qa.add_subparsers(dest="qa_command", required=True)

    def command(name: str, func, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("-c", "--config", required=True, help="site config (TOML): database and [plugins.qa]")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=func)
        return p

    p = command("sample", _sample, "pick this period's calls for an evaluator (reproducible; never a call twice)")
    p.add_argument("--evaluator", required=True)
    p.add_argument("--from", dest="since", required=True)
    p.add_argument("--to", dest="until", required=True)
    p = command("evaluate", _evaluate, "score a call, or acknowledge/dispute an evaluation as its agent")
    p.add_argument("call_id", nargs="?", help="the call to score (or --recording)")
    p.add_argument("--recording", help="the call's recording path instead of its id")
    p.add_argument("--evaluator")
    p.add_argument("--answers", help='JSON: {"item": "pass" | "fail" | "na" | 0.5, ...}')
    p.add_argument("--scorecard", help="scorecard name (default: [plugins.qa] scorecard)")
    p.add_argument("--comment", action="append", default=[], metavar="ITEM=TEXT")
    p.add_argument("--calibration", metavar="SESSION", help="score as part of a calibration session")
    p.add_argument("--acknowledge", type=int, metavar="ID")
    p.add_argument("--dispute", type=int, metavar="ID")
    p.add_argument("--agent", help="the evaluated agent (for --acknowledge/--dispute)")
    p.add_argument("--reason", help="why the agent disputes")
    p = command("report", _report, "QA averages, item failure rates, or a calibration session's spread")
    p.add_argument("--from", dest="since")
    p.add_argument("--to", dest="until")
    p.add_argument("--by", default="agent", choices=("agent", "team", "week", "evaluator", "queue"))
    p.add_argument("--calibration", metavar="SESSION")


def _open(args: argparse.Namespace):
    """(service, zone) from the config, or None after printing every config error (exit code 2)."""
    from zoneinfo import ZoneInfo

    from ctid_plugins.qa.config import Options, check
    from ctid_plugins.qa.service import QaService
    from ctid_plugins.reporting.cli import plugin_table

    loaded = plugin_table(args.config, "qa", check)
    if loaded is None:
        return None
    cfg, raw = loaded
    options = Options.parse(raw)
    if not options.teams:  # the reports' teams ([[team]], or the reporting plugin's): both group alike
        teams = cfg.plugins.options.get("reporting", {}).get("teams")
        by_agent = cfg.site_teams.agent_team if teams is None else {str(a): t for t, agents in teams.items() for a in agents}
        options = dataclasses.replace(options, teams=dict(by_agent))
    zone = ZoneInfo(cfg.plugins.options.get("reporting", {}).get("timezone", "UTC"))
    return QaService.open(cfg.database.url, options), zone


def _period(args: argparse.Namespace, zone) -> tuple[float, float]:
    from ctid_plugins.reporting.periods import parse_time

    if not args.since or not args.until:
        raise SystemExit("ctid qa: --from and --to are required")
    try:
        return parse_time(args.since, zone), parse_time(args.until, zone)
    except ValueError as exc:
        raise SystemExit(f"ctid qa: {exc}") from None


def _print(args: argparse.Namespace, value: Any, text: str) -> None:
    print(json.dumps(value, default=str, ensure_ascii=False) if args.json else text)


def _guarded(fn) -> int:
    from ctid_plugins.qa.evaluations import EvaluationError
    from ctid_plugins.qa.scorecard import ScorecardError

    try:
        return fn()
    except (EvaluationError, ScorecardError, ValueError) as exc:
        print(f"ctid qa: {exc}", file=sys.stderr)
        return 1


def _sample(args: argparse.Namespace) -> int:
    opened = _open(args)
    if opened is None:
        return 2
    qa, zone = opened
    try:
        since, until = _period(args, zone)
        picked = qa.sample(args.evaluator, since, until)
        _print(args, [p.__dict__ for p in picked],
               "\n".join(f"{p.rule:<20} {p.site:<8} {p.call_id:<24} {p.agent or '-'}" for p in picked) or "no calls to sample")
        return 0
    finally:
        qa.close()


def _evaluate(args: argparse.Namespace) -> int:
    opened = _open(args)
    if opened is None:
        return 2
    qa, _ = opened
    try:
        if args.acknowledge is not None or args.dispute is not None:
            if not args.agent:
                raise SystemExit("ctid qa evaluate: --agent is required with --acknowledge/--dispute")
            action, eid = ("acknowledge", args.acknowledge) if args.acknowledge is not None else ("dispute", args.dispute)
            return _guarded(lambda: _show(args, qa.respond(eid, args.agent, action, args.reason)))
        if not args.evaluator or args.answers is None or not (args.call_id or args.recording):
            raise SystemExit("ctid qa evaluate: give CALL_ID (or --recording), --evaluator and --answers")
        try:
            answers = json.loads(args.answers)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"ctid qa evaluate: --answers is not JSON: {exc}") from None
        comments = dict(c.split("=", 1) for c in args.comment if "=" in c)
        return _guarded(lambda: _show(args, qa.evaluate(args.evaluator, answers, scorecard=args.scorecard,
                                                        call_id=args.call_id, recording=args.recording,
                                                        comments=comments, calibration=args.calibration)))
    finally:
        qa.close()


def _show(args: argparse.Namespace, row: dict[str, Any]) -> int:
    score = "n/a" if row["score"] is None else f"{row['score']:.1f}"
    _print(args, row, f"evaluation {row['id']}: call {row['call_id']} agent {row['agent']} score {score}"
           + (" (critical item failed)" if row["critical_failed"] else "") + f" [{row['status']}]")
    return 0


def _report(args: argparse.Namespace) -> int:
    opened = _open(args)
    if opened is None:
        return 2
    qa, zone = opened
    try:
        if args.calibration:
            def cal() -> int:
                s = qa.calibration(args.calibration)
                lines = [f"calibration {s['session']}: {s['calls']} call(s)"]
                lines += [f"  {i['call_id']} {i['item']:<16} range {i['range']}  " + ", ".join(
                    f"{e}={v}" for e, v in i["values"].items()) for i in s["items"]]
                lines += [f"  evaluator {e['evaluator']:<12} mean deviation {e['mean_deviation']:+.1f}" for e in s["evaluators"]]
                _print(args, s, "\n".join(lines))
                return 0
            return _guarded(cal)
        since, until = _period(args, zone)
        r = qa.report(since, until, args.by)
        lines = [f"{args.by:<12} {'evals':>5} {'average':>8} {'critical':>8} {'disputed':>8}"]
        lines += [f"{g[args.by]:<12} {g['evaluations']:>5} {('n/a' if g['average'] is None else format(g['average'], '.1f')):>8}"
                  f" {g['critical_failures']:>8} {g['disputed']:>8}" for g in r["groups"]]
        lines += ["", "item failure rates:"] + [
            f"  {i['scorecard']} v{i['version']} {i['item']:<16} {i['failed']}/{i['applicable']}" for i in r["items"]]
        lines += r["footnotes"]
        _print(args, r, "\n".join(lines))
        return 0
    finally:
        qa.close()

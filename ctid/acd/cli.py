"""`ctid routing replay`: a recorded period's calls under other routing rules or staffing,
side by side with what really happened (ctid/acd/replay.py does the work)."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from datetime import datetime, timezone
from typing import Any, Callable

Command = Callable[..., argparse.ArgumentParser]
_COLUMNS = (("offered", "offered", "{:d}"), ("sl", "SL", "{:.0%}"), ("asa", "ASA s", "{:.1f}"),
            ("abandon_rate", "abandoned", "{:.0%}"), ("occupancy", "occupancy", "{:.0%}"))


def add_commands(sub: argparse._SubParsersAction, command: Command) -> None:
    routing = sub.add_parser("routing", help="ctid's own ACD (docs/routing.md)").add_subparsers(
        dest="routing_command", required=True)
    p = command("replay", _replay, "what-if: replay a recorded period's calls under other routing rules or staffing "
                "and print SL, ASA, abandon rate and occupancy beside what really happened", routing)
    p.add_argument("--cdr", required=True, metavar="FROM..TO",
                   help="the period, ISO times (UTC unless they say otherwise) or epoch seconds, "
                        "e.g. 2026-11-24T08:00..2026-11-24T18:00")
    p.add_argument("--rules", required=True, metavar="NEW.toml", help="a TOML file with the [routing] to try")
    p.add_argument("-c", "--config", help="site config: where the CDRs are ([database] url)")
    p.add_argument("--db", help="SQLAlchemy URL of the CDRs (instead of the config's)")
    p.add_argument("--sl", type=float, default=20.0, help="service level threshold, seconds (default 20)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def parse_period(text: str) -> tuple[float, float]:
    """`FROM..TO` as epoch seconds; ValueError says what is wrong."""
    start, sep, end = text.partition("..")
    if not sep or not start or not end:
        raise ValueError(f"--cdr: expected FROM..TO, got {text!r}")
    since, until = _instant(start), _instant(end)
    if until <= since:
        raise ValueError(f"--cdr: {end!r} is not after {start!r}")
    return since, until


def _instant(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--cdr: {text!r} is neither an ISO time nor epoch seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _replay(args: argparse.Namespace) -> int:
    from ctid import config
    from ctid.acd.replay import Figures, actual, replay
    from ctid.acd.rules import parse_routing
    from ctid.store import query

    try:
        since, until = parse_period(args.cdr)
        with open(args.rules, "rb") as f:
            raw = tomllib.load(f)
    except (ValueError, OSError) as exc:  # tomllib's decode error is a ValueError
        print(f"ctid routing replay: {exc}", file=sys.stderr)
        return 2
    errors: list[str] = []
    rules = parse_routing(raw.get("routing", raw), errors)
    if not errors and not rules.enabled:
        errors.append("routing.queue: the rules have no [[routing.queue]]")
    if errors:
        print(config.ConfigError(args.rules, errors), file=sys.stderr)
        return 2
    url = args.db
    if url is None:
        if args.config is None:
            print("ctid routing replay: give -c CONFIG or --db URL (where the CDRs are)", file=sys.stderr)
            return 2
        try:
            url = config.load(args.config).database.url
        except config.ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
    rows = query.cdrs(url, since=since, until=until)
    was, staffed = actual(rows, args.sl)
    would = replay(rows, rules, args.sl)
    span = until - since
    report = {"period": [since, until], "calls": len(rows), "agents": {"actual": staffed, "replay": len(rules.agents)},
              "queues": {q: {"actual": was.queues[q].row(staffed, span),
                             "replay": would.queues.get(q, Figures()).row(len(rules.agents), span)}
                         for q in sorted(was.queues)},
              "total": {"actual": was.total.row(staffed, span), "replay": would.total.row(len(rules.agents), span)}}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
    return 0


def render(report: dict[str, Any]) -> str:
    head = f"{'queue':<14}" + "".join(f"{label:>22}" for _, label, _ in _COLUMNS)
    lines = [f"{report['calls']} recorded calls; agents: {report['agents']['actual']} answered calls in reality, "
             f"{report['agents']['replay']} in the rules (all ready the whole period)",
             "each figure: actual -> replay", head]
    for name, figures in [*report["queues"].items(), ("all", report["total"])]:
        cells = "".join(f"{_cell(figures['actual'][k], fmt) + ' -> ' + _cell(figures['replay'][k], fmt):>22}"
                        for k, _, fmt in _COLUMNS)
        lines.append(f"{name:<14}{cells}")
    return "\n".join(lines)


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)

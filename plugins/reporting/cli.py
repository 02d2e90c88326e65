"""`ctid report` and `ctid staffing`: the reporting plugin's commands.

    ctid report -c CONFIG --from 2026-11-01 --to 2026-12-01 --by queue,interval [--format table|csv|json|html]
    ctid report rollup -c CONFIG [--rebuild] [--json]
    ctid staffing --calls-per-hour 360 --aht 240 --sl 80/20 [--shrinkage 30] [--json]
    ctid staffing --forecast FILE.csv --aht 240 --sl 80/20 [--interval 30] [--json]

`ctid report` reads the database the daemon writes (`[database] url` of `-c CONFIG`, or
`--database URL`) and the `[plugins.reporting]` and `[[queue]]` tables. Exit codes: 0 done,
2 bad config, arguments or filter.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

from ctid_plugins.reporting.config import TEAMS_DEPRECATED, Options, check


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    from ctid_plugins.reporting.aggregate import DIMENSIONS
    from ctid_plugins.reporting.render import FORMATS

    p = subparsers.add_parser("report", help="contact-center KPIs from the stored CDRs (docs/kpis.md)",
                              description="contact-center KPIs from the stored CDRs (definitions: docs/kpis.md); "
                                          "`ctid report rollup` brings the interval rollup up to date")
    p.add_argument("action", nargs="?", choices=("rollup",),
                   help="rollup: refresh the interval rollup the reports read (with --rebuild: from scratch)")
    p.add_argument("--rebuild", action="store_true", help="with `rollup`: rebuild it whole from the CDRs")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("-c", "--config", help="site config (TOML): database, time zone, service levels, teams")
    where.add_argument("--database", metavar="URL", help="SQLAlchemy URL of the ctid database (default options)")
    p.add_argument("--from", dest="since", metavar="WHEN", help="start, local: YYYY-MM-DD[ HH:MM] (included; required)")
    p.add_argument("--to", dest="until", metavar="WHEN", help="end, local: YYYY-MM-DD[ HH:MM] (excluded; required)")
    p.add_argument("--by", default="", help=f"comma-separated dimensions: {', '.join(DIMENSIONS)}")
    p.add_argument("--interval", type=int, default=30, choices=(15, 30, 60), help="minutes per interval (default 30)")
    p.add_argument("--queue", action="append", default=[], help="only this queue (repeatable)")
    p.add_argument("--site", action="append", default=[], help="only this site (repeatable)")
    p.add_argument("--schedule", type=Path, help="CSV agent,start,end of shifts on the phones, for schedule adherence")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--json", action="store_true", help="same as --format json")
    p.add_argument("-o", "--output", help="write to this file instead of standard output")
    p.set_defaults(func=_report)

    p = subparsers.add_parser("staffing", help="Erlang C: agents needed for a service-level target",
                              description="Erlang C: agents needed for a service-level target, per staffing level")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--calls-per-hour", type=float, help="offered calls per hour")
    what.add_argument("--forecast", type=Path, help="CSV with interval,calls[,aht] per interval")
    p.add_argument("--aht", type=float, help="average handle time, seconds (default for the forecast's rows)")
    p.add_argument("--sl", default="80/20", help="target: PERCENT/SECONDS answered within (default 80/20)")
    p.add_argument("--shrinkage", type=float, default=0.0, help="percent of paid time off the phones (default 0)")
    p.add_argument("--interval", type=int, default=30, help="minutes per forecast row (default 30)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_staffing)


def _fail(command: str, message: Any) -> int:
    print(f"ctid {command}: {message}", file=sys.stderr)
    return 2


def plugin_table(path: str, name: str, check_table: Callable[[Mapping[str, Any]], list[str]]) -> tuple[Any, Mapping[str, Any]] | None:
    """(the site config, its `[plugins.NAME]` table) once both are valid; None after printing every
    error with its key path (the command's exit code is then 2). The QA commands use it too."""
    from ctid import config

    try:
        cfg = config.load(path)
    except config.ConfigError as exc:
        print(exc, file=sys.stderr)
        return None
    raw = cfg.plugins.options.get(name, {})
    errors = check_table(raw)
    if errors:
        print(config.ConfigError(cfg.source, [f"plugins.{name}.{e}" for e in errors]), file=sys.stderr)
        return None
    return cfg, raw


def load_options(args: argparse.Namespace) -> tuple[str, Options, set[str]] | None:
    """(database url, options, configured queues) from -c or --database; None after printing errors."""
    if args.database:
        return args.database, Options(), set()
    loaded = plugin_table(args.config, "reporting", check)
    if loaded is None:
        return None
    cfg, raw = loaded
    if "teams" in raw:
        print(f"ctid report: warning: {TEAMS_DEPRECATED}", file=sys.stderr)
    levels = {q.name: q.servicelevel for q in cfg.queues}
    return cfg.database.url, Options.parse(raw, levels, cfg.site_teams), {q.name for q in cfg.queues}


def _report(args: argparse.Namespace) -> int:
    from ctid.store.engine import make_engine
    from ctid_plugins.reporting import render
    from ctid_plugins.reporting.periods import parse_time
    from ctid_plugins.reporting import schedule
    from ctid_plugins.reporting.report import ReportError, build

    if args.action != "rollup" and args.rebuild:
        return _fail("report", "--rebuild goes with `ctid report rollup`")
    if args.action is None and (args.since is None or args.until is None):
        return _fail("report", "--from and --to are required (or `ctid report rollup`)")
    loaded = load_options(args)
    if loaded is None:
        return 2
    url, options, configured = loaded
    if args.action == "rollup":
        return _rollup(url, options, args.rebuild, args.json)
    fmt = "json" if args.json else args.format
    try:
        since, until = parse_time(args.since, options.zone), parse_time(args.until, options.zone)
        by = [d.strip() for d in args.by.split(",") if d.strip()]
        engine = make_engine(url)
        try:
            filters = dict(interval=args.interval, queues=args.queue, sites=args.site, known=configured)
            shifts = schedule.load(args.schedule, options.zone) if args.schedule else None
            report = build(engine, since, until, by, options, schedule=shifts, **filters)
            if fmt == "html":
                from ctid_plugins.reporting.html import inputs, render_html

                text = render_html(inputs(engine, report, options, **filters))
        finally:
            engine.dispose()
    except (ReportError, ValueError) as exc:
        return _fail("report", exc)
    if fmt != "html":
        text = {"table": render.table, "csv": render.csv_text, "json": render.json_text}[fmt](report)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _rollup(url: str, options: Options, rebuild: bool, as_json: bool) -> int:
    import time

    from sqlalchemy.exc import DBAPIError

    from ctid.store.engine import make_engine
    from ctid_plugins.reporting import rollup

    engine = make_engine(url)
    try:
        run = rollup.refresh(engine, options, time.time(), rebuild=rebuild)
    except DBAPIError as exc:
        return _fail("report rollup", f"the database refused the rollup: {exc.orig}")
    finally:
        engine.dispose()
    if as_json:
        print(json.dumps({"rebuilt": run.rebuilt, "buckets": run.buckets, "horizon": run.horizon * 900,
                          "watermark": run.watermark, "seconds": round(run.seconds, 3)}))
    else:
        print(f"rollup {'rebuilt' if run.rebuilt else 'refreshed'}: {run.buckets} 15-minute bucket(s) rolled from the "
              f"CDRs up to id {run.watermark} in {run.seconds:.2f} s")
    return 0


def _staffing(args: argparse.Namespace) -> int:
    from ctid_plugins.reporting.erlang import StaffingError, forecast, parse_target, staff

    try:
        target, target_time = parse_target(args.sl)
        shrinkage = args.shrinkage / 100.0
        if args.forecast is not None:
            rows = list(forecast(args.forecast, args.aht, args.interval, target, target_time, shrinkage))
            if args.json:
                print(json.dumps({"intervals": [{"interval": i, **s.to_json()} for i, s in rows]}))
            else:
                print(f"{'interval':>20}  {'calls/h':>8}  {'aht':>5}  {'agents':>6}  {'scheduled':>9}  {'SL':>6}  {'ASA':>6}")
                for interval, s in rows:
                    at = next((lv for lv in s.levels if lv.agents == s.agents), None)
                    sl, asa = (f"{at.service_level * 100:.1f}%", f"{at.asa:.1f}s") if at else ("n/a", "n/a")
                    print(f"{interval:>20}  {s.calls_per_hour:>8.1f}  {s.aht:>5.0f}  {s.agents:>6}  {s.scheduled:>9}  {sl:>6}  {asa:>6}")
            return 0
        if args.aht is None:
            return _fail("staffing", "--aht is required with --calls-per-hour")
        s = staff(args.calls_per_hour, args.aht, target, target_time, shrinkage)
    except (StaffingError, OSError) as exc:
        return _fail("staffing", exc)
    if args.json:
        print(json.dumps(s.to_json()))
        return 0
    print(f"{s.calls_per_hour:g} calls/h x {s.aht:g} s = {s.load:.2f} erlangs; target {s.target * 100:g}% "
          f"within {s.target_time:g} s")
    print(f"agents needed: {s.agents}" + (f"; scheduled with {args.shrinkage:g}% shrinkage: {s.scheduled}"
                                         if shrinkage else ""))
    print(f"{'agents':>6}  {'SL':>7}  {'ASA':>8}  {'occupancy':>9}  {'P(wait)':>7}")
    for lv in s.levels:
        mark = "  <- needed" if lv.agents == s.agents else ""
        asa = "inf" if lv.asa == float("inf") else f"{lv.asa:.1f}s"
        print(f"{lv.agents:>6}  {lv.service_level * 100:>6.1f}%  {asa:>8}  {lv.occupancy * 100:>8.1f}%  {lv.p_wait:>7.3f}{mark}")
    return 0

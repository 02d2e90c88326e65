"""`ctid recordings search|scan|export|retention`: the recording index from the command line.

Each command opens the configured database (`-c FILE`: `[database] url` and the
`[plugins.recordings]` options), rebuilds the index from it and runs as a principal
(`--as ROLE`, default `admin`: whoever can read the config can read the database anyway).
`search`, `export` and `retention` first ask a running daemon (`[bus] req`; on a CURVE bus
with the client key `--key FILE`, and then as that key's role) and rebuild the index only
when none answers (ctid.recordings.remote): a retention the daemon applies leaves no stale
rows in its index. `--local` skips the daemon.
Exit codes: 0 done, 1 done with problems (skipped files, missing files), 2 bad arguments or config.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ctid.recordings.model import FIELDS

TABLE = ("start", "duration", "caller", "called", "queue", "agent", "disposition", "recording_id")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    rec = subparsers.add_parser("recordings", help="find, import, export and expire call recordings",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = rec.add_subparsers(dest="recordings_command", required=True)

    def command(name: str, func: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("-c", "--config", required=True, help="site config (TOML)")
        p.add_argument("--as", dest="principal", default="admin", metavar="ROLE",
                       help="run as agent:<id>, supervisor:<team>[,<team>], auditor or admin (default)")
        p.set_defaults(func=func)
        return p

    p = command("search", _search, "recordings matching the filters (a table, or --json / --csv)")
    _filters(p)
    _daemon_options(p)
    p.add_argument("--order", choices=("newest", "oldest"), default="newest")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--offset", type=int)
    p.add_argument("--cursor", help="next_cursor of a previous page")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object per line")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header row")

    p = command("scan", _scan, "import an archive: file names give the fields, headers the duration")
    p.add_argument("dir", type=Path)
    p.add_argument("--pattern", help="file name regex with named groups (default: the config's, else built in)")
    p.add_argument("--start-format", help="strptime format of the start group")

    p = command("export", _export, "copy a selection's files and a manifest CSV with SHA-256 to a directory")
    p.add_argument("dir", type=Path)
    _filters(p)
    _daemon_options(p)

    p = command("retention", _retention, "delete recordings older than an age: lists them first (dry run)")
    p.add_argument("--days", type=float, help="the age in days (default: [plugins.recordings] retention_days)")
    p.add_argument("--apply", action="store_true", help="delete them (without it, only list them)")
    _daemon_options(p)


def _daemon_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", metavar="FILE", help="client key file (what `ctid keys new` prints) to ask the daemon "
                                                 "on a CURVE bus")
    p.add_argument("--timeout", type=float, default=2.0, metavar="SECONDS",
                   help="how long to wait for a running daemon before building the index here (default 2)")
    p.add_argument("--local", action="store_true", help="build the index from the database here; ask no daemon")


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="since", metavar="TIME", help="ISO date/time (UTC unless it says) or epoch seconds")
    p.add_argument("--to", dest="until", metavar="TIME", help="end of the range, excluded")
    p.add_argument("--agent", action="append", help="repeatable")
    p.add_argument("--team", action="append", help="repeatable")
    p.add_argument("--queue", action="append", help="repeatable")
    p.add_argument("--caller", help="digits; 0161* for a prefix, *1234 for a suffix")
    p.add_argument("--called", help="digits; 0161* for a prefix, *1234 for a suffix")
    p.add_argument("--suffix", help="the last digits of either number")
    p.add_argument("--min-duration", type=float)
    p.add_argument("--max-duration", type=float)
    p.add_argument("--direction", action="append", choices=("inbound", "outbound", "internal"))
    p.add_argument("--disposition", action="append", help="repeatable")
    p.add_argument("--voicemail", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--tag")
    p.add_argument("--min-qa", type=float)
    p.add_argument("--max-qa", type=float)


def _time(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    when = datetime.fromisoformat(text)
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def _spec(args: argparse.Namespace) -> dict[str, Any]:
    spec = {"since": _time(args.since), "until": _time(args.until), "agents": args.agent, "teams": args.team,
            "queues": args.queue, "caller": args.caller, "called": args.called, "suffix": args.suffix,
            "min_duration": args.min_duration, "max_duration": args.max_duration, "directions": args.direction,
            "dispositions": args.disposition, "voicemail": args.voicemail, "tag": args.tag,
            "min_qa": args.min_qa, "max_qa": args.max_qa}
    for name in ("order", "limit", "offset", "cursor"):
        if hasattr(args, name):
            spec[name] = getattr(args, name)
    return spec


def _config(args: argparse.Namespace):
    """(the site config, its [plugins.recordings] options), both checked."""
    from ctid import config
    from ctid.recordings.plugin import check_options

    try:
        cfg = config.load(args.config)
    except config.ConfigError as exc:
        raise _Usage(str(exc)) from None
    options = cfg.plugins.options.get("recordings", {})
    errors = check_options(options)
    if errors:
        raise _Usage("\n".join(errors))
    return cfg, options


def _open(args: argparse.Namespace):
    """(service rebuilt from the database, principal, [plugins.recordings] options)."""
    from ctid.recordings.access import Principal
    from ctid.recordings.service import RecordingService

    cfg, options = _config(args)
    principal = Principal.parse(args.principal)
    return RecordingService(cfg.database.url, site=cfg.site, teams=cfg.site_teams).start(), principal, options


def _daemon(args: argparse.Namespace):
    """A client of the running daemon to ask first, or None (--local; a CURVE bus and no --key)."""
    from ctid.recordings.remote import ClientKey, DaemonClient

    if args.local:
        return None
    cfg, _ = _config(args)
    key = None
    if cfg.bus.security == "curve":
        if not args.key:
            print("ctid recordings: the bus is CURVE and no --key was given: building the index from the database",
                  file=sys.stderr)
            return None
        key = ClientKey.load(args.key)
    elif args.key:
        raise _Usage(f"--key: the bus of {args.config} is plain (bus.security), it takes no key")
    if args.timeout <= 0:
        raise _Usage("--timeout: must be > 0 seconds")
    return DaemonClient(cfg.bus.req, key, args.timeout)


def _ask(args: argparse.Namespace, ask: Callable[[Any], Any]) -> Any:
    """`ask(client)` of the running daemon; None when there is none to ask or it does not answer."""
    from ctid.recordings.remote import NoDaemon

    client = _daemon(args)
    if client is None:
        return None
    try:
        return ask(client)
    except NoDaemon as exc:
        print(f"ctid recordings: {exc}: building the index from the database", file=sys.stderr)
        return None
    finally:
        client.close()


class _Usage(Exception):
    """Bad arguments or config: printed, exit code 2."""


def _run(body: Callable[[], int]) -> int:
    from ctid.recordings.query import QueryError
    from ctid.recordings.remote import DaemonRefused
    from ctid.recordings.scan import ScanError

    try:
        return body()
    except (_Usage, QueryError, ScanError, ValueError, DaemonRefused) as exc:
        print(f"ctid recordings: {exc}", file=sys.stderr)
        return 2


def _search(args: argparse.Namespace) -> int:
    def body() -> int:
        from ctid.recordings.query import parse_query

        from ctid.recordings.remote import recording

        spec = _spec(args)
        query = parse_query(spec)  # refused here, before anyone is asked
        page = _ask(args, lambda daemon: daemon.search(args.principal, spec))
        if page is not None:
            recs, cursor = [recording(row) for row in page["rows"]], page["next_cursor"]
        else:
            service, principal, _ = _open(args)
            try:
                recs, cursor = service.search(principal, query)
            finally:
                service.close()
        rows = [r.as_json() for r in recs]
        if args.json:
            for row in rows:
                print(json.dumps(row, ensure_ascii=False))
        elif args.csv:
            out = csv.DictWriter(sys.stdout, FIELDS)
            out.writeheader()
            for row in rows:
                out.writerow({**row, "tags": ";".join(row["tags"])})
        else:
            _table(rows)
        if cursor is not None and not (args.json or args.csv):
            print(f"more: --cursor {cursor}")
        return 0

    return _run(body)


def _table(rows: list[dict[str, Any]]) -> None:
    cells = [[_cell(k, row[k]) for k in TABLE] for row in rows]
    widths = [max([len(k)] + [len(c[i]) for c in cells]) for i, k in enumerate(TABLE)]
    print("  ".join(k.ljust(w) for k, w in zip(TABLE, widths)))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)))


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "start":
        return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    if key == "duration":
        return f"{value:.1f}"
    return str(value)


def _scan(args: argparse.Namespace) -> int:
    def body() -> int:
        from ctid.recordings.scan import DEFAULT_PATTERN, DEFAULT_START_FORMAT, compile_pattern, scan

        service, _, options = _open(args)
        try:
            rx = compile_pattern(args.pattern or options.get("pattern") or DEFAULT_PATTERN)
            report = scan(args.dir, rx, args.start_format or options.get("start_format") or DEFAULT_START_FORMAT,
                          service.feed.teams)
            added = service.add(report.found)
        finally:
            service.close()
        for error in report.errors:
            print(f"skipped: {error}", file=sys.stderr)
        print(f"{len(report.found)} recordings read, {len(added)} new, {len(report.errors)} files skipped")
        return 1 if report.errors else 0

    return _run(body)


def _export(args: argparse.Namespace) -> int:
    def body() -> int:
        from ctid.recordings.export import export
        from ctid.recordings.query import parse_query

        spec = {**_spec(args), "order": "oldest", "limit": 1000}
        query = parse_query(spec)
        recs = _ask(args, lambda daemon: [r for page in daemon.pages(args.principal, spec) for r in page])
        if recs is None:
            service, principal, _ = _open(args)
            try:
                recs = service.everything(principal, query)
            finally:
                service.close()
        report = export(recs, args.dir)
        for error in report.errors:
            print(f"not exported: {error}", file=sys.stderr)
        print(f"{report.exported} of {len(recs)} recordings exported to {args.dir} (manifest {report.manifest})")
        return 1 if report.errors else 0

    return _run(body)


def _retention(args: argparse.Namespace) -> int:
    def body() -> int:
        _, options = _config(args)
        days = args.days if args.days is not None else options.get("retention_days")
        if days is None or days <= 0:
            raise _Usage("give --days N (> 0) or set [plugins.recordings] retention_days")
        done = _ask(args, lambda daemon: _retention_by_daemon(daemon, args.principal, days, args.apply))
        if done is None:
            done = _retention_here(args, days)
        listed, deleted, problems = done
        for p in problems:
            print(f"problem: {p}", file=sys.stderr)
        if not args.apply:
            print(f"{listed} recordings older than {days:g} days (dry run: --apply deletes them)")
            return 0
        print(f"{deleted} recordings deleted")
        return 1 if problems else 0

    return _run(body)


def _listed(rec: Any, apply: bool) -> None:
    print(f"{'delete' if apply else 'would delete'}  {_cell('start', rec['start'])}  "
          f"{rec['recording_id']}  {rec['path'] or '-'}")


def _retention_by_daemon(daemon: Any, principal: str, days: float, apply: bool) -> tuple[int, int, list[str]]:
    """The daemon deletes (files, rows, its index), a page per request: (listed, deleted, problems)."""
    listed, deleted, problems, cursor = 0, 0, [], None
    while True:
        page = daemon.retention(principal, days, apply, cursor)
        for rec in page["recordings"]:
            _listed(rec, apply)
        listed += len(page["recordings"])
        deleted += page["deleted"]
        problems += page["problems"]
        cursor = page["next_cursor"]
        if cursor is None:
            return listed, deleted, problems


def _retention_here(args: argparse.Namespace, days: float) -> tuple[int, int, list[str]]:
    """No daemon: an index of our own; a daemon started later rebuilds from the database."""
    service, principal, _ = _open(args)
    try:
        recs = service.expired(principal, days * 86400.0)
        for rec in recs:
            _listed({"start": rec.start, "recording_id": rec.recording_id, "path": rec.path}, args.apply)
        deleted, problems = service.delete(recs) if args.apply else (0, [])
    finally:
        service.close()
    return len(recs), deleted, problems

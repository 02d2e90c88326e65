"""`ctid contacts ...`: manage the built-in contact store from the shell.

    ctid contacts import FILE -c CONFIG      bulk import (bad rows reported with their line)
    ctid contacts export FILE -c CONFIG
    ctid contacts add NUMBER --name ... -c CONFIG
    ctid contacts edit NUMBER --notes ... -c CONFIG
    ctid contacts delete NUMBER -c CONFIG
    ctid contacts search [TEXT] -c CONFIG

The config gives the database (`[database] url`) and the number plan
(`[plugins.screenpop] country_code`, ...); `--database URL` works without a config.
Exit codes: 0 done, 1 done with refused rows or not found, 2 bad config or arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from ctid_plugins.screenpop.numbers import NumberPlan


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    contacts = subparsers.add_parser("contacts", help="manage the screen pop's built-in contact store",
                                     description="manage the screen pop's built-in contact store")
    sub = contacts.add_subparsers(dest="contacts_command", required=True)

    def command(name: str, func: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        where = p.add_mutually_exclusive_group(required=True)
        where.add_argument("-c", "--config", help="site config (TOML): database and number plan")
        where.add_argument("--database", metavar="URL", help="SQLAlchemy URL of the ctid database")
        p.set_defaults(func=func)
        return p

    p = command("import", _import, "import contacts from a CSV file (number,name,company,level,vip,notes,custom)")
    p.add_argument("file")
    p = command("export", _export, "export every contact to a CSV file in the import format")
    p.add_argument("file")
    for name, func, help_ in (("add", _add, "add a contact"), ("edit", _edit, "change fields of a contact")):
        p = command(name, func, help_)
        p.add_argument("number")
        p.add_argument("--name")
        p.add_argument("--company")
        p.add_argument("--level")
        p.add_argument("--vip", action=argparse.BooleanOptionalAction, default=None)
        p.add_argument("--notes")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a custom field (repeatable)")
        if name == "edit":
            p.add_argument("--new-number", help="renumber the contact")
            p.add_argument("--unset", action="append", default=[], metavar="KEY", help="remove a custom field")
    p = command("delete", _delete, "delete a contact")
    p.add_argument("number")
    p = command("search", _search, "find contacts whose number, name or company contains TEXT")
    p.add_argument("text", nargs="?", default="")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def _store(args: argparse.Namespace):
    """The contact store the arguments name (tables created if missing); SystemExit(2) on a bad config."""
    from ctid.store.engine import make_engine
    from ctid_plugins.screenpop.config import Options, check
    from ctid_plugins.screenpop.contacts.store import ContactStore

    url, plan = args.database, NumberPlan()
    if args.config:
        from ctid import config

        try:
            cfg = config.load(args.config)
        except config.ConfigError as exc:
            print(exc, file=sys.stderr)
            raise SystemExit(2) from None
        options = cfg.plugins.options.get("screenpop", {})
        errors = check(options)
        if errors:
            print(config.ConfigError(cfg.source, [f"plugins.screenpop.{e}" for e in errors]), file=sys.stderr)
            raise SystemExit(2)
        url, plan = cfg.database.url, Options.parse(options).plan
    store = ContactStore(make_engine(url), plan)
    store.create_tables()
    return store


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    fields = {k: getattr(args, k) for k in ("name", "company", "level", "vip", "notes") if getattr(args, k) is not None}
    custom = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"ctid contacts: --set expects KEY=VALUE, got {item!r}")
        custom[key.strip()] = value
    if custom:
        fields["custom"] = custom
    return fields


def _print(contact: dict[str, Any]) -> None:
    print(json.dumps(contact, ensure_ascii=False, sort_keys=True))


def _import(args: argparse.Namespace) -> int:
    from ctid_plugins.screenpop.contacts.csvio import CsvError, import_csv

    store = _store(args)
    try:
        report = import_csv(args.file, store)
    except (CsvError, OSError) as exc:
        print(f"ctid contacts import: {exc}", file=sys.stderr)
        return 2
    for error in report.errors:
        print(f"{args.file}: {error}", file=sys.stderr)
    print(f"{args.file}: {report.rows} rows: {report.inserted} added, {report.updated} updated, "
          f"{len(report.errors)} refused")
    return 1 if report.errors else 0


def _export(args: argparse.Namespace) -> int:
    from ctid_plugins.screenpop.contacts.csvio import export_csv

    n = export_csv(args.file, _store(args))
    print(f"{args.file}: {n} contacts")
    return 0


def _guarded(action: Callable[[], Any]) -> int:
    from ctid_plugins.screenpop.contacts.store import ContactError, NotFound

    try:
        result = action()
    except (ContactError, NotFound) as exc:
        print(f"ctid contacts: {exc}", file=sys.stderr)
        return 1
    if isinstance(result, dict):
        _print(result)
    return 0


def _add(args: argparse.Namespace) -> int:
    store = _store(args)
    return _guarded(lambda: store.add({"number": args.number, **_fields(args)}))


def _edit(args: argparse.Namespace) -> int:
    store = _store(args)

    def edit() -> dict[str, Any]:
        changes = _fields(args)
        if args.new_number:
            changes["number"] = args.new_number
        if "custom" in changes or args.unset:
            current = store.get(store.number(args.number)) or {}
            custom = {**(current.get("custom") or {}), **changes.get("custom", {})}
            changes["custom"] = {k: v for k, v in custom.items() if k not in args.unset}
        return store.edit(args.number, changes)

    return _guarded(edit)


def _delete(args: argparse.Namespace) -> int:
    store = _store(args)

    def delete() -> None:
        from ctid_plugins.screenpop.contacts.store import NotFound

        if not store.delete(args.number):
            raise NotFound(f"no contact with number {store.number(args.number)}")
        print(f"deleted {store.number(args.number)}")

    return _guarded(delete)


def _search(args: argparse.Namespace) -> int:
    store = _store(args)
    found = store.search(args.text, args.limit)
    for c in found:
        if args.json:
            _print(c)
        else:
            vip = " VIP" if c["vip"] else ""
            print(f"{c['number']:<18}{c['name'] or '-'} ({c['company'] or '-'}){vip}")
    if not args.json:
        print(f"{len(found)} contact(s)", file=sys.stderr)
    return 0

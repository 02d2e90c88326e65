"""`ctid keys new|add|list|revoke` and `ctid audit`: client keys and the control audit trail.

Both work on the site database named by the config, so they act on a running daemon:
a key added is allowed at its next handshake, a key revoked is cut off within a second.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Callable

Command = Callable[..., argparse.ArgumentParser]


def add_commands(sub: argparse._SubParsersAction, command: Command) -> None:
    keys = sub.add_parser("keys", help="client keys of the bus (CURVE) and their roles").add_subparsers(
        dest="keys_command", required=True)
    p = command("new", _keys_new, "make a key pair for a client, allow it with a role, print it", keys)
    _common(p)
    p.add_argument("--role", required=True, help="agent:<id>, supervisor:<team>, crm or admin")
    p.add_argument("--label", default="", help="who holds it (e.g. the desktop's name); revoke accepts it")
    p = command("add", _keys_add, "allow a client's existing public key with a role", keys)
    _common(p)
    p.add_argument("key", help="the client's CURVE public key (40 Z85 characters; one that begins with \"-\" goes after \"--\")")
    p.add_argument("--role", required=True, help="agent:<id>, supervisor:<team>, crm or admin")
    p.add_argument("--label", default="")
    p = command("list", _keys_list, "every key with its role, label and whether it is revoked", keys)
    _common(p)
    p.add_argument("--json", action="store_true")
    p = command("revoke", _keys_revoke, "revoke a key (or every key with a label); takes effect without a restart", keys)
    _common(p)
    p.add_argument("key", help="the key or the label")

    p = command("audit", _audit, "the control requests the daemon served: who, what, outcome (newest first)")
    _common(p)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--principal", help="only this role, e.g. agent:1001")
    p.add_argument("--op", help="only this op, e.g. call.make")
    p.add_argument("--since", type=float, help="only after this many seconds ago")
    p.add_argument("--json", action="store_true")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="site config (TOML): its database holds the keys")


def _config(args: argparse.Namespace) -> Any:
    from ctid import config

    try:
        return config.load(args.config)
    except config.ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def _store(cfg: Any) -> Any:
    from ctid.security.keys import KeyStore

    return KeyStore(cfg.database.url)


def _keys_new(args: argparse.Namespace) -> int:
    from ctid.security.keys import server_keys

    cfg = _config(args)
    if cfg is None:
        return 2
    try:
        info, secret = _store(cfg).new(args.role, args.label)
    except ValueError as exc:
        print(f"ctid keys new: {exc}", file=sys.stderr)
        return 2
    server_public, _ = server_keys(cfg.bus.server_key)
    print(f"# a CURVE client of {cfg.site} as {info.role}; give the secret key to its holder only")
    print(f'public-key = "{info.key}"')
    print(f'secret-key = "{secret}"')
    print(f'server-key = "{server_public.decode()}"')
    return 0


def _keys_add(args: argparse.Namespace) -> int:
    cfg = _config(args)
    if cfg is None:
        return 2
    try:
        info = _store(cfg).add(args.key, args.role, args.label)
    except ValueError as exc:
        print(f"ctid keys add: {exc}", file=sys.stderr)
        return 2
    print(f"allowed {info.key} as {info.role}")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    cfg = _config(args)
    if cfg is None:
        return 2
    rows = _store(cfg).list()
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
        return 0
    print(f"{'key':<42}{'role':<22}{'label':<20}{'created':<21}revoked")
    for r in rows:
        print(f"{r.key:<42}{r.role:<22}{r.label:<20}{_when(r.created_at):<21}{_when(r.revoked_at) if r.revoked_at else '-'}")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from ctid.security.keys import UnknownKey

    cfg = _config(args)
    if cfg is None:
        return 2
    try:
        gone = _store(cfg).revoke(args.key)
    except UnknownKey as exc:
        print(f"ctid keys revoke: {exc}", file=sys.stderr)
        return 1
    for r in gone:
        print(f"revoked {r.key} ({r.role}{', ' + r.label if r.label else ''})")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from ctid.control.audit import entries

    cfg = _config(args)
    if cfg is None:
        return 2
    since = time.time() - args.since if args.since is not None else None
    rows = entries(cfg.database.url, args.limit, args.principal, args.op, since)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    for r in rows:
        params = r["params"] if isinstance(r["params"], dict) else {}
        target = str(params.get("call_id") or params.get("agent") or "")
        tail = f"  {r['message']}" if r["message"] else ""
        print(f"{_when(r['ts'])}  {r['principal']:<20} {r['op']:<24} {target:<20} {r['outcome']}{tail}")
    return 0


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else ""

"""The `ctid` command. Each subcommand imports what it needs only when it runs."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Callable

from ctid import __version__


def _load_config(path: str):
    """The validated config, or None after printing every error (exit code 2)."""
    from ctid import config

    try:
        return config.load(path)
    except config.ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def _cmd_run(args: argparse.Namespace) -> int:
    from ctid import daemon, log

    cfg = _load_config(args.config)
    if cfg is None:
        return 2
    log.setup(cfg.log.level, cfg.log.format)
    try:
        return _run_async(daemon.serve(cfg))
    except Exception as exc:  # a driver kind that is not installed, a port that is taken...
        print(f"ctid: cannot start: {exc}", file=sys.stderr)
        return 1


def _cmd_check_config(args: argparse.Namespace) -> int:
    from ctid import config
    from ctid.drivers import UnknownDriver, load
    from ctid.metrics import Counters
    from ctid.plugins import PluginHost

    cfg = _load_config(args.config)
    if cfg is None:
        return 2
    errors = []
    for i, d in enumerate(cfg.drivers):
        try:
            load(d.kind)
        except UnknownDriver as exc:
            errors.append(f"driver[{i}].kind: {exc}")
    # the same plugin loading and per-plugin checks the daemon runs before it starts
    host = PluginHost(cfg.plugins.enabled, cfg.plugins.options, Counters())
    host.load()
    errors += [f"plugins.enabled: {name}: {why}" for name, why in host.failed.items()]
    errors += host.check_config()
    if errors:
        print(config.ConfigError(cfg.source, errors), file=sys.stderr)
        return 2
    print(f"{cfg.source}: OK (site {cfg.site}, {len(cfg.drivers)} driver(s): "
          + ", ".join(f"{d.name}={d.kind}@{d.host}:{d.port}" for d in cfg.drivers) + ")")
    return 0


def _cmd_sim_asterisk(args: argparse.Namespace) -> int:
    from ctid import log
    from ctid.drivers.asterisk import sim

    log.setup("INFO")
    return _run_async(sim.main(args))


def _cmd_sim_csta(args: argparse.Namespace) -> int:
    from ctid import log
    from ctid.drivers.csta import sim

    log.setup("INFO")
    return _run_async(sim.main(args))


def _cmd_demo(args: argparse.Namespace) -> int:
    from ctid import demo, log

    log.setup("WARNING")
    code = _run_async(demo.run_demo(args))
    if code == 130:
        print("\nstopped")
        return 0
    return code


def _cmd_import_queues(args: argparse.Namespace) -> int:
    from ctid.drivers.asterisk import importer

    return importer.main(args)


def _cmd_plugins(args: argparse.Namespace) -> int:
    """Installed plugins and drivers, with version, whether the config enables them, and
    (with --live) what a running daemon says of them."""
    import json

    from ctid.drivers import ENTRY_POINT_GROUP as DRIVERS
    from ctid.plugins import ENTRY_POINT_GROUP as PLUGINS
    from importlib.metadata import entry_points

    enabled: tuple[str, ...] = ()
    if args.config:
        cfg = _load_config(args.config)
        if cfg is None:
            return 2
        enabled = cfg.plugins.enabled
    rows = []
    for group, kind in ((PLUGINS, "plugin"), (DRIVERS, "driver")):
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            try:
                ep.load()
                status = "ok"
            except Exception as exc:  # show it, do not crash the listing
                status = f"cannot load: {type(exc).__name__}: {exc}"
            rows.append({"name": ep.name, "kind": kind, "version": ep.dist.version if ep.dist else "?",
                         "enabled": ep.name in enabled if kind == "plugin" else None, "status": status})
    for name in enabled:
        if not any(r["name"] == name and r["kind"] == "plugin" for r in rows):
            rows.append({"name": name, "kind": "plugin", "version": None, "enabled": True, "status": "not installed"})
    live = None
    if args.live:
        import msgpack
        import zmq

        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(args.live)
        sock.send(msgpack.packb({"op": "plugins"}))
        live = msgpack.unpackb(sock.recv()) if sock.poll(3000) else {"ok": False, "error": {"message": "no answer"}}
    if args.json:
        print(json.dumps({"installed": rows, "live": live}, indent=2))
        return 0
    print(f"{'name':<16}{'kind':<8}{'version':<10}{'enabled':<9}status")
    for r in rows:
        flag = "-" if r["enabled"] is None else ("yes" if r["enabled"] else "no")
        print(f"{r['name']:<16}{r['kind']:<8}{str(r['version']):<10}{flag:<9}{r['status']}")
    if live is not None:
        print("\nrunning daemon:")
        for r in live.get("result", []) if live.get("ok") else [live.get("error")]:
            print("  " + ", ".join(f"{k}={v}" for k, v in r.items()))
    return 0


def _add_plugin_commands(sub: argparse._SubParsersAction) -> None:
    """Subcommands from installed plugins (`ctid_cli` hook); a broken plugin is reported, not fatal."""
    from importlib.metadata import entry_points

    import pluggy

    from ctid import hookspecs
    from ctid.plugins import ENTRY_POINT_GROUP

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:
            print(f"ctid: plugin {ep.name} not loaded: {type(exc).__name__}: {exc}", file=sys.stderr)
    for impl in pm.hook.ctid_cli.get_hookimpls():
        try:
            impl.function(**{k: sub for k in impl.argnames})
        except Exception as exc:
            print(f"ctid: plugin {pm.get_name(impl.plugin)} could not add its commands: {exc!r}", file=sys.stderr)


def _run_async(coro) -> int:
    """Run a command's coroutine on uvloop where available; Ctrl-C is exit code 130."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        return runner(coro)
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctid", description="CTI middleware: PBX events in, one normalized event bus out.")
    parser.add_argument("--version", action="version", version=f"ctid {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func: Callable[[argparse.Namespace], int], help_: str, parent=sub) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    p = command("run", _cmd_run, "run the daemon")
    p.add_argument("-c", "--config", required=True, help="site config (TOML)")
    p = command("check-config", _cmd_check_config, "validate a config file and print every error with its key path")
    p.add_argument("-c", "--config", required=True, help="site config (TOML)")

    sim = sub.add_parser("sim", help="run a stand-in PBX (simulator)").add_subparsers(dest="pbx", required=True)
    p = command("asterisk", _cmd_sim_asterisk, "an Asterisk AMI server running a simulated call center", sim)
    from ctid.drivers.asterisk import sim as ast_sim

    ast_sim.add_arguments(p)
    p = command("csta", _cmd_sim_csta, "a CSTA XML (AES DMCC-like) server running the same simulated call center", sim)
    from ctid.drivers.csta import sim as csta_sim

    csta_sim.add_arguments(p)

    p = command("demo", _cmd_demo, "start the simulator and the daemon and watch the call center live")
    from ctid import demo

    demo.add_arguments(p)

    imp = sub.add_parser("import", help="import a site's existing PBX setup").add_subparsers(dest="what", required=True)
    p = command("asterisk-queues", _cmd_import_queues, "read an Asterisk queues.conf (pyst2) and print ctid's queue tables", imp)
    from ctid.drivers.asterisk import importer

    importer.add_arguments(p)

    p = command("plugins", _cmd_plugins, "list installed plugins and drivers, their versions and whether they are enabled")
    p.add_argument("-c", "--config", help="site config, to show which plugins it enables")
    p.add_argument("--live", metavar="REQ", help="also ask the daemon at this request endpoint (e.g. tcp://127.0.0.1:5561)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    from ctid.security import cli as security_cli

    security_cli.add_commands(sub, command)  # keys new|add|list|revoke, audit

    from ctid.acd import cli as routing_cli

    routing_cli.add_commands(sub, command)  # routing replay

    _add_plugin_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130

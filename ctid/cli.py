"""The `ctid` command. Each subcommand imports what it needs only when it runs."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Callable

from ctid import __version__


def _cmd_run(args: argparse.Namespace) -> int:
    from ctid import config, daemon, log

    try:
        cfg = config.load(args.config)
    except config.ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    log.setup(cfg.log.level, cfg.log.format)
    try:
        return daemon.run(cfg)
    except Exception as exc:  # a driver kind that is not installed, a port that is taken...
        print(f"ctid: cannot start: {exc}", file=sys.stderr)
        return 1


def _cmd_check_config(args: argparse.Namespace) -> int:
    from ctid import config
    from ctid.drivers import UnknownDriver, load

    try:
        cfg = config.load(args.config)
    except config.ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    errors = []
    for i, d in enumerate(cfg.drivers):
        try:
            load(d.kind)
        except UnknownDriver as exc:
            errors.append(f"driver[{i}].kind: {exc}")
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


def _cmd_demo(args: argparse.Namespace) -> int:
    from ctid import demo

    return demo.main(args)


def _cmd_import_queues(args: argparse.Namespace) -> int:
    from ctid.drivers.asterisk import importer

    return importer.main(args)


def _run_async(coro) -> int:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)
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

    p = command("demo", _cmd_demo, "start the simulator and the daemon and watch the call center live")
    from ctid import demo

    demo.add_arguments(p)

    imp = sub.add_parser("import", help="import a site's existing PBX setup").add_subparsers(dest="what", required=True)
    p = command("asterisk-queues", _cmd_import_queues, "read an Asterisk queues.conf (pyst2) and print ctid's queue tables", imp)
    from ctid.drivers.asterisk import importer

    importer.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130

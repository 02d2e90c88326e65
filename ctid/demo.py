"""`ctid demo`: the Asterisk simulator, the daemon and the console view, on free loopback ports.

Everything talks over real sockets, exactly as in production: the simulator is an
AMI server, the daemon connects to it, the view is a bus client.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import socket
import tempfile
from pathlib import Path

from ctid import config
from ctid.acd.rules import RoutingRules, parse_routing
from ctid.console import watch
from ctid.daemon import Daemon


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--seed", type=int, default=None, help="seed the simulated call center for a repeatable run")
    parser.add_argument("--speed", type=float, default=10.0, help="simulated time runs this many times faster (default 10)")
    parser.add_argument("--db", default=None, help="SQLAlchemy URL for the CDRs (default: a SQLite file in a temp dir)")
    parser.add_argument("--routing", choices=("pbx", "ctid"), default="pbx",
                        help="who picks the agent: the simulated PBX's queues (default), or ctid through route points")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_config(ami_port: int, db_url: str, wrapup: dict[str, float]) -> config.Config:
    """The embedded defaults: one site, one Asterisk driver, the bus on free ports.

    `wrapup`: the queues' after-call work, which Asterisk does not tell over AMI (a real
    site sets the driver's `wrapup` option the same way)."""
    return config.parse({
        "site": "demo",
        "bus": {"pub": f"tcp://127.0.0.1:{_free_port()}", "req": f"tcp://127.0.0.1:{_free_port()}",
                "security": "plain"},  # the demo's console is on the same machine
        "database": {"url": db_url},
        "log": {"level": "WARNING", "stats_interval": 0},
        "driver": [{"kind": "asterisk", "host": "127.0.0.1", "port": ami_port, "username": "ctid", "secret": "demo",
                    "wrapup": wrapup}],
    }, "<demo>")


def demo_routing(sim, speed: float) -> RoutingRules:
    """`--routing ctid`: ctid routes the simulator's queues to the same members (longest idle
    first), over FastAGI on a free port. Wrap-up is scaled like the driver's (wall seconds)."""
    model = sim.model
    raw = {"fastagi": f"127.0.0.1:{_free_port()}", "fastagi_poll": max(0.01, 1.0 / speed),
           "queue": [{"name": name, "wrapup": q.spec.wrapup / speed} for name, q in model.queues.items()],
           "agent": [{"id": a.ext, "device": f"PJSIP/{a.ext}", "queues": {q: a.spec.penalty for q in a.spec.queues}}
                     for a in model.agents.values() if a.spec is not None]}
    errors: list[str] = []
    rules = parse_routing(raw, errors)
    if errors:
        raise config.ConfigError("<demo routing>", errors)
    return rules


async def _wait_resynced(daemon: Daemon, timeout: float = 10.0) -> None:
    """Show the view once the driver has logged in and loaded the queues, not before."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while daemon.counters.get("driver.asterisk.resyncs") < 1 and loop.time() < deadline:
        await asyncio.sleep(0.05)


async def run_demo(args: argparse.Namespace) -> int:
    from ctid.drivers.asterisk.sim import AmiSimulator

    routed = getattr(args, "routing", "pbx") == "ctid"
    # With ctid routing the clock waits for the route point: no call may queue before it is there.
    sim = AmiSimulator(seed=args.seed, speed=args.speed, paused=routed)
    _, port = await sim.start("127.0.0.1", 0)
    with tempfile.TemporaryDirectory(prefix="ctid-demo-") as tmp:
        db_url = args.db or f"sqlite:///{Path(tmp) / 'ctid.db'}"
        # Simulated time runs `speed` times faster: so must after-call work as the daemon sees it.
        wrapup = {name: q.spec.wrapup / args.speed for name, q in sim.model.queues.items()}
        cfg = demo_config(port, db_url, wrapup)
        if routed:
            cfg = dataclasses.replace(cfg, routing=demo_routing(sim, args.speed))
        daemon = Daemon(cfg)
        await daemon.start()
        route_point = None
        try:
            await _wait_resynced(daemon)
            if routed:
                from ctid.drivers.asterisk.simroute import RoutePoint

                host, _, agi_port = cfg.routing.fastagi.rpartition(":")
                route_point = RoutePoint(sim, host, int(agi_port)).install()
                sim.resume()
            seen = await watch(daemon.config.bus.pub, daemon.config.bus.req, args.duration)
        finally:
            if route_point is not None:
                await route_point.close()
            await daemon.stop()
            await sim.stop()
        cdrs = daemon.store.written
    print(f"demo finished: {seen} call events on the bus, {daemon.bus.seq} events in all, {cdrs} rows written")
    if route_point is not None:
        c = daemon.counters
        print(f"routed by ctid: {c.get('routing.requests')} route requests, {c.get('routing.selected')} to agents, "
              f"{c.get('routing.fallbacks')} fallbacks, {c.get('routing.abandoned')} hung up waiting, "
              f"{route_point.refused} not connectable")
    return 0

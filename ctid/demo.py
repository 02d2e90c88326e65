"""`ctid demo`: the Asterisk simulator, the daemon and the console view, on free loopback ports.

Everything talks over real sockets, exactly as in production: the simulator is an
AMI server, the daemon connects to it, the view is a bus client.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import tempfile
from pathlib import Path

from ctid import config
from ctid.console import watch
from ctid.daemon import Daemon


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--seed", type=int, default=None, help="seed the simulated call center for a repeatable run")
    parser.add_argument("--speed", type=float, default=10.0, help="simulated time runs this many times faster (default 10)")
    parser.add_argument("--db", default=None, help="SQLAlchemy URL for the CDRs (default: a SQLite file in a temp dir)")


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
        "bus": {"pub": f"tcp://127.0.0.1:{_free_port()}", "req": f"tcp://127.0.0.1:{_free_port()}"},
        "database": {"url": db_url},
        "log": {"level": "WARNING", "stats_interval": 0},
        "driver": [{"kind": "asterisk", "host": "127.0.0.1", "port": ami_port, "username": "ctid", "secret": "demo",
                    "wrapup": wrapup}],
    }, "<demo>")


async def _wait_resynced(daemon: Daemon, timeout: float = 10.0) -> None:
    """Show the view once the driver has logged in and loaded the queues, not before."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while daemon.counters.get("driver.asterisk.resyncs") < 1 and loop.time() < deadline:
        await asyncio.sleep(0.05)


async def run_demo(args: argparse.Namespace) -> int:
    from ctid.drivers.asterisk.sim import AmiSimulator

    sim = AmiSimulator(seed=args.seed, speed=args.speed)
    _, port = await sim.start("127.0.0.1", 0)
    with tempfile.TemporaryDirectory(prefix="ctid-demo-") as tmp:
        db_url = args.db or f"sqlite:///{Path(tmp) / 'ctid.db'}"
        # Simulated time runs `speed` times faster: so must after-call work as the daemon sees it.
        wrapup = {name: q.spec.wrapup / args.speed for name, q in sim.model.queues.items()}
        daemon = Daemon(demo_config(port, db_url, wrapup))
        await daemon.start()
        try:
            await _wait_resynced(daemon)
            seen = await watch(daemon.config.bus.pub, daemon.config.bus.req, args.duration)
        finally:
            await daemon.stop()
            await sim.stop()
        cdrs = daemon.store.written
    print(f"demo finished: {seen} call events on the bus, {daemon.bus.seq} events in all, {cdrs} rows written")
    return 0

"""The wire-neutral half of a simulated PBX server: the virtual clock that drives a
`CallCenter`, the ticker that sends what happened, and the TCP server's life cycle.

A wire (`ctid.drivers.csta.sim`) subclasses `SimServer` and provides `flush()` (send
the renderer's output to its clients) and `_serve()` (one connection). The virtual
clock runs `speed` times faster than the wall clock and can be paused; the same seed
gives the same happenings however the clock is advanced. Both simulators (`ctid sim
asterisk`, `ctid sim csta`) are built on it, and share the command line below.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable

from ctid.sim.model import QueueSpec, SimConfig
from ctid.sim.traffic import CallCenter


#: A client this far behind is dropped, as Asterisk's writetimeout and a CSTA server do.
WRITE_LIMIT = 32 << 20


class SimClient:
    """One connection to a simulator: writes that never block the clock, and a client that
    does not read is dropped rather than buffered without end. Each wire adds its session."""

    wire = "simulator"

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.closed = False

    def write(self, data: bytes) -> None:
        if self.closed or not data:
            return
        if self.writer.transport.get_write_buffer_size() > WRITE_LIMIT:
            logging.getLogger(f"ctid.sim.{self.wire}").warning(f"dropping a {self.wire} client that does not read")
            self.close()
            return
        self.writer.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()


class SimServer(ABC):
    """Clock and server life cycle around `self.model`; subclasses render and serve."""

    def __init__(self, model: CallCenter, speed: float = 1.0, paused: bool = False) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.model = model
        self.speed = speed
        self.address: tuple[str, int] | None = None
        self._paused = paused
        self._vt = 0.0  # virtual time when the clock last (re)started
        self._t0 = 0.0
        self._server: asyncio.base_events.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._sessions: set[asyncio.Task[Any]] = set()

    @property
    def seed(self) -> int:
        return self.model.seed

    @property
    def idle(self) -> bool:
        """No call in progress and nothing scheduled (traffic off, or past `traffic_until`)."""
        return self.model.active_calls == 0 and self.model.next_time() is None

    # -- each wire provides ------------------------------------------------------------------

    @abstractmethod
    def flush(self) -> None:
        """Write what the model did since the last flush to the clients, in the wire's format."""

    @abstractmethod
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection: its session, its requests, until it goes."""

    @abstractmethod
    def close_clients(self) -> None:
        """Drop every client (the server is stopping, or a test cuts the link)."""

    # -- clock -----------------------------------------------------------------------------

    def clock(self) -> float:
        """The virtual time now."""
        if self._paused or self._server is None:
            return self._vt
        return self._vt + (asyncio.get_running_loop().time() - self._t0) * self.speed

    def pause(self) -> None:
        self._vt = self.clock()
        self._paused = True

    def resume(self) -> None:
        if self._paused:
            self._t0 = asyncio.get_running_loop().time()
            self._paused = False
            self._wake.set()

    def sync(self) -> None:
        """Bring the call center up to now and send what happened."""
        self.model.advance(self.clock())
        self.flush()

    def poke(self) -> None:
        """A request may have scheduled something sooner than the ticker thinks."""
        self._wake.set()

    async def _tick(self) -> None:
        while True:
            self.sync()
            nxt = self.model.next_time()
            delay = 1.0 if nxt is None or self._paused else max(0.0, (nxt - self.clock()) / self.speed)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), min(delay, 1.0))
            except asyncio.TimeoutError:
                pass

    # -- server ------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0, ssl: Any = None) -> tuple[str, int]:
        """Listen on (host, port) — port 0 picks a free one — and start the clock; returns the address."""
        self._server = await asyncio.start_server(self._session, host, port, ssl=ssl)
        self._t0 = asyncio.get_running_loop().time()
        self._ticker = asyncio.ensure_future(self._tick())
        sock = self._server.sockets[0].getsockname()
        self.address = (sock[0], sock[1])
        return self.address

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
            task.add_done_callback(self._sessions.discard)
        await self._serve(reader, writer)

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        self.close_clients()
        if self._sessions:  # their reads end at once on the closed transports
            await asyncio.wait(self._sessions, timeout=2.0)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait (real seconds) until `idle`; raises asyncio.TimeoutError."""
        async def idle() -> None:
            while not self.idle:
                await asyncio.sleep(0.02)
        await asyncio.wait_for(idle(), timeout)
        self.sync()


# -- the `ctid sim <wire>` command line, the same for every wire ----------------------------------


def queue_arg(text: str) -> QueueSpec:
    """`name[:strategy[:rate[:timeout]]]`, e.g. `sales:rrmemory:120` or `support:leastrecent:90:120`."""
    parts = text.split(":")
    spec = QueueSpec(parts[0])
    if len(parts) > 1 and parts[1]:
        spec.strategy = parts[1]
    if len(parts) > 2 and parts[2]:
        spec.rate = float(parts[2])
    if len(parts) > 3 and parts[3]:
        spec.timeout = float(parts[3])
    return spec


def add_arguments(parser: argparse.ArgumentParser, port: int, wire: str) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=port, help=f"{wire} port (default {port}; 0 picks a free one)")
    parser.add_argument("--secret", default=None, help="refuse logins without this secret (default: accept any)")
    parser.add_argument("--username", default=None, help="with --secret: the only username accepted")
    parser.add_argument("--seed", type=int, default=None, help="seed of the traffic (same seed, same calls)")
    parser.add_argument("--no-traffic", action="store_true", help="no calls by themselves: only what clients ask")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated time runs this many times faster (default 1)")
    parser.add_argument("--agents", type=int, default=8, help="number of agents (default 8)")
    parser.add_argument("--queues", nargs="+", type=queue_arg, default=None, metavar="NAME[:STRATEGY[:RATE[:TIMEOUT]]]",
                        help="queues (default: sales:rrmemory:120 support:leastrecent:90:90 vip:fewestcalls:60)")
    parser.add_argument("--config", default=None, help="a JSON call center (queues, agents, rates, behaviour)")
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds (default: run until Ctrl-C)")


def config_from_args(args: argparse.Namespace) -> SimConfig:
    if args.config:
        return SimConfig.from_dict(json.loads(Path(args.config).read_text(encoding="utf-8")))
    return SimConfig.default(agents=args.agents, queues=args.queues)


async def serve(build: Callable[[argparse.Namespace], SimServer], args: argparse.Namespace, name: str,
                what: str, label: str, extra: Callable[[SimServer], str] = lambda sim: "") -> int:
    """`ctid sim NAME`: build the simulator from the arguments, listen, run until --duration or Ctrl-C."""
    log = logging.getLogger(f"ctid.sim.{name}")
    try:
        sim = build(args)
    except (ValueError, OSError) as exc:  # a bad --queues/--config
        print(f"ctid sim {name}: {exc}", file=sys.stderr)
        return 2
    try:
        host, port = await sim.start(args.host, args.port)
    except OSError as exc:  # the port is taken
        print(f"ctid sim {name}: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    log.info(f"simulated {label} listening", extra={"ctx": {
        "host": host, "port": port, "seed": sim.seed, "speed": sim.speed, "traffic": sim.model.traffic,
        "queues": list(sim.model.queues), "agents": len(sim.model.agents)}})
    print(f"ctid sim {name}: {what} on {host}:{port} (seed {sim.seed}, speed {sim.speed:g}){extra(sim)}", flush=True)
    try:
        if args.duration is not None:
            await asyncio.sleep(args.duration)
        else:
            await asyncio.Event().wait()
    finally:
        await sim.stop()
    return 0

"""The daemon: drivers -> state -> bus and store, one straight path per event.

`Daemon.dispatch(event)` is the hot path every driver calls for every normalized
event: the state applies it (and completes call.cleared), the bus publishes it,
the store queues it for the batched writer thread. Nothing on it touches disk.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

from ctid.bus import Bus
from ctid.config import Config
from ctid.drivers import Driver, load
from ctid.metrics import Counters
from ctid.state import State
from ctid.store.writer import StoreWriter

log = logging.getLogger("ctid.daemon")


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.counters = Counters()
        self.state = State()
        self.bus = Bus(config.site, config.bus.pub, config.bus.req, self.counters, config.bus.hwm)
        self.store = StoreWriter(config.database.url, batch_size=config.database.batch_size,
                                 flush_interval=config.database.flush_interval)
        # Resolve every driver before anything starts: a bad kind never half-starts the daemon.
        self.drivers: list[Driver] = [load(d.kind)(d, self.dispatch, self.counters) for d in config.drivers]
        self._tasks: list[asyncio.Task] = []
        self._stopped = asyncio.Event()
        self.counters.gauge("store.written", lambda: self.store.written)
        self.counters.gauge("store.pending", lambda: self.store.pending)
        self.counters.gauge("store.errors", lambda: self.store.errors)
        self.counters.gauge("state.calls", lambda: len(self.state.calls))
        self.counters.gauge("state.agents", lambda: len(self.state.agents))
        self.counters.gauge("bus.seq", lambda: self.bus.seq)
        self.bus.register_op("snapshot", self._snapshot, "live calls, agents and queues with the seq they reflect")
        self.bus.register_op("stats", self._stats, "the daemon's counters")

    def dispatch(self, event: dict[str, Any]) -> None:
        """The hot path: state, then bus, then the store's queue."""
        self.state.apply(event)
        self.bus.publish(event)
        self.store.submit(event)

    # -- request ops -------------------------------------------------------------------

    def _snapshot(self, request: dict[str, Any]) -> dict[str, Any]:
        # State and seq are read in the same loop turn as publish(): they always agree.
        return {"seq": self.bus.seq, "epoch": self.bus.epoch, **self.state.snapshot(time.time())}

    def _stats(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.counters.snapshot()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self.store.start()
        self.bus.start()
        for driver in self.drivers:
            self._tasks.append(asyncio.ensure_future(self._run_driver(driver)))
        if self.config.log.stats_interval > 0:
            self._tasks.append(asyncio.ensure_future(self._log_stats(self.config.log.stats_interval)))
        log.info("ctid started", extra={"ctx": {"site": self.config.site, "drivers": ",".join(d.name for d in self.drivers),
                                                "database": _redact(self.config.database.url)}})

    async def _run_driver(self, driver: Driver) -> None:
        try:
            await driver.run()
        except Exception:
            # A driver bug must not take the other drivers and the bus down with it.
            self.counters.inc(f"driver.{driver.name}.crashes")
            log.exception("driver crashed", extra={"ctx": {"driver": driver.name}})

    async def _log_stats(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            log.info("stats", extra={"ctx": self.counters.snapshot()})

    async def stop(self) -> None:
        """Drain: stop drivers, flush the database, close the sockets."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        log.info("ctid stopping")
        await asyncio.gather(*(d.stop() for d in self.drivers), return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(None, self.store.close)
        await self.bus.close()
        log.info("ctid stopped", extra={"ctx": self.counters.snapshot()})

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


def _redact(url: str) -> str:
    """Database URLs may carry a password: never log it."""
    head, sep, tail = url.partition("://")
    if "@" in tail:
        creds, _, host = tail.rpartition("@")
        return f"{head}{sep}{creds.split(':', 1)[0]}:***@{host}"
    return url


async def serve(config: Config, ready: asyncio.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT; return the exit code."""
    daemon = Daemon(config)
    await daemon.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await daemon.stop()
    return 0


def run(config: Config) -> int:
    """Entry point for `ctid run`: asyncio on uvloop where available."""
    try:
        import uvloop

        return uvloop.run(serve(config))
    except ImportError:
        return asyncio.run(serve(config))

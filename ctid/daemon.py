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

from ctid.acd.service import RoutingService
from ctid.bus import Bus
from ctid.config import Config, ConfigError
from ctid.control import ControlService
from ctid.control.audit import AuditLog
from ctid.drivers import Driver, load
from ctid.metrics import Counters
from ctid.plugins import PluginContext, PluginHost, on_loop_thread
from ctid.security import bus_security
from ctid.state import State
from ctid.store import open_writer

log = logging.getLogger("ctid.daemon")

#: Seconds stop() waits for its tasks (drivers, stats) after cancelling them. A driver may lose its
#: cancellation (Python 3.11's wait_for drops it when the awaited thing completes at that
#: moment) or ignore it: the daemon still stops, and says which one it left behind.
TASK_STOP_TIMEOUT = 10.0


class Daemon:
    def __init__(self, config: Config, extra_plugins: dict[str, Any] | None = None) -> None:
        """`extra_plugins`: plugin objects by name, as if installed (for embedding and tests);
        they are used only when enabled in the config like any other."""
        self.config = config
        self.counters = Counters()
        self.state = State(service_levels={q.name: float(q.servicelevel or 20) for q in config.queues})
        self.security = bus_security(config, self.state, self.counters)  # None: plain, as the config says
        self.bus = Bus(config.site, config.bus.pub, config.bus.req, self.counters, config.bus.hwm, self.security)
        # Its own process (off this process's GIL) unless the database is in memory here.
        self.store = open_writer(config.database.url, batch_size=config.database.batch_size,
                                 flush_interval=config.database.flush_interval)
        # Resolve every driver before anything starts: a bad kind never half-starts the daemon.
        self.drivers: list[Driver] = [load(d.kind)(d, self.dispatch, self.counters) for d in config.drivers]
        pc = config.plugins
        self.plugins = PluginHost(pc.enabled, pc.options, self.counters, timeout=pc.timeout, max_failures=pc.max_failures,
                                  builtins=extra_plugins)
        self.plugins.load()  # a plugin that cannot be imported is logged and skipped
        errors = self.plugins.check_config()
        if errors:
            raise ConfigError(config.source, errors)
        self._tasks: list[asyncio.Task] = []
        self.task_stop_timeout = TASK_STOP_TIMEOUT
        self._stopped = asyncio.Event()
        self.counters.gauge("store.written", lambda: self.store.written)
        self.counters.gauge("store.pending", lambda: self.store.pending)
        self.counters.gauge("store.errors", lambda: self.store.errors)
        self.counters.gauge("store.restarts", lambda: self.store.restarts)
        self.counters.gauge("store.escalations", lambda: self.store.escalations)
        self.counters.gauge("state.calls", lambda: len(self.state.calls))
        self.counters.gauge("state.agents", lambda: len(self.state.agents))
        self.counters.gauge("bus.seq", lambda: self.bus.seq)
        self.bus.register_op("snapshot", self._snapshot, "live calls, agents and queues with the seq they reflect")
        self.bus.register_op("stats", self._stats, "the daemon's counters")
        self.bus.register_op("plugins", lambda request: self.plugins.status(), "enabled plugins: version, failures, disabled")
        # Call, agent and supervisor requests, each routed to the driver owning its call or agent.
        self.control = ControlService(self.drivers, self.state, self.counters)
        self.control.register(self.bus.register_op)
        self.audit = AuditLog(config.database.url)  # every control request, allowed or not, and its outcome
        self.control.observers.append(self.audit.record)
        self.control.observers.append(self._call_data_set)
        if self.security is not None:
            self.security.on_refused.append(self.audit.record)
        # ctid's own ACD ([routing]): follows every event, answers route points (docs/routing.md).
        self.routing = RoutingService(config.routing, self.dispatch, self.counters, self.plugins.route,
                                      self._agent_state, self.bus.register_op)
        if self.routing.engine is not None:  # drivers with route points of their own (CSTA) ask the engine
            for driver in self.drivers:
                attach = getattr(driver, "attach_routing", None)
                if attach is not None:
                    attach(self.routing.engine)

    def dispatch(self, event: dict[str, Any]) -> None:
        """The hot path: state, then bus, then the store's and the plugins' queues."""
        self.state.apply(event)
        body = self.bus.publish(event)
        self.store.submit(event, body)  # the bytes just published: the writer process decodes them
        self.plugins.dispatch(event)
        self.routing.observe(event)  # last: its own route.* events come after the one that caused them

    # -- request ops -------------------------------------------------------------------

    def _snapshot(self, request: dict[str, Any]) -> dict[str, Any]:
        # State and seq are read in the same loop turn as publish(): they always agree.
        return {"seq": self.bus.seq, "epoch": self.bus.epoch, **self.state.snapshot(time.time())}

    def _stats(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.counters.snapshot()

    def _call_data_set(self, request: dict[str, Any], outcome: str, detail: dict[str, Any]) -> None:
        """Call data the driver accepted becomes a `call.data` event: state keeps it with the
        call, so later events of the call and its CDR carry it, whatever the PBX does with it."""
        if outcome == "ok" and request.get("op") == "call.set_data":
            call = self.state.calls.get(request["call_id"])
            self.dispatch({"type": "call.data", "ts": time.time(), "source": call.source if call else "control",
                           "call_id": request["call_id"], "queue": call.queue if call else None,
                           "agent": call.agent if call else None, "data": dict(request["data"])})

    def _agent_state(self, agent: str) -> str | None:
        found = self.state.agents.get(agent)
        return found.state if found is not None else None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self.store.start()
        self.audit.start()
        self.bus.start()
        await self.plugins.start(self._plugin_context, self.bus.register_op)
        await self.routing.start()
        for driver in self.drivers:
            self._tasks.append(asyncio.create_task(self._run_driver(driver), name=f"driver {driver.name}"))
        if self.config.log.stats_interval > 0:
            self._tasks.append(asyncio.ensure_future(self._log_stats(self.config.log.stats_interval)))
        log.info("ctid started", extra={"ctx": {"site": self.config.site, "drivers": ",".join(d.name for d in self.drivers),
                                                "database": _redact(self.config.database.url)}})

    def _plugin_context(self, name: str, options: dict[str, Any]) -> PluginContext:
        publish = on_loop_thread(asyncio.get_running_loop(), self._publish_from_plugin(name))
        return PluginContext(name=name, options=options, site=self.config.site, database_url=self.config.database.url,
                             publish=publish, snapshot=lambda: self._snapshot({}), counters=self.counters,
                             log=logging.getLogger(f"ctid.plugin.{name}"),
                             service_levels={q.name: float(q.servicelevel) for q in self.config.queues if q.servicelevel},
                             teams=self.config.site_teams)

    def _publish_from_plugin(self, name: str):
        def publish(event: dict[str, Any]) -> None:
            event.setdefault("ts", time.time())
            event.setdefault("source", name)
            self.dispatch(event)

        return publish

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
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=self.task_stop_timeout)
            for task in stuck:
                self.counters.inc("daemon.stuck_tasks")
                log.error("task did not end when cancelled; stopping without it", extra={"ctx": {"task": task.get_name()}})
        await self.routing.stop()
        await self.plugins.stop()
        await asyncio.get_running_loop().run_in_executor(None, self.store.close)
        await self.audit.stop()
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

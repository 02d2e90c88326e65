"""The CSTA connection: connect (TLS optional), start an application session, monitor,
resync, keep the session alive, answer route requests, reconnect forever.

Bytes go to the frame parser (protocol.py), answers to the request that asked (matched
by invoke id), events to the mapper and the mapper's events to the sink — one straight
pass per read. A negative answer raises `CstaError` to whoever asked and is counted.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ctid.drivers.backoff import reconnect_forever
from ctid.drivers.csta import requests as rq
from ctid.drivers.csta.mapper import CstaMapper
from ctid.drivers.csta.protocol import EVENT_ID, CstaError, FrameParser, Message, as_list, encode, private_data
from ctid.drivers.csta.routing import DefaultRoute, RouteChooser
from ctid.metrics import Counters

log = logging.getLogger("ctid.driver.csta")

Sink = Callable[[dict[str, Any]], None]


class LinkError(Exception):
    """The request could not be answered: the link is down or the server did not answer in time."""


@dataclass
class LinkOptions:
    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    application_id: str = "ctid"
    stations: tuple[str, ...] = ()  # agent extensions: monitored, agent state and snapshot at resync
    acd_devices: tuple[str, ...] = ()  # splits / skills / VDNs: monitored, snapshot at resync
    route_devices: tuple[str, ...] = ()  # routing devices registered for RouteRequest
    tls: bool = False
    ca_file: str | None = None
    session_duration: int = 180
    keepalive: float | None = None  # default: a third of the session duration
    connect_timeout: float = 5.0
    request_timeout: float = 5.0
    resync_timeout: float = 10.0
    backoff_min: float = 0.5
    backoff_max: float = 30.0
    read_size: int = 256 * 1024


class CstaLink:
    def __init__(self, name: str, options: LinkOptions, mapper: CstaMapper, sink: Sink, counters: Counters,
                 router: RouteChooser | None = None) -> None:
        self.name = name
        self.opts = options
        self.mapper = mapper
        self.sink = sink
        self.counters = counters
        self.router: RouteChooser = router or DefaultRoute()
        self.connected = asyncio.Event()
        self.session_id: str | None = None
        self.monitors: dict[str, str] = {}  # monitorCrossRefID -> device
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[str, tuple[str, asyncio.Future[Message]]] = {}
        self._next = 0
        self._stopping = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._routes: dict[str, asyncio.Task[Any]] = {}  # routingCrossRefID -> the task answering it
        self._prefix = f"driver.{name}."

    # -- public ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and serve until stop(); reconnect with exponential backoff, forever."""
        await reconnect_forever(
            self._session, stopping=lambda: self._stopping,
            errors=(OSError, asyncio.TimeoutError, ConnectionError, CstaError, LinkError),
            on_down=self._down, on_retry=lambda: self.counters.inc(self._prefix + "reconnects"),
            backoff_min=self.opts.backoff_min, backoff_max=self.opts.backoff_max)

    async def stop(self) -> None:
        self._stopping = True
        if self._writer is not None and self.session_id is not None:
            try:  # say goodbye: the server frees the session and its monitors at once
                await self.request(rq.stop_session(self.session_id), timeout=1.0)
            except (CstaError, LinkError, OSError):
                pass
        if self._writer is not None:
            self._writer.close()

    async def request(self, req: rq.Request, timeout: float | None = None) -> dict[str, Any]:
        """Send one request; return the body of its positive answer, raise CstaError on a
        negative one (counted, logged) and LinkError when the link is down or silent."""
        name, fields, namespace = req
        if self._writer is None:
            raise LinkError(f"{self.name}: not connected to the CSTA server")
        invoke = self._invoke_id()
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[invoke] = (name, future)
        self._writer.write(encode(name, fields, invoke, namespace))
        try:
            answer = await asyncio.wait_for(future, timeout or self.opts.request_timeout)
        except asyncio.TimeoutError:
            self._pending.pop(invoke, None)
            raise LinkError(f"{name}: no answer within {timeout or self.opts.request_timeout:g}s") from None
        try:
            return rq.check_answer(name, answer)
        except CstaError as exc:
            self.counters.inc(self._prefix + "negative_acks")
            log.warning("CSTA request refused", extra={"ctx": {"driver": self.name, "request": name,
                                                               "category": exc.category, "code": exc.code}})
            raise

    # -- session ---------------------------------------------------------------------------

    def _invoke_id(self) -> str:
        for _ in range(9998):
            self._next = self._next % 9998 + 1  # 0001..9998; 9999 is the events'
            invoke = f"{self._next:04d}"
            if invoke not in self._pending:
                return invoke
        raise LinkError("9998 requests waiting for an answer")

    def _down(self, exc: BaseException) -> None:
        was_up = self.connected.is_set()
        self.connected.clear()
        self.session_id = None
        self.monitors.clear()
        for _, future in self._pending.values():
            if not future.done():
                future.set_exception(LinkError(f"link lost: {exc}"))
        self._pending.clear()
        log.warning("PBX link down", extra={"ctx": {"driver": self.name, "host": self.opts.host,
                                                    "port": self.opts.port, "reason": str(exc) or type(exc).__name__}})
        if was_up:
            self.sink({"type": "system.driver_down", "ts": time.time(), "source": self.name,
                       "reason": str(exc) or type(exc).__name__})

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.opts.tls and not self.opts.ca_file:
            return None
        return ssl.create_default_context(cafile=self.opts.ca_file)

    async def _session(self) -> None:
        opts = self.opts
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(opts.host, opts.port, ssl=self._ssl()), opts.connect_timeout)
        if self._stopping:  # stop() came while connecting: see the Asterisk link's _session
            writer.close()
            return
        self._writer = writer
        read_task = asyncio.ensure_future(self._read(reader, FrameParser()))
        tasks: list[asyncio.Task[Any]] = [read_task]
        try:
            start = asyncio.ensure_future(self.request(rq.start_session(opts.application_id, opts.username, opts.secret,
                                                                        opts.session_duration)))
            done, _ = await asyncio.wait({start, read_task}, return_when=asyncio.FIRST_COMPLETED)
            if read_task in done:
                start.cancel()
                read_task.result()
            body = start.result()  # CstaError: refused (wrong credentials): backoff applies
            self.session_id = str(body.get("sessionID") or "")
            duration = int(body.get("actualSessionDuration") or opts.session_duration)
            self.connected.set()
            log.info("PBX link up", extra={"ctx": {"driver": self.name, "host": opts.host, "port": opts.port,
                                                   "session": self.session_id, "duration": duration}})
            self.sink({"type": "system.driver_up", "ts": time.time(), "source": self.name,
                       "session": self.session_id})
            tasks += [asyncio.ensure_future(self._start()), asyncio.ensure_future(self._keepalive(duration))]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            raise ConnectionError("PBX link closed")
        finally:
            for task in tasks + list(self._tasks):
                task.cancel()
            await asyncio.gather(*tasks, *self._tasks, return_exceptions=True)
            writer.close()
            self._writer = None

    async def _start(self) -> None:
        """Monitor every configured device, register the routing devices, then resync."""
        for dev in (*self.opts.stations, *self.opts.acd_devices):
            try:
                body = await self.request(rq.monitor_start(dev))
            except CstaError as exc:  # one bad device id does not cost the others their monitor
                self.counters.inc(self._prefix + "monitor_failures")
                log.warning("cannot monitor device", extra={"ctx": {"driver": self.name, "device": dev,
                                                                    "error": str(exc)}})
                continue
            self.monitors[str(body.get("monitorCrossRefID"))] = dev
        self.route_ids: dict[str, str] = {}
        for dev in self.opts.route_devices:
            try:
                body = await self.request(rq.route_register(dev))
                self.route_ids[str(body.get("routeRegisterReqID"))] = dev
            except CstaError:
                self.counters.inc(self._prefix + "route_register_failures")
        await self._resync()

    async def _resync(self) -> None:
        """Agent states and the calls at each device, then `system.resynced`."""
        t = self.opts.resync_timeout
        agents: dict[str, list[tuple[str, ...]]] = {}
        calls: dict[str, list[tuple[str, str]]] = {}
        monitored = set(self.monitors.values())
        try:
            for dev in self.opts.stations:
                if dev in monitored:
                    agents[dev] = _agent_states(await self.request(rq.get_agent_state(dev), t), dev)
            for dev in (*self.opts.stations, *self.opts.acd_devices):
                if dev in monitored:
                    calls[dev] = _snapshot_calls(await self.request(rq.snapshot_device(dev), t))
        except (CstaError, LinkError) as exc:
            self.counters.inc(self._prefix + "resync_failures")
            log.warning("resync failed; going on with live events", extra={"ctx": {"driver": self.name,
                                                                                    "reason": str(exc)}})
            return
        for event in self.mapper.resync(agents, calls, time.time()):  # type: ignore[arg-type]
            self.sink(event)
        self.counters.inc(self._prefix + "resyncs")
        log.info("resynced", extra={"ctx": {"driver": self.name, "devices": len(calls),
                                            "calls": sum(map(len, calls.values()))}})

    async def _keepalive(self, duration: int) -> None:
        interval = self.opts.keepalive or duration / 3.0  # well inside the session's life
        while True:
            await asyncio.sleep(interval)
            try:
                await self.request(rq.reset_session_timer(self.session_id or "", duration), timeout=interval / 2)
            except (CstaError, LinkError) as exc:
                raise ConnectionError(f"keep-alive failed: {exc}") from None

    async def _read(self, reader: asyncio.StreamReader, parser: FrameParser) -> None:
        c, p = self.counters, self._prefix
        handle, sink, pending = self.mapper.handle, self.sink, self._pending
        size = self.opts.read_size
        while True:
            data = await reader.read(size)
            if not data:
                if parser.pending:
                    c.inc(p + "parse_errors")
                    log.warning("bad CSTA input", extra={"ctx": {"driver": self.name, "reason": "truncated frame",
                                                                 "bytes": parser.pending}})
                raise ConnectionError("PBX closed the connection")
            ts = time.time()
            before = parser.frames
            messages = parser.feed(data)
            c.inc(p + "frames_in", parser.frames - before)
            events_out = 0
            for message in messages:
                if message.invoke_id != EVENT_ID:
                    waiting = pending.pop(message.invoke_id, None)
                    if waiting is not None and not waiting[1].done():
                        waiting[1].set_result(message)
                    else:
                        c.inc(p + "unexpected_responses")
                    continue
                if message.name == "RouteEnd":  # the server gave up on a route request: so do we
                    task = self._routes.pop(str(message.body.get("routingCrossRefID")), None)
                    if task is not None:
                        task.cancel()
                for event in handle(message, ts):
                    if event["type"] == "route.request":
                        cross_ref = str((event.get("x") or {}).get("cross_ref"))
                        self._routes[cross_ref] = self._spawn(self._route(event))
                        if self.router.publishes:
                            continue  # the routing engine tells it itself
                    sink(event)
                    events_out += 1
            c.inc(p + "events_out", events_out)
            if parser.errors:
                for reason, context in parser.take_errors():
                    c.inc(p + "parse_errors")
                    log.warning("bad CSTA input", extra={"ctx": {"driver": self.name, "reason": reason,
                                                                 "bytes": context[:80]}})
                parser.errors = 0
            if parser.broken is not None:  # the stream cannot be trusted past this point
                raise ConnectionError(f"CSTA framing lost: {parser.broken}")

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _route(self, event: dict[str, Any]) -> None:
        x = event.get("x") or {}
        try:
            target = await self.router.choose(event)
            if target is None:
                return
            await self.request(rq.route_select(str(x.get("register_id") or ""), str(x.get("cross_ref") or ""), target))
        except (CstaError, LinkError) as exc:
            self.counters.inc(self._prefix + "route_failures")
            log.warning("route select failed", extra={"ctx": {"driver": self.name, "error": str(exc)}})
            return
        finally:
            self._routes.pop(str(x.get("cross_ref")), None)
        self.counters.inc(self._prefix + "routes")
        if self.router.publishes:
            return
        self.sink({"type": "route.selected", "ts": time.time(), "source": self.name, "call_id": event.get("call_id"),
                   "queue": event.get("queue"), "agent": None, "device": target, "strategy": self.router.name,
                   "reason": "configured route"})


def _agent_states(body: dict[str, Any], dev: str) -> list[tuple[str, ...]]:
    """GetAgentStateResponse -> [(agent id, acdGroup, ready|notReady|..., reason code)]."""
    out: list[tuple[str, ...]] = []
    code = private_data(body).get("ReasonCode")
    entries = (body.get("agentStateList") or {}) if isinstance(body.get("agentStateList"), dict) else {}
    for entry in as_list(entries.get("agentStateEntry")):
        if not isinstance(entry, dict) or entry.get("loggedOnState") != "true":
            continue
        info = entry.get("agentInfo") if isinstance(entry.get("agentInfo"), dict) else {}
        for item in as_list(info.get("agentInfoItem")):
            state = "notReady" if item.get("agentState") == "agentNotReady" else "ready"
            out.append((str(entry.get("agentID") or dev), str(item.get("acdGroup")), state, code or ""))
    return out


def _snapshot_calls(body: dict[str, Any]) -> list[tuple[str, str]]:
    """SnapshotDeviceResponse -> [(callID, local connection state)]."""
    data = (body.get("crossRefIDorSnapshotData") or {})
    snap = data.get("snapshotData") if isinstance(data, dict) else None
    out = []
    for info in as_list(snap.get("snapshotDeviceResponseInfo") if isinstance(snap, dict) else None):
        conn = info.get("connectionIdentifier") or {}
        state = ((info.get("localCallState") or {}).get("compoundCallState") or {}).get("localConnectionState")
        if conn.get("callID"):
            out.append((str(conn["callID"]), str(state or "")))
    return out

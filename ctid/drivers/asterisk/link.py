"""The AMI connection: connect, login, read, keep-alive, reconnect forever, resync.

Bytes go to the frame parser (protocol.py), responses to the action that asked
(matched by ActionID), events to the mapper, and the mapper's events to the sink
— one straight pass per read, no callbacks back up the chain.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ctid.drivers.asterisk.mapper import AsteriskMapper
from ctid.drivers.asterisk.protocol import DRIVER_DROP, FrameParser, encode_action
from ctid.drivers.backoff import reconnect_forever
from ctid.metrics import Counters

log = logging.getLogger("ctid.driver.asterisk")

Sink = Callable[[dict[str, Any]], None]


class ActionError(Exception):
    """The PBX answered `Response: Error` (message attached) or did not answer in time."""


class ActionTimeout(ActionError):
    """The PBX did not answer the action in time (it may still act on it)."""


class LinkDown(ActionError):
    """No link to the PBX: not connected, or the link was lost while the action waited."""


@dataclass
class LinkOptions:
    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    connect_timeout: float = 5.0
    login_timeout: float = 5.0
    resync_timeout: float = 10.0
    ping_interval: float = 20.0
    backoff_min: float = 0.5
    backoff_max: float = 30.0
    read_size: int = 256 * 1024


@dataclass
class _Pending:
    future: asyncio.Future
    listing: bool
    response: dict[str, str] | None = None
    items: list[dict[str, str]] = field(default_factory=list)


class AmiLink:
    def __init__(self, name: str, options: LinkOptions, mapper: AsteriskMapper, sink: Sink, counters: Counters) -> None:
        self.name = name
        self.opts = options
        self.mapper = mapper
        self.sink = sink
        self.counters = counters
        self.connected = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[str, _Pending] = {}
        self._login: asyncio.Future | None = None
        self._ids = itertools.count(1)
        self._stopping = False
        self._prefix = f"driver.{name}."

    # -- public ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and serve until stop(); reconnect with exponential backoff, forever."""
        await reconnect_forever(
            self._session, stopping=lambda: self._stopping,
            errors=(OSError, asyncio.TimeoutError, ConnectionError, ActionError),
            on_down=self._down, on_retry=lambda: self.counters.inc(self._prefix + "reconnects"),
            backoff_min=self.opts.backoff_min, backoff_max=self.opts.backoff_max)

    async def stop(self) -> None:
        self._stopping = True
        if self._writer is not None:
            try:
                self._writer.write(encode_action("Logoff", action_id=self._next_id()))
            except (OSError, RuntimeError):
                pass
            self._writer.close()

    async def action(self, name: str, fields: dict[str, Any] | None = None, timeout: float = 5.0) -> dict[str, str]:
        """Send one action; return its response, or raise ActionError with the PBX's message."""
        response, _ = await self._send(name, fields, timeout, listing=False)
        return response

    async def list_action(self, name: str, fields: dict[str, Any] | None = None, timeout: float = 10.0) -> tuple[dict[str, str], list[dict[str, str]]]:
        """An action answered by a list (`EventList: start` ... `...Complete`): response and items."""
        return await self._send(name, fields, timeout, listing=True)

    # -- session ---------------------------------------------------------------------------

    def _next_id(self) -> str:
        return f"ctid-{self.name}-{next(self._ids)}"

    def _down(self, exc: BaseException) -> None:
        was_up = self.connected.is_set()
        self.connected.clear()
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(LinkDown(f"link lost: {exc}"))
        self._pending.clear()
        log.warning("PBX link down", extra={"ctx": {"driver": self.name, "host": self.opts.host, "port": self.opts.port, "reason": str(exc) or type(exc).__name__}})
        if was_up:
            self.sink({"type": "system.driver_down", "ts": time.time(), "source": self.name, "reason": str(exc) or type(exc).__name__})

    async def _session(self) -> None:
        opts = self.opts
        reader, writer = await asyncio.wait_for(asyncio.open_connection(opts.host, opts.port), opts.connect_timeout)
        if self._stopping:
            # stop() came while connecting (it had no writer to close), and its cancellation may
            # be lost: Python 3.11's wait_for returns the connection when the cancel comes as it
            # completes. Without this the session would log in and serve until the PBX hangs up.
            writer.close()
            return
        self._writer = writer
        parser = FrameParser(drop=DRIVER_DROP)
        loop = asyncio.get_running_loop()
        self._login = loop.create_future()
        read_task = asyncio.ensure_future(self._read(reader, parser))
        tasks = [read_task]
        try:
            writer.write(encode_action("Login", {"Username": opts.username, "Secret": opts.secret, "Events": "on"}, self._next_id()))
            done, _ = await asyncio.wait({self._login, read_task}, timeout=opts.login_timeout, return_when=asyncio.FIRST_COMPLETED)
            if read_task in done:
                read_task.result()  # raises why the link closed
            if self._login not in done:
                raise ActionError(f"no answer to Login within {opts.login_timeout:g}s")
            response = self._login.result()
            if response.get("Response") != "Success":
                # Wrong credentials do not get better by retrying fast: backoff applies.
                raise ActionError(f"login refused: {response.get('Message', response.get('Response'))}")
            self.connected.set()
            log.info("PBX link up", extra={"ctx": {"driver": self.name, "host": opts.host, "port": opts.port, "banner": parser.banner}})
            self.sink({"type": "system.driver_up", "ts": time.time(), "source": self.name, "banner": parser.banner})
            tasks += [asyncio.ensure_future(self._resync()), asyncio.ensure_future(self._keepalive())]
            # Resync returns when done; the reader and the keep-alive only end by raising.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            raise ConnectionError("PBX link closed")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            writer.close()
            self._writer = None

    async def _read(self, reader: asyncio.StreamReader, parser: Any) -> None:
        c, p = self.counters, self._prefix
        handle, sink, pending = self.mapper.handle, self.sink, self._pending
        size = self.opts.read_size
        while True:
            data = await reader.read(size)
            if not data:
                raise ConnectionError("PBX closed the connection")
            ts = time.time()
            before, dropped = parser.frames, parser.dropped
            frames = parser.feed(data)
            c.inc(p + "frames_in", parser.frames - before)
            c.inc(p + "noise_dropped", parser.dropped - dropped)
            events_out = 0
            for frame in frames:
                action_id = frame.get("ActionID")
                if action_id is not None and action_id in pending:
                    self._route(action_id, frame)
                elif "Response" in frame:
                    if self._login is not None and not self._login.done():
                        self._login.set_result(frame)  # before login the PBX says nothing else
                    else:
                        c.inc(p + "unexpected_responses")
                else:
                    for event in handle(frame, ts):
                        sink(event)
                        events_out += 1
            c.inc(p + "events_out", events_out)
            if parser.errors:
                self._log_parse_errors(parser)

    def _log_parse_errors(self, parser: Any) -> None:
        for reason, context in parser.take_errors():
            self.counters.inc(self._prefix + "parse_errors")
            log.warning("bad AMI input", extra={"ctx": {"driver": self.name, "reason": reason, "bytes": context[:80]}})
        parser.errors = 0

    def _route(self, action_id: str, frame: dict[str, str]) -> None:
        pending = self._pending[action_id]
        if "Response" in frame:
            pending.response = frame
            if frame["Response"] != "Success" or not pending.listing or frame.get("EventList") != "start":
                del self._pending[action_id]
                if frame["Response"] == "Error":
                    pending.future.set_exception(ActionError(frame.get("Message", "error")))
                else:
                    pending.future.set_result((frame, pending.items))
        elif frame.get("EventList") == "Complete":
            del self._pending[action_id]
            pending.future.set_result((pending.response or {}, pending.items))
        else:
            pending.items.append(frame)

    async def _send(self, name: str, fields: dict[str, Any] | None, timeout: float, listing: bool) -> tuple[dict[str, str], list[dict[str, str]]]:
        if self._writer is None or not self.connected.is_set():
            raise LinkDown(f"{self.name}: not connected to the PBX")
        action_id = self._next_id()
        future = asyncio.get_running_loop().create_future()
        self._pending[action_id] = _Pending(future, listing)
        self._writer.write(encode_action(name, fields, action_id))
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            self._pending.pop(action_id, None)
            raise ActionTimeout(f"{name}: no answer within {timeout:g}s") from None

    async def _resync(self) -> None:
        """Rebuild state from the PBX; calls that ended while we were away are closed."""
        try:
            (_, queue_items), (_, channels) = await asyncio.gather(
                self.list_action("QueueStatus", timeout=self.opts.resync_timeout),
                self.list_action("CoreShowChannels", timeout=self.opts.resync_timeout),
            )
        except ActionError as exc:
            self.counters.inc(self._prefix + "resync_failures")
            log.warning("resync failed; going on with live events", extra={"ctx": {"driver": self.name, "reason": str(exc)}})
            return
        members = [i for i in queue_items if i.get("Event") == "QueueMember"]
        entries = [i for i in queue_items if i.get("Event") == "QueueEntry"]
        for event in self.mapper.resync(channels, members, entries, time.time()):
            self.sink(event)
        self.counters.inc(self._prefix + "resyncs")
        log.info("resynced", extra={"ctx": {"driver": self.name, "channels": len(channels), "members": len(members), "waiting": len(entries)}})

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.opts.ping_interval)
            try:
                await self.action("Ping", timeout=self.opts.ping_interval / 2)
            except ActionError as exc:
                raise ConnectionError(f"keep-alive failed: {exc}") from None

"""The ZeroMQ bus: events out on XPUB, requests in on ROUTER. Mirrored by docs/protocol.md.

Events: two frames, the UTF-8 topic (see `ctid.events.topic_for`) then a msgpack
map. `seq` grows by exactly 1 per published event within an `epoch` (one daemon
run), so a subscriber detects gaps and restarts.

Requests: a msgpack map `{"op": str, "id": any?, ...}` from a DEALER (one frame)
or REQ (empty delimiter + one frame) socket. Every request gets exactly one reply
`{"ok": true, "result": ..., "id": ...}` or `{"ok": false, "error": {"code", "message"}, "id": ...}`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
from typing import Any, Awaitable, Callable

import msgpack
import zmq
import zmq.asyncio

from ctid.events import PROTOCOL_VERSION, topic_for
from ctid.metrics import Counters

log = logging.getLogger("ctid.bus")

Handler = Callable[[dict[str, Any]], Any]
MAX_REQUEST = 1 << 20  # bytes; larger requests are refused by ZeroMQ itself
REQUEST_TIMEOUT = 10.0  # seconds an async op may take before a `timeout` error reply


class RequestError(Exception):
    """Raised by an op handler to answer a clear error (`code`, `message`) to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Bus:
    def __init__(self, site: str, pub: str, req: str, counters: Counters, hwm: int = 100_000) -> None:
        self.site = site
        self.pub_endpoint = pub
        self.req_endpoint = req
        self.counters = counters
        self.hwm = hwm
        # Epoch: changes at every daemon start, so a client knows seq restarted.
        self.epoch = int(time.time() * 1000) ^ (os.getpid() & 0xFFFF)
        self.seq = 0
        self._ops: dict[str, tuple[Handler, str]] = {}
        self._ctx = zmq.Context()
        self._actx = zmq.asyncio.Context.shadow(self._ctx)
        self._pub: zmq.Socket | None = None
        self._router: zmq.asyncio.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._tasks: set[asyncio.Task] = set()
        self._subscribers = 0
        self._pack = msgpack.Packer().pack
        self.register_op("ping", lambda req: {"pong": True, "epoch": self.epoch, "seq": self.seq}, "liveness check")
        self.register_op("ops", lambda req: {name: doc for name, (_, doc) in sorted(self._ops.items())}, "list request ops")

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Bind both sockets (raises zmq.ZMQError with the endpoint if one is taken)."""
        pub = self._ctx.socket(zmq.XPUB)
        pub.setsockopt(zmq.SNDHWM, self.hwm)
        pub.setsockopt(zmq.LINGER, 1000)
        pub.setsockopt(zmq.XPUB_VERBOSE, 1)
        self._monitor = pub.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)
        pub.bind(self.pub_endpoint)
        router = self._actx.socket(zmq.ROUTER)
        router.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST)
        router.setsockopt(zmq.LINGER, 1000)
        router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        router.bind(self.req_endpoint)
        self._pub, self._router = pub, router
        self._spawn(self._serve_requests())
        self._spawn(self._watch_subscribers())
        log.info("bus bound", extra={"ctx": {"pub": self.pub_endpoint, "req": self.req_endpoint, "epoch": self.epoch}})

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for sock in (self._monitor, self._router, self._pub):
            if sock is not None:
                sock.close(linger=500)
        self._ctx.term()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- events ----------------------------------------------------------------------------

    def publish(self, event: dict[str, Any]) -> None:
        """Stamp the envelope and send. Never blocks: a slow subscriber loses messages at its HWM."""
        self.seq += 1
        event["v"] = PROTOCOL_VERSION
        event["seq"] = self.seq
        event["epoch"] = self.epoch
        event["site"] = self.site
        topic = topic_for(event)
        pub = self._pub
        assert pub is not None, "Bus.start() first"
        # Two send() calls with SNDMORE are 2-3x cheaper than send_multipart.
        pub.send(topic.encode(), zmq.SNDMORE)
        pub.send(self._pack(event))

    # -- requests --------------------------------------------------------------------------

    def register_op(self, name: str, handler: Handler, doc: str = "") -> None:
        """Add a request op. The handler gets the request map and returns the result
        (or an awaitable of it); it raises RequestError for a clear error reply."""
        if name in self._ops:
            raise ValueError(f"request op {name!r} is registered twice")
        self._ops[name] = (handler, doc)

    async def _serve_requests(self) -> None:
        router = self._router
        assert router is not None
        while True:
            frames = await router.recv_multipart()
            self.counters.inc("bus.requests")
            if len(frames) == 3 and frames[1] == b"":
                envelope, body = frames[:2], frames[2]
            elif len(frames) == 2:
                envelope, body = frames[:1], frames[1]
            else:
                self.counters.inc("bus.bad_requests")
                log.warning("request with unexpected framing", extra={"ctx": {"frames": len(frames)}})
                await router.send_multipart([frames[0], self._pack(self._error(None, "bad_request", f"expected 1 body frame, got {len(frames) - 1}"))])
                continue
            reply = self._dispatch(body)
            if inspect.isawaitable(reply):
                self._spawn(self._reply_later(envelope, reply))
            else:
                await router.send_multipart([*envelope, self._pack(reply)])

    async def _reply_later(self, envelope: list[bytes], pending: Awaitable[dict[str, Any]]) -> None:
        reply = await pending
        assert self._router is not None
        await self._router.send_multipart([*envelope, self._pack(reply)])

    def _error(self, req_id: Any, code: str, message: str) -> dict[str, Any]:
        return {"ok": False, "error": {"code": code, "message": message}, "id": req_id}

    def _dispatch(self, body: bytes) -> dict[str, Any] | Awaitable[dict[str, Any]]:
        try:
            request = msgpack.unpackb(body, raw=False, strict_map_key=True)
        except Exception as exc:  # msgpack raises several types for garbage
            self.counters.inc("bus.bad_requests")
            log.warning("request is not msgpack", extra={"ctx": {"error": repr(exc), "bytes": len(body)}})
            return self._error(None, "bad_request", f"body is not a msgpack map: {exc}")
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            self.counters.inc("bus.bad_requests")
            return self._error(request.get("id") if isinstance(request, dict) else None, "bad_request",
                               "a request is a msgpack map with a string 'op'")
        req_id = request.get("id")
        entry = self._ops.get(request["op"])
        if entry is None:
            self.counters.inc("bus.bad_requests")
            return self._error(req_id, "unknown_op", f"unknown op {request['op']!r}; send {{'op': 'ops'}} for the list")
        try:
            result = entry[0](request)
        except RequestError as exc:
            return self._error(req_id, exc.code, exc.message)
        except Exception as exc:
            self.counters.inc("bus.op_errors")
            log.exception("request op failed", extra={"ctx": {"op": request["op"]}})
            return self._error(req_id, "internal", f"{request['op']} failed: {exc!r}")
        if inspect.isawaitable(result):
            return self._await_op(request["op"], req_id, result)
        return {"ok": True, "result": result, "id": req_id}

    async def _await_op(self, op: str, req_id: Any, result: Awaitable[Any]) -> dict[str, Any]:
        try:
            value = await asyncio.wait_for(result, REQUEST_TIMEOUT)
        except RequestError as exc:
            return self._error(req_id, exc.code, exc.message)
        except asyncio.TimeoutError:
            return self._error(req_id, "timeout", f"{op} did not finish within {REQUEST_TIMEOUT:g}s")
        except Exception as exc:
            self.counters.inc("bus.op_errors")
            log.exception("request op failed", extra={"ctx": {"op": op}})
            return self._error(req_id, "internal", f"{op} failed: {exc!r}")
        return {"ok": True, "result": value, "id": req_id}

    # -- subscribers -----------------------------------------------------------------------

    async def _watch_subscribers(self) -> None:
        """Drain XPUB subscription messages and the socket monitor for the counters."""
        from zmq.utils.monitor import parse_monitor_message

        while True:
            await asyncio.sleep(0.2)
            try:
                while True:
                    msg = self._pub.recv(zmq.NOBLOCK)  # type: ignore[union-attr]
                    self.counters.inc("bus.subscribe" if msg[:1] == b"\x01" else "bus.unsubscribe")
            except zmq.Again:
                pass
            try:
                while True:
                    event = parse_monitor_message(self._monitor.recv_multipart(zmq.NOBLOCK))  # type: ignore[union-attr]
                    self._subscribers += 1 if event["event"] == zmq.EVENT_ACCEPTED else -1
            except zmq.Again:
                pass
            self.counters.set("bus.subscribers", self._subscribers)

"""The ZeroMQ bus: events out on XPUB, requests in on ROUTER. Mirrored by docs/protocol.md.

Events: two frames, the UTF-8 topic (see `ctid.events.topic_for`) then a msgpack
map. `seq` grows by exactly 1 per published event within an `epoch` (one daemon
run), so a subscriber detects gaps and restarts.

Requests: a msgpack map `{"op": str, "id": any?, ...}` from a DEALER (one frame)
or REQ (empty delimiter + one frame) socket. Every request gets exactly one reply
`{"ok": true, "result": ..., "id": ...}` or `{"ok": false, "error": {"code", "message"}, "id": ...}`.

Security (`security`, a `ctid.security.BusSecurity`): both sockets are CURVE servers and
only known client keys get through the handshake; the XPUB runs in manual mode so each
subscription is accepted or refused for the client that sent it, and each request is
authorized for its sender (the message's `User-Id`, set by the ZAP handler) before its op
runs; the op sees the sender as `current_client`. Without it the bus is plain (loopback only,
see `ctid.config`) and every client is trusted.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import msgpack
import zmq
import zmq.asyncio

from ctid.events import PROTOCOL_VERSION, topic_for
from ctid.metrics import Counters

if TYPE_CHECKING:
    from ctid.security.guard import BusSecurity

log = logging.getLogger("ctid.bus")

#: The principal (`ctid.security.roles.Principal`) whose request is being served; None on a plain bus.
current_client: contextvars.ContextVar[Any] = contextvars.ContextVar("ctid_client", default=None)
MAX_SUBSCRIPTION = 4096  # bytes; a secure bus refuses longer subscription messages outright

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
    def __init__(self, site: str, pub: str, req: str, counters: Counters, hwm: int = 100_000,
                 security: BusSecurity | None = None) -> None:
        self.site = site
        self.security = security
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
        if self.security is not None:
            self.security.start(self._ctx)
            self.security.on_revoked.append(lambda keys: self._spawn(self._reopen_pub()))
        self._open_pub()
        router = self._actx.socket(zmq.ROUTER)
        router.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST)
        router.setsockopt(zmq.LINGER, 1000)
        router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        if self.security is not None:
            self.security.secure(router)
        router.bind(self.req_endpoint)
        self._router = router
        self._spawn(self._serve_requests())
        self._spawn(self._watch_subscribers())
        log.info("bus bound", extra={"ctx": {"pub": self.pub_endpoint, "req": self.req_endpoint, "epoch": self.epoch,
                                             "security": "curve" if self.security else "plain"}})

    def _open_pub(self) -> None:
        pub = self._ctx.socket(zmq.XPUB)
        pub.setsockopt(zmq.SNDHWM, self.hwm)
        pub.setsockopt(zmq.LINGER, 1000)
        pub.setsockopt(zmq.XPUB_VERBOSE, 1)
        if self.security is not None:
            self.security.secure(pub)
            pub.setsockopt(zmq.MAXMSGSIZE, MAX_SUBSCRIPTION)
            pub.setsockopt(zmq.XPUB_MANUAL, 1)  # every subscription is decided by `_subscription`
        self._monitor = pub.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)
        pub.bind(self.pub_endpoint)
        self._pub = pub

    async def _reopen_pub(self) -> None:
        """Cut every event connection (a key was revoked): unbind and bind again. The other
        clients reconnect and their SUB sockets send their subscriptions again, through a fresh
        handshake that the revoked key no longer passes. (Same socket: a new one would not get
        the re-sent subscriptions.)"""
        pub = self._pub
        assert pub is not None
        pub.unbind(self.pub_endpoint)
        for attempt in range(50):  # the port is free once ZeroMQ's I/O thread closed the listener
            try:
                pub.bind(self.pub_endpoint)
                break
            except zmq.ZMQError as exc:
                if attempt == 49:
                    log.error("cannot re-open the event socket", extra={"ctx": {"pub": self.pub_endpoint, "error": str(exc)}})
                    raise
                await asyncio.sleep(0.02)
        self.counters.inc("bus.reopened")
        log.warning("event connections cut after a key revocation", extra={"ctx": {"pub": self.pub_endpoint}})

    async def close(self) -> None:
        if self.security is not None:
            self.security.stop()
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

    def publish(self, event: dict[str, Any]) -> bytes:
        """Stamp the envelope and send. Never blocks: a slow subscriber loses messages at its HWM.

        Returns the msgpack body sent, for the store writer (encoded once, used twice)."""
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
        body = self._pack(event)
        pub.send(body)
        return body

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
        security = self.security
        while True:
            who = None
            if security is None:
                frames = await router.recv_multipart()
            else:
                parts = await router.recv_multipart(copy=False)
                user_id = parts[-1].get("User-Id")
                frames = [p.bytes for p in parts]
                who = security.principal(user_id)
                if who is None:  # its key was revoked since the handshake
                    self.counters.inc("bus.unauthorized")
                    log.warning("request from a revoked key refused", extra={"ctx": security.describe(user_id)})
                    await router.send_multipart([*frames[:-1], self._pack(self._error(
                        None, "unauthorized", "this client key is not (or no longer) allowed"))])
                    continue
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
            token = current_client.set(who)  # the op (and the task that awaits it) sees who asked
            try:
                reply = self._dispatch(body)
                if inspect.isawaitable(reply):
                    self._spawn(self._reply_later(envelope, reply))
                    continue
            finally:
                current_client.reset(token)
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
            if self.security is not None:
                self.security.authorize(current_client.get(), request["op"], request)
            result = entry[0](request)
        except RequestError as exc:
            if exc.code == "forbidden":
                self.counters.inc("bus.forbidden")
                log.warning("request refused", extra={"ctx": {"op": request["op"], "reason": exc.message}})
            return self._error(req_id, exc.code, exc.message)
        except Exception as exc:
            self.counters.inc("bus.op_errors")
            log.exception("request op failed", extra={"ctx": {"op": request["op"]}})
            return self._error(req_id, "internal", f"{request['op']} failed: {exc!r}")
        if inspect.isawaitable(result):
            return self._await_op(request["op"], req_id, result)
        if self.security is not None:
            result = self.security.filter_result(current_client.get(), request["op"], result)
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
        if self.security is not None:
            value = self.security.filter_result(current_client.get(), op, value)
        return {"ok": True, "result": value, "id": req_id}

    # -- subscribers -----------------------------------------------------------------------

    async def _watch_subscribers(self) -> None:
        """Drain XPUB subscription messages and the socket monitor for the counters; on a
        secure bus, decide each subscription as soon as it comes."""
        from zmq.utils.monitor import parse_monitor_message

        poller = zmq.asyncio.Poller()
        if self.security is not None:
            poller.register(self._pub, zmq.POLLIN)
        while True:
            if self.security is None:
                await asyncio.sleep(0.2)
            else:
                await poller.poll(200)
            try:
                while True:
                    if self.security is None:
                        msg = self._pub.recv(zmq.NOBLOCK)  # type: ignore[union-attr]
                        self.counters.inc("bus.subscribe" if msg[:1] == b"\x01" else "bus.unsubscribe")
                    else:
                        self._subscription(self._pub.recv(zmq.NOBLOCK, copy=False))  # type: ignore[union-attr]
            except zmq.Again:
                pass
            try:
                while True:
                    event = parse_monitor_message(self._monitor.recv_multipart(zmq.NOBLOCK))  # type: ignore[union-attr]
                    self._subscribers += 1 if event["event"] == zmq.EVENT_ACCEPTED else -1
            except zmq.Again:
                pass
            self.counters.set("bus.subscribers", self._subscribers)

    def _subscription(self, frame: zmq.Frame) -> None:
        """Accept or refuse one (un)subscription for the client that sent it (XPUB_MANUAL:
        the sockopt applies to the pipe the last message came from)."""
        assert self.security is not None and self._pub is not None
        data = frame.bytes
        try:
            user_id = frame.get("User-Id")
        except zmq.ZMQError:  # made by ZeroMQ itself (a closed pipe's unsubscriptions): no sender
            user_id = None
        if data[:1] == b"\x01":
            if self.security.may_subscribe(user_id, data[1:]):
                self._pub.setsockopt(zmq.SUBSCRIBE, data[1:])
                self.counters.inc("bus.subscribe")
            else:
                self.counters.inc("bus.subscribe_refused")
                log.warning("subscription refused", extra={"ctx": {**self.security.describe(user_id),
                                                                   "prefix": data[1:80].decode("utf-8", "replace")}})
        elif data[:1] == b"\x00" and user_id is not None:
            self._pub.setsockopt(zmq.UNSUBSCRIBE, data[1:])
            self.counters.inc("bus.unsubscribe")

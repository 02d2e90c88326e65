"""Shared test helpers: free ports, an in-process daemon on real sockets, bus clients."""

from __future__ import annotations

import asyncio
import socket
import time
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, AsyncIterator

import msgpack
import pytest
import zmq
import zmq.asyncio

from ctid import config as ctid_config
from ctid.daemon import Daemon
from ctid.recordings.plugin import RecordingsPlugin

REPO = Path(__file__).resolve().parents[1]
AMI = REPO.parent / "shared" / "ami"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def transcript(name: str) -> Path:
    path = AMI / f"{name}.raw"
    if not path.exists():
        pytest.skip(f"AMI transcript {path} is not here (shared/ami sits beside the repo)")
    return path


def site_config(tmp_path: Path, ami_port: int, **driver_options: Any) -> ctid_config.Config:
    raw = {
        "site": "hq",
        # plain, explicitly: these tests are about other things (tests/test_security.py is about keys)
        "bus": {"pub": f"tcp://127.0.0.1:{free_port()}", "req": f"tcp://127.0.0.1:{free_port()}", "security": "plain"},
        "database": {"url": f"sqlite:///{tmp_path}/ctid.db", "flush_interval": 0.05},
        "log": {"stats_interval": 0},
        "driver": [{"kind": "asterisk", "host": "127.0.0.1", "port": ami_port, "username": "cti",
                    "secret": "ctisecret", **driver_options}],
    }
    return ctid_config.parse(raw, "test")


class Subscriber:
    """A bus client as a CRM would write it: SUB to a prefix, msgpack payloads."""

    def __init__(self, endpoint: str, *prefixes: str) -> None:
        self.ctx = zmq.asyncio.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        for prefix in prefixes or ("",):
            self.sock.setsockopt_string(zmq.SUBSCRIBE, prefix)
        self.sock.connect(endpoint)
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def recv(self, timeout: float = 5.0) -> tuple[str, dict[str, Any]]:
        topic, body = await asyncio.wait_for(self.sock.recv_multipart(), timeout)
        item = (topic.decode(), msgpack.unpackb(body))
        self.events.append(item)
        return item

    async def until(self, predicate, timeout: float = 30.0) -> dict[str, Any]:
        """Receive until an event matches; return it. Everything received is kept in `events`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            _, event = await self.recv(max(0.01, deadline - loop.time()))
            if predicate(event):
                return event

    async def drain(self, quiet: float = 0.5, daemon: Daemon | None = None, timeout: float = 60.0) -> None:
        """Receive until nothing comes for `quiet` seconds; with `daemon` (subscribed to
        everything), also until the last event received is the last it published (on a busy
        machine ZeroMQ's I/O thread may deliver later than `quiet`), for `timeout` at most."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await self.recv(quiet)
            except asyncio.TimeoutError:
                if daemon is None or asyncio.get_running_loop().time() > deadline \
                        or (self.events and self.events[-1][1]["seq"] >= daemon.bus.seq):
                    return

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


async def request(endpoint: str, message: Any, timeout: float = 5.0, raw: bytes | None = None) -> dict[str, Any]:
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(endpoint)
    try:
        await sock.send(raw if raw is not None else msgpack.packb(message))
        return msgpack.unpackb(await asyncio.wait_for(sock.recv(), timeout))
    finally:
        sock.close(0)
        ctx.term()


async def search_all(endpoint: str, principal: str, **spec: Any) -> list[dict[str, Any]]:
    """Every row a `recordings.search` gives `principal` (oldest first), paged by cursor."""
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        reply = await request(endpoint, {"op": "recordings.search", "principal": principal, "limit": 50,
                                         "order": "oldest", **({"cursor": cursor} if cursor else {}), **spec})
        assert reply["ok"], reply
        rows.extend(reply["result"]["rows"])
        cursor = reply["result"]["next_cursor"]
        if cursor is None:
            return rows


async def store_flushed(daemon: Daemon, timeout: float = 30.0) -> bool:
    """Everything the daemon submitted to its store so far is committed (its writer process is
    another process: a fixed sleep is not enough on a busy machine). Off the loop, which keeps
    serving while it waits."""
    return await asyncio.get_running_loop().run_in_executor(None, daemon.store.flush, timeout)


async def caught_up(daemon: Daemon) -> None:
    """Everything the (paused) PBX sent so far has been dispatched and handled by every plugin:
    each AMI driver's Ping is answered after the events before it on the same connection,
    then the plugins' queues are drained. In place of a sleep that hopes for as much."""
    for driver in daemon.drivers:
        await driver.action("Ping", timeout=30)  # type: ignore[attr-defined]  (Asterisk drivers only)
    for plugin in daemon.plugins.plugins.values():
        if plugin.queue is not None and not plugin.disabled:
            await asyncio.wait_for(plugin.queue.join(), 30)


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


@asynccontextmanager
async def recordings_daemon(config: ctid_config.Config, driver: str | None = "asterisk"
                            ) -> AsyncIterator[tuple[Daemon, RecordingsPlugin]]:
    """A started daemon on `config` with the recordings plugin enabled, once its index is
    ready and (with `driver`) that driver has resynced; stopped on the way out."""
    plugin = RecordingsPlugin()
    config = replace(config, plugins=ctid_config.PluginsConfig(enabled=("recordings",)))
    daemon = Daemon(config, extra_plugins={"recordings": plugin})
    try:
        await daemon.start()
        await wait_for(lambda: plugin.ready.is_set())
        if driver is not None:
            await wait_for(lambda: daemon.counters.get(f"driver.{driver}.resyncs") >= 1)
        yield daemon, plugin
    finally:
        await daemon.stop()


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02) -> None:
    """`wait_for` for tests without an event loop (blocking)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def frame(**fields: Any) -> bytes:
    """One AMI frame from keyword fields (in order)."""
    return ("".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n").encode()


class ScriptedAmi:
    """A minimal AMI peer on real TCP for failure tests: answers Login, list actions from
    `lists`, and sends whatever bytes the test pushes. Each connection is recorded."""

    def __init__(self, lists: dict[str, list[bytes]] | None = None, secret: str | None = None,
                 mute: frozenset[str] = frozenset()) -> None:
        self.lists = lists or {}
        self.secret = secret
        self.mute = mute  # lower-case action names left unanswered (a PBX that hangs)
        self.writers: list[asyncio.StreamWriter] = []
        self.logins = 0
        self.actions: list[dict[str, str]] = []
        self._server = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for w in self.writers:
            w.close()
        self._server.close()

    def push(self, data: bytes, conn: int = -1) -> None:
        self.writers[conn].write(data)

    def drop(self) -> None:
        """Cut every live connection, as a PBX restart or a network fault would."""
        for w in self.writers:
            w.transport.abort()

    async def _serve(self, reader, writer) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                action = dict(line.split(": ", 1) for line in raw.decode().strip().split("\r\n"))
                self.actions.append(action)
                aid = action.get("ActionID", "")
                name = action.get("Action", "").lower()
                if name == "login":
                    if self.secret is not None and action.get("Secret") != self.secret:
                        writer.write(frame(Response="Error", ActionID=aid, Message="Authentication failed"))
                        continue
                    self.logins += 1
                    self.writers.append(writer)
                    writer.write(frame(Response="Success", ActionID=aid, Message="Authentication accepted"))
                elif name in self.mute:
                    pass
                elif name in ("queuestatus", "coreshowchannels"):
                    items = self.lists.get(name, [])
                    writer.write(frame(Response="Success", ActionID=aid, EventList="start", Message="will follow"))
                    for item in items:
                        writer.write(item.replace(b"\r\n\r\n", f"\r\nActionID: {aid}\r\n\r\n".encode()))
                    done = "QueueStatusComplete" if name == "queuestatus" else "CoreShowChannelsComplete"
                    writer.write(frame(Event=done, ActionID=aid, EventList="Complete", ListItems=len(items)))
                else:
                    writer.write(frame(Response="Success", ActionID=aid, Ping="Pong"))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

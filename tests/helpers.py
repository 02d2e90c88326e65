"""Shared test helpers: free ports, an in-process daemon on real sockets, bus clients."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
import zmq.asyncio

from ctid import config as ctid_config

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
        "bus": {"pub": f"tcp://127.0.0.1:{free_port()}", "req": f"tcp://127.0.0.1:{free_port()}"},
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

    async def drain(self, quiet: float = 0.5) -> None:
        try:
            while True:
                await self.recv(quiet)
        except asyncio.TimeoutError:
            pass

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


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)

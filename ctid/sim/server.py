"""The wire-neutral half of a simulated PBX server: the virtual clock that drives a
`CallCenter`, the ticker that sends what happened, and the TCP server's life cycle.

A wire (`ctid.drivers.csta.sim`) subclasses `SimServer` and provides `flush()` (send
the renderer's output to its clients) and `_serve()` (one connection). The virtual
clock runs `speed` times faster than the wall clock and can be paused; the same seed
gives the same happenings however the clock is advanced. (The Asterisk simulator has
the same clock inline; it can move onto this class.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from ctid.sim.traffic import CallCenter


class SimServer:
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

    # -- to provide ------------------------------------------------------------------------

    def flush(self) -> None:
        raise NotImplementedError

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def close_clients(self) -> None:
        raise NotImplementedError

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

"""A plain AMI client over TCP, as a third-party tool would connect to a PBX (or the simulator)."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from ctid.drivers.asterisk.protocol import PyFrameParser, encode_action
from ctid.drivers.asterisk.sim import AmiSimulator

Frame = dict[str, str]


class AmiClient:
    """A plain asyncio AMI client: frames parsed by the driver's own parser, responses by ActionID."""

    def __init__(self) -> None:
        self.parser = PyFrameParser(drop=())
        self.frames: list[Frame] = []
        self.closed = asyncio.Event()
        self._ids = iter(range(1, 1_000_000))
        self._new = asyncio.Event()

    async def connect(self, address: tuple[str, int]) -> None:
        self.reader, self.writer = await asyncio.open_connection(*address)
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while True:
            data = await self.reader.read(65536)
            if not data:
                self.closed.set()
                return
            self.frames.extend(self.parser.feed(data))
            self._new.set()

    async def wait_for(self, predicate: Callable[[Frame], bool], start: int = 0, timeout: float = 15.0) -> Frame:
        """The first frame from index `start` on that matches."""
        async def scan() -> Frame:
            i = start
            while True:
                while i < len(self.frames):
                    if predicate(self.frames[i]):
                        return self.frames[i]
                    i += 1
                self._new.clear()
                await self._new.wait()
        return await asyncio.wait_for(scan(), timeout)

    def send(self, action: str, **fields: Any) -> str:
        action_id = f"t-{next(self._ids)}"
        self.writer.write(encode_action(action, fields, action_id))
        return action_id

    async def action(self, action: str, **fields: Any) -> Frame:
        action_id = self.send(action, **fields)
        return await self.wait_for(lambda f: "Response" in f and "Event" not in f and f.get("ActionID") == action_id)

    async def listing(self, action: str, **fields: Any) -> tuple[Frame, list[Frame], Frame]:
        action_id = self.send(action, **fields)
        done = await self.wait_for(lambda f: f.get("ActionID") == action_id and f.get("EventList") == "Complete")
        mine = [f for f in self.frames if f.get("ActionID") == action_id]
        return mine[0], mine[1:-1], done

    async def login(self, **fields: Any) -> Frame:
        return await self.action("Login", Username="cti", Secret=fields.pop("Secret", "x"), **fields)

    async def close(self) -> None:
        self.writer.close()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def events(self, name: str | None = None) -> list[Frame]:
        return [f for f in self.frames if "Event" in f and (name is None or f["Event"] == name)]


async def started(sim: AmiSimulator, **login: Any) -> AmiClient:
    client = AmiClient()
    await client.connect(await sim.start("127.0.0.1", 0))
    response = await client.login(**login)
    assert response["Response"] == "Success", response
    return client

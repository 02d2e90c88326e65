"""Replays a recorded AMI transcript (`*.raw`, with its `*.chunks.jsonl` timing) over real TCP.

For tests and benchmarks: the server sends the banner on connect, waits for the
client's Login, then sends the rest of the recording as the PBX sent it — as fast
as possible, or at the recorded pace scaled by `speed`, or looped `repeat` times.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path


class ReplayServer:
    def __init__(self, raw: str | Path, *, speed: float | None = None, repeat: int = 1, chunk: int = 64 * 1024) -> None:
        raw = Path(raw)
        self.data = raw.read_bytes()
        self.speed = speed
        self.repeat = repeat
        self.chunk = chunk
        self.chunks: list[tuple[float, int, int]] = []
        timing = raw.with_suffix(".chunks.jsonl")
        if speed is not None and timing.exists():
            for line in timing.read_text().splitlines():
                if line.strip():
                    c = json.loads(line)
                    self.chunks.append((c["rel"], c["offset"], c["len"]))
        nl = self.data.find(b"\r\n")
        self.banner, self.body = self.data[: nl + 2], self.data[nl + 2 :]
        self.sent = asyncio.Event()
        self.go = asyncio.Event()  # cleared by a test that must subscribe before the PBX speaks
        self.go.set()
        self.connections = 0
        self._server: asyncio.base_events.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, host, port)
        return self._server.sockets[0].getsockname()[:2]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            writer.write(self.banner)
            await reader.readuntil(b"\r\n\r\n")  # the client's Login
            drain = asyncio.ensure_future(self._discard(reader))
            await self.go.wait()
            if self.chunks:
                await self._paced(writer)
            else:
                for _ in range(self.repeat):
                    for i in range(0, len(self.body), self.chunk):
                        writer.write(self.body[i : i + self.chunk])
                        await writer.drain()
            self.sent.set()
            await drain  # keep the link open until the client leaves
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _paced(self, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        skip = len(self.banner)
        for rel, offset, length in self.chunks:
            delay = start + rel / self.speed - loop.time()  # type: ignore[operator]
            if delay > 0:
                await asyncio.sleep(delay)
            lo, hi = max(offset, skip), offset + length
            if hi > lo:
                writer.write(self.data[lo:hi])
                await writer.drain()

    @staticmethod
    async def _discard(reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass

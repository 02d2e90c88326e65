"""The wallboard: a page on a local port that shows each queue's `queue.stats`, updated live
over server-sent events.

aiohttp rather than the stdlib: the server runs on the daemon's own asyncio loop (no thread,
no blocking), and an SSE stream per browser is just a `StreamResponse` that is written to as
stats come; http.server would need a thread per open stream. SSE rather than WebSocket: the
board only listens, and EventSource reconnects by itself after a network blip.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

KEEPALIVE = 15.0  # seconds between SSE comments, so proxies keep an idle stream open


class Wallboard:
    """`GET /` the page, `GET /events` the SSE stream, `GET /stats` the latest stats as JSON."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.latest: list[dict[str, Any]] = []
        self._streams: set[asyncio.Queue[list[dict[str, Any]]]] = set()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/events", self._events)
        app.router.add_get("/stats", self._stats)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:  # an OS-chosen port (tests): say which
            self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        for stream in list(self._streams):
            stream.put_nowait([])  # an empty batch ends the stream
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def push(self, stats: list[dict[str, Any]]) -> None:
        """New stats for every open page (a slow page keeps only the newest batch)."""
        self.latest = stats
        for stream in self._streams:
            if stream.full():
                stream.get_nowait()
            stream.put_nowait(stats)

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.latest)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        stream: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue(maxsize=1)
        self._streams.add(stream)
        try:
            if self.latest:
                await resp.write(_frame(self.latest))
            while True:
                try:
                    stats = await asyncio.wait_for(stream.get(), KEEPALIVE)
                except asyncio.TimeoutError:
                    await resp.write(b": keep-alive\n\n")
                    continue
                if not stats:
                    break
                await resp.write(_frame(stats))
        except ConnectionResetError:  # the browser went away (a cancellation at shutdown propagates)
            pass
        finally:
            self._streams.discard(stream)
        return resp


def _frame(stats: list[dict[str, Any]]) -> bytes:
    body = [{k: v for k, v in s.items() if k not in ("v", "seq", "epoch", "source")} for s in stats]
    return b"event: stats\ndata: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ctid wallboard</title>
<style>
body { font-family: sans-serif; background: #111; color: #eee; margin: 1em; }
table { border-collapse: collapse; font-size: 28px; width: 100%; }
th, td { padding: 6px 14px; text-align: right; border-bottom: 1px solid #444; }
th:first-child, td:first-child { text-align: left; }
.bad { color: #ff6b6b; } .good { color: #7bd88f; }
#status { font-size: 14px; color: #888; }
</style></head>
<body>
<h1>Queues <span id="status">connecting...</span></h1>
<table><thead><tr><th>queue</th><th>waiting</th><th>longest</th><th>ready</th><th>busy</th><th>acw</th>
<th>not ready</th><th>offered</th><th>answered</th><th>abandoned</th><th>SL</th><th>ASA</th></tr></thead>
<tbody id="rows"></tbody></table>
<script>
const cols = ["waiting", "longest_wait", "ready", "busy", "acw", "not_ready", "offered", "answered", "abandoned",
              "service_level", "asa"];
let updates = 0;
function show(col, s) {
  const v = col in s.agents ? s.agents[col] : s[col];
  if (v === null || v === undefined) return "n/a";
  if (col === "service_level") return (v * 100).toFixed(1) + "%";
  if (col === "asa" || col === "longest_wait") return Math.round(v) + "s";
  return String(v);
}
function render(stats) {
  const body = document.getElementById("rows");
  for (const s of stats) {
    const id = "q-" + s.queue;
    let row = document.getElementById(id);
    if (!row) {
      row = document.createElement("tr");
      row.id = id;
      row.innerHTML = "<td>" + s.queue.replace(/[&<>]/g, "") + "</td>" + cols.map(c => '<td data-col="' + c + '"></td>').join("");
      body.appendChild(row);
    }
    for (const c of cols) {
      const td = row.querySelector('[data-col="' + c + '"]');
      td.textContent = show(c, s);
      if (c === "service_level") td.className = s.service_level === null ? "" : (s.service_level >= 0.8 ? "good" : "bad");
    }
  }
  updates += 1;
  document.body.dataset.updates = updates;
  document.getElementById("status").textContent = "live, " + new Date().toLocaleTimeString();
}
const source = new EventSource("events");
source.addEventListener("stats", e => render(JSON.parse(e.data)));
source.onerror = () => { document.getElementById("status").textContent = "reconnecting..."; };
</script>
</body></html>
"""

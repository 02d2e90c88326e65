"""queue.stats on the bus and the live wallboard, with the Asterisk simulator as the PBX and a
real headless Chromium reading the page over the DevTools protocol as the numbers change."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import aiohttp

from chromium import FLAGS, binary
from ctid.config import PluginsConfig
from ctid.daemon import Daemon
from ctid.drivers.asterisk.sim import AmiSimulator
from ctid_plugins.reporting.plugin import Reporting
from helpers import Subscriber, free_port, site_config, wait_for

READ_BOARD = """document.body === null ? null : JSON.stringify({updates: Number(document.body.dataset.updates || 0),
  rows: [...document.querySelectorAll('#rows tr')].map(tr => [tr.id,
    ...[...tr.querySelectorAll('td[data-col]')].map(td => [td.dataset.col, td.textContent])])})"""


class Page:
    """One Chromium tab driven over CDP (a websocket): evaluate JavaScript, get the value back."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.n = ws, 0

    async def eval(self, expression: str):
        self.n += 1
        await self.ws.send_json({"id": self.n, "method": "Runtime.evaluate",
                                 "params": {"expression": expression, "returnByValue": True}})
        while True:
            msg = await asyncio.wait_for(self.ws.receive_json(), 10)
            if msg.get("id") == self.n:
                return msg["result"]["result"].get("value")


async def board(page: Page) -> dict:
    value = await page.eval(READ_BOARD)  # None while the page is still loading (a slow machine)
    if value is None:
        return {"updates": 0, "rows": {}}
    state = json.loads(value)
    rows = {r[0][2:]: dict(r[1:]) for r in state["rows"]}
    return {"updates": state["updates"], "rows": rows}


def offered(state: dict) -> int:
    return sum(int(r["offered"]) for r in state["rows"].values())


async def test_wallboard_follows_the_simulator(tmp_path):
    sim = AmiSimulator(seed=77, speed=40.0, paused=True)
    _, ami_port = await sim.start()
    web_port, cdp_port = free_port(), free_port()
    cfg = site_config(tmp_path, ami_port, resync_timeout=5)
    cfg = dataclasses.replace(cfg, plugins=PluginsConfig(enabled=("reporting",), options={"reporting": {
        "stats_interval": 0.3, "wallboard": f"127.0.0.1:{web_port}"}}))
    daemon = Daemon(cfg, extra_plugins={"reporting": Reporting()})
    sub = Subscriber(cfg.bus.pub, "queue.")
    browser = None
    await daemon.start()
    try:
        await wait_for(lambda: daemon.counters.get("driver.asterisk.resyncs") >= 1)
        browser = await asyncio.create_subprocess_exec(
            binary(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--remote-debugging-port={cdp_port}",
            f"http://127.0.0.1:{web_port}/", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        async with aiohttp.ClientSession() as http:
            targets = []
            for _ in range(600):  # Chromium takes a moment to open its DevTools port (more on a busy machine)
                try:
                    async with http.get(f"http://127.0.0.1:{cdp_port}/json/list") as r:
                        targets = [t for t in await r.json() if t["type"] == "page" and str(web_port) in t["url"]]
                    if targets:
                        break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            assert targets, "chromium did not open the wallboard"
            async with http.ws_connect(targets[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                first = None
                for _ in range(300):
                    first = await board(page)
                    if first["updates"] and first["rows"]:
                        break
                    await asyncio.sleep(0.1)
                assert first["updates"] >= 1 and first["rows"], "the page got no stats"
                queues = set(first["rows"])

                sim.resume()  # calls start: waiting, agents busy, then finished calls counted as offered
                later = first
                for _ in range(150):
                    await asyncio.sleep(0.1)
                    later = await board(page)
                    if offered(later) > offered(first) and later["updates"] > first["updates"] + 3:
                        break
                sim.pause()
                assert later["updates"] > first["updates"], "no live updates reached the page"
                assert offered(later) > offered(first), f"offered never moved: {first} -> {later}"
                assert all(r["service_level"] == "n/a" or r["service_level"].endswith("%")
                           for r in later["rows"].values())

        # the same figures went out on the bus as queue.stats, one per queue
        seen = time.time()
        last: dict[str, dict] = {}
        while set(last) < queues:  # stats keep coming every 0.3 s: read up to a round newer than the page
            _, event = await sub.recv()
            if event["ts"] >= seen:
                last[event["queue"]] = event
        assert all(e["type"] == "queue.stats" for _, e in sub.events)
        assert sum(e["offered"] for e in last.values()) >= offered(later)  # finished calls only grow
        stats = list(last.values())
        assert set(stats[-1]["agents"]) == {"ready", "busy", "acw", "not_ready"}
        assert daemon.counters.get("plugins.reporting.stats_failures") == 0
    finally:
        if browser is not None and browser.returncode is None:
            browser.kill()
            await browser.wait()
        sub.close()
        await daemon.stop()
        await sim.stop()

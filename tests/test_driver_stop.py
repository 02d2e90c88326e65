"""Stopping a driver link ends it whatever phase it is in, on real TCP against the stand-in PBXs.

The daemon stops a driver by `link.stop()` and then cancels its task. On Python 3.11 that
cancellation can be lost: `asyncio.wait_for` returns its result instead of raising when the
cancel arrives as the awaited thing completes (here: the TCP connect). The link must then
notice `stop()` by itself; before it did, it logged in and served until the PBX hung up,
and `Daemon.stop()` waited for it forever. These tests lose the cancellation on purpose
(they never cancel) and gate the connect so that `stop()` lands while it is in flight.
(tests/test_daemon_stop.py: the daemon stops even when a driver task never ends.)
"""

from __future__ import annotations

import asyncio

import pytest

from csta_support import Harness
from helpers import ScriptedAmi
from ctid.drivers.asterisk.link import AmiLink, LinkOptions
from ctid.drivers.asterisk.mapper import AsteriskMapper
from ctid.drivers.csta.sim import CstaSimulator
from ctid.metrics import Counters


@pytest.fixture
def gated_connect(monkeypatch):
    """asyncio.open_connection that waits for `release` (a connect in flight); `entered` is set
    once a link is waiting in it."""
    entered, release = asyncio.Event(), asyncio.Event()
    real = asyncio.open_connection

    async def connect(*args, **kwargs):
        entered.set()
        await release.wait()
        return await real(*args, **kwargs)

    monkeypatch.setattr(asyncio, "open_connection", connect)
    return entered, release


async def test_asterisk_link_stopped_while_connecting_never_logs_in(gated_connect):
    entered, release = gated_connect
    pbx = ScriptedAmi()
    port = await pbx.start()
    events: list[dict] = []
    link = AmiLink("asterisk", LinkOptions("127.0.0.1", port, "cti", "ctisecret"), AsteriskMapper(source="asterisk"),
                   events.append, Counters())
    task = asyncio.ensure_future(link.run())
    try:
        await entered.wait()
        await link.stop()
        release.set()
        await asyncio.wait_for(task, 10)  # without the fix: logged in, and served until the PBX hangs up
        assert pbx.logins == 0 and not link.connected.is_set() and events == []
    finally:
        task.cancel()
        await pbx.close()


async def test_csta_link_stopped_while_connecting_never_starts_a_session(gated_connect):
    entered, release = gated_connect
    sim = CstaSimulator(seed=11, traffic=False)
    _, port = await sim.start()
    h = Harness(sim, port)
    try:
        await entered.wait()
        await h.link.stop()
        release.set()
        await asyncio.wait_for(h.task, 10)  # without the fix: a session, monitors, and served on
        assert h.link.session_id is None and not h.link.connected.is_set() and h.events == []
    finally:
        h.task.cancel()
        await sim.stop()


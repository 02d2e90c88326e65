"""Recordings filed under the site's `[[team]]`s in a running daemon: the recordings plugin gets
the teams through its PluginContext, and a `supervisor:<team>` finds the recordings its agents
took in every queue they serve, and no one else's."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from helpers import caught_up, recordings_daemon, search_all, site_config
from ctid.drivers.asterisk.sim import AmiSimulator
from ctid.teams import TeamConfig

# The default simulated site: 1001 serves sales and vip, 1003 sales and support, 1006 vip and
# support; no queue is called north.
NORTH = TeamConfig("north", agents=("1001", "1003", "1006"), queues=("vip",))


async def test_a_supervisor_finds_its_agents_recordings_across_queues(tmp_path):
    sim = AmiSimulator(seed=5, speed=40.0, paused=True)
    _, port = await sim.start()
    cfg = replace(site_config(tmp_path, port), teams=(NORTH,))
    req = cfg.bus.req
    try:
        async with recordings_daemon(cfg) as (daemon, _):
            sim.resume()

            async def north_in_two_queues() -> bool:
                rows = await search_all(req, "admin")
                return len({r["queue"] for r in rows if r["agent"] in NORTH.agents}) >= 2 and any(
                    r["agent"] and r["agent"] not in NORTH.agents for r in rows)

            for _ in range(300):  # up to 60 s of simulated traffic
                if await north_in_two_queues():
                    break
                await asyncio.sleep(0.2)
            sim.pause()
            await caught_up(daemon)  # calls in flight are indexed before the two searches compared below

            everything = await search_all(req, "admin")
            theirs = {r["recording_id"] for r in everything if r["agent"] in NORTH.agents}
            found = await search_all(req, "supervisor:north")
            assert {r["recording_id"] for r in found} == theirs
            assert len({r["queue"] for r in found}) >= 2  # one team, several queues
            others = [r for r in everything if r["recording_id"] not in theirs]
            assert others and all(r["agent"] not in NORTH.agents for r in others)
            # a queue-named supervisor keeps the recordings of agents in no team, by queue
            vip = await search_all(req, "supervisor:vip")
            assert {r["recording_id"] for r in vip} == {r["recording_id"] for r in others if r["queue"] == "vip"}
    finally:
        await sim.stop()

"""Recordings on a CSTA site: the daemon with the CSTA driver against `ctid sim csta` and the
recordings plugin enabled indexes the simulated calls' voice-unit recordings (RecordEvent /
StopEvent), joined with their CDRs, and `recordings.search` finds them as the principal asks."""

from __future__ import annotations

import asyncio
import dataclasses

from csta_support import site
from helpers import free_port, recordings_daemon, request, search_all, store_flushed, wait_for
from ctid.drivers.csta.sim import CstaSimulator
from ctid.drivers.csta.simrender import RECORDINGS
from ctid.store import query as store_query


async def test_csta_recordings_are_indexed_and_searchable(tmp_path):
    sim = CstaSimulator(seed=5, speed=40.0, paused=True)
    started: list[str] = []
    sim.model.sinks.append(lambda h: started.append(h.call.id) if h.kind == "record_start" else None)
    _, port = await sim.start()
    config = site(tmp_path, free_port(), port, sim)
    config = dataclasses.replace(config, drivers=config.drivers[1:])
    req = config.bus.req
    try:
        async with recordings_daemon(config, driver="aes") as (daemon, _):
            sim.resume()
            await wait_for(lambda: daemon.counters.get("recordings.indexed") >= 5, timeout=30)
            sim.pause()
            await asyncio.sleep(0.5)

            rows = await search_all(req, "admin")
            assert len(rows) >= 5 and len(started) >= len(rows)
            assert await store_flushed(daemon)  # every finished call's CDR is in
            cdrs = {c["call_id"]: c for c in store_query.cdrs(daemon.store.engine)}
            for row in rows:
                cdr = cdrs[row["call_id"]]  # every recording belongs to a finished call, by its normalized call_id
                assert (row["caller"], row["queue"], row["agent"]) == (cdr["caller"], cdr["queue"], cdr["agent"])
                assert row["path"].startswith(RECORDINGS + "/") and row["duration"] >= 0
                assert row["recording_id"] == row["path"].rsplit("/", 1)[1]
            assert len({r["recording_id"] for r in rows}) == len(rows)
            assert any(r["duration"] > 0 for r in rows)

            agent = next(r["agent"] for r in rows if r["agent"])
            mine = await search_all(req, f"agent:{agent}")
            assert mine and {r["agent"] for r in mine} == {agent}
            queue = rows[0]["queue"]
            assert {r["call_id"] for r in await search_all(req, "admin", queue=[queue])} == {
                r["call_id"] for r in rows if r["queue"] == queue}

            stats = (await request(req, {"op": "stats"}))["result"]
            assert stats["driver.aes.orphans"] == 0 and stats["driver.aes.unmapped"] == 0
            assert stats.get("driver.aes.parse_errors", 0) == 0
    finally:
        await sim.stop()

"""The recordings plugin in a running daemon, the Asterisk simulator as the PBX: its MixMonitor
recordings are indexed joined with the calls' CDRs, `recordings.search` answers on the
request socket as the principal asked for, and a restarted daemon rebuilds the same index
from the database."""

from __future__ import annotations

from dataclasses import replace

from helpers import caught_up, free_port, recordings_daemon, request, search_all, site_config, store_flushed, wait_for
from ctid.drivers.asterisk.sim import AmiSimulator
from ctid.store import query as store_query


async def test_simulated_recordings_are_searchable_and_survive_a_restart(tmp_path):
    sim = AmiSimulator(seed=5, speed=40.0, paused=True)
    _, port = await sim.start()
    cfg = site_config(tmp_path, port)
    req = cfg.bus.req
    try:
        async with recordings_daemon(cfg) as (daemon, _):
            sim.resume()
            await wait_for(lambda: daemon.counters.get("recordings.indexed") >= 5, timeout=30)
            sim.pause()
            await caught_up(daemon)  # what was in flight is indexed: the restarted index must equal `rows`

            rows = await search_all(req, "admin")
            assert len(rows) >= 5
            assert await store_flushed(daemon)  # every finished call's CDR is in
            cdrs = {c["call_id"]: c for c in store_query.cdrs(daemon.store.engine)}
            for row in rows:
                cdr = cdrs[row["call_id"]]  # every recording belongs to a finished call
                assert (row["caller"], row["queue"], row["agent"]) == (cdr["caller"], cdr["queue"], cdr["agent"])
                assert row["path"] and row["duration"] >= 0
            agent = next(r["agent"] for r in rows if r["agent"])
            mine = await search_all(req, f"agent:{agent}")
            assert mine and {r["agent"] for r in mine} == {agent}
            assert await search_all(req, f"agent:{agent}", agent="nobody-else") == []

            bad = await request(req, {"op": "recordings.search", "principal": "admin", "since": 10, "until": 1})
            assert bad["ok"] is False and bad["error"]["code"] == "bad_request" and "reversed" in bad["error"]["message"]
            bad = await request(req, {"op": "recordings.search", "agent": agent})
            assert bad["error"]["code"] == "bad_request" and bad["error"]["message"].startswith("principal:")
            bad = await request(req, {"op": "recordings.search", "principal": "admin", "colour": "red"})
            assert bad["error"]["code"] == "bad_request" and "colour" in bad["error"]["message"]
    finally:
        await sim.stop()

    # a new daemon on the same database: the index rebuilt from it answers the same
    cfg2 = replace(cfg, bus=replace(cfg.bus, pub=f"tcp://127.0.0.1:{free_port()}", req=f"tcp://127.0.0.1:{free_port()}"),
                   drivers=())
    async with recordings_daemon(cfg2, driver=None):
        assert await search_all(cfg2.bus.req, "admin") == rows
        assert await search_all(cfg2.bus.req, f"agent:{agent}") == mine

"""The simulator as a stand-in PBX for the whole daemon: what the call center did (its own
ground truth) is what the bus says happened."""

from __future__ import annotations

import asyncio
from collections import Counter

from helpers import Subscriber, request, site_config, wait_for
from ctid.daemon import Daemon
from ctid.drivers.asterisk.sim import AmiSimulator


class Truth:
    """A sink on the simulator's model: every happening, as the model saw it."""

    def __init__(self) -> None:
        self.happenings = []

    def __call__(self, happening) -> None:  # the model calls its sinks with each happening
        self.happenings.append(happening)

    def count(self, kind: str) -> Counter:
        return Counter((h.queue, h.agent.ext if h.agent else None) for h in self.happenings if h.kind == kind)


async def test_simulated_call_center_through_the_daemon(tmp_path):
    sim = AmiSimulator(seed=4242, speed=40.0, paused=True)
    truth = Truth()
    sim.model.sinks.append(truth)
    _, port = await sim.start()
    daemon = Daemon(site_config(tmp_path, port, resync_timeout=5))
    sub = Subscriber(daemon.config.bus.pub)
    await daemon.start()
    try:
        await wait_for(lambda: daemon.counters.get("driver.asterisk.resyncs") >= 1)
        await wait_for(lambda: daemon.counters.get("bus.subscribe") > 0)
        sim.resume()
        await asyncio.sleep(8)  # 320 simulated seconds
        sim.pause()
        await sub.drain(quiet=1.0, daemon=daemon)
        events = [e for _, e in sub.events]
        types = Counter(e["type"] for e in events)
        assert types["call.offered"] >= 10 and types["call.cleared"] >= 5

        answered = Counter((e["queue"], e["agent"]) for e in events if e["type"] == "call.established" and e["queue"])
        connects = truth.count("connect")
        assert answered == Counter({k: v for k, v in connects.items()})
        abandons = Counter(e["queue"] for e in events if e["type"] == "call.abandoned")
        assert abandons == Counter(h.queue for h in truth.happenings if h.kind == "abandon")
        timeouts = Counter(e["queue"] for e in events if e["type"] == "call.diverted" and e["cause"] == "timeout")
        assert timeouts == Counter(h.queue for h in truth.happenings if h.kind == "timeout")

        # Nothing the simulator says is unknown or malformed to the driver.
        stats = (await request(daemon.config.bus.req, {"op": "stats"}))["result"]
        assert stats.get("driver.asterisk.parse_errors", 0) == 0
        assert stats["driver.asterisk.unmapped"] == 0 and stats["driver.asterisk.orphans"] == 0
        assert stats["driver.asterisk.noise_dropped"] > stats["driver.asterisk.frames_in"] / 2

        # The live state agrees with the simulator's: the same calls are still up.
        snapshot = (await request(daemon.config.bus.req, {"op": "snapshot"}))["result"]
        assert len(snapshot["calls"]) == sim.model.active_calls
        assert {a["agent"] for a in snapshot["agents"]} == {a.ext for a in sim.model.agents.values()}
    finally:
        sub.close()
        await daemon.stop()
        await sim.stop()

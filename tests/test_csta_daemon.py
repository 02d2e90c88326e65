"""The CSTA driver in the daemon (`kind = "csta"`), beside the Asterisk driver: both
simulators run the same seeded call center, each through its own wire and driver into one
daemon; what the bus publishes per source is the same story, and matches the simulator's
own ground truth."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter

from csta_support import site, story
from helpers import Subscriber, free_port, request, wait_for
from ctid.daemon import Daemon
from ctid.drivers.asterisk.sim import AmiSimulator
from ctid.drivers.csta.sim import CstaSimulator
from ctid.sim import SimConfig


async def test_both_pbxs_tell_the_same_story_through_the_daemon(tmp_path):
    config = SimConfig.default()
    config.traffic_until = 300.0  # then the calls in progress finish and both call centers fall idle
    ami = AmiSimulator(config, seed=99, speed=60.0, paused=True)
    truth = []
    csta = CstaSimulator(config, seed=99, speed=60.0, paused=True)
    csta.model.sinks.append(truth.append)
    _, ami_port = await ami.start()
    _, csta_port = await csta.start()
    daemon = Daemon(site(tmp_path, ami_port, csta_port, csta))
    sub = Subscriber(daemon.config.bus.pub)
    await daemon.start()
    try:
        await wait_for(lambda: daemon.counters.get("driver.pbx1.resyncs") >= 1
                       and daemon.counters.get("driver.aes.resyncs") >= 1)
        await wait_for(lambda: daemon.counters.get("bus.subscribe") > 0)
        ami.resume()
        csta.resume()
        await asyncio.gather(ami.wait_idle(30), csta.wait_idle(30))
        await sub.drain(quiet=1.0, daemon=daemon)
        events = [e for _, e in sub.events]
        by_source = {s: [e for e in events if e["source"] == s] for s in ("pbx1", "aes")}
        told_ami, told_csta = story(by_source["pbx1"]), story(by_source["aes"])
        assert len(told_csta["calls"]) >= 10
        assert told_csta["calls"] == told_ami["calls"]
        assert told_csta["agents"] == told_ami["agents"]
        recorded = Counter(e["type"] for e in by_source["aes"] if e["type"].startswith("recording."))
        assert recorded["recording.started"] == recorded["recording.stopped"] == sum(
            1 for h in truth if h.kind == "record_start")  # every recording the model made started and stopped

        # ...and it is what the CSTA simulator's call center did.
        answered = Counter((e["queue"], e["agent"]) for e in by_source["aes"] if e["type"] == "call.established")
        assert answered == Counter((h.queue, h.agent.ext) for h in truth if h.kind == "connect")
        abandoned = Counter(e["queue"] for e in by_source["aes"] if e["type"] == "call.abandoned")
        assert abandoned == Counter(h.queue for h in truth if h.kind == "abandon")

        stats = (await request(daemon.config.bus.req, {"op": "stats"}))["result"]
        assert stats.get("driver.aes.parse_errors", 0) == 0 and stats["driver.aes.unmapped"] == 0
        assert stats["driver.aes.orphans"] == 0
        snapshot = (await request(daemon.config.bus.req, {"op": "snapshot"}))["result"]
        assert snapshot["calls"] == []  # every call ended, on both PBXs
    finally:
        sub.close()
        await daemon.stop()
        await ami.stop()
        await csta.stop()


async def test_call_and_agent_control_on_the_bus(tmp_path):
    """The control ops of docs/protocol.md, answered by the CSTA driver's requests."""
    sim = CstaSimulator(seed=5, traffic=False)
    _, port = await sim.start()
    config = dataclasses.replace(site(tmp_path, free_port(), port, sim))
    config = dataclasses.replace(config, drivers=config.drivers[1:])  # CSTA alone: requests need no `source`
    daemon = Daemon(config)
    sub = Subscriber(daemon.config.bus.pub, "call.", "agent.")
    req = daemon.config.bus.req
    await daemon.start()
    try:
        await wait_for(lambda: daemon.counters.get("driver.aes.resyncs") >= 1)
        await wait_for(lambda: daemon.counters.get("bus.subscribe") > 0)
        made = await request(req, {"op": "call.make", "agent": "1002", "number": "+15551234567"})
        call_id = made["result"]["call_id"]
        offered = await sub.until(lambda e: e["type"] == "call.offered")
        assert (offered["call_id"], offered["direction"], offered["agent"]) == (call_id, "outbound", "1002")

        sim.model.inbound("sales", "+442071234567", "Ada")
        sim.sync()
        delivered = await sub.until(lambda e: e["type"] == "call.delivered" and e["direction"] == "inbound")
        inbound, agent = delivered["call_id"], delivered["agent"]
        assert (await request(req, {"op": "call.answer", "call_id": inbound, "agent": agent})).get("result") == {}
        await sub.until(lambda e: e["type"] == "call.established" and e["call_id"] == inbound)
        assert "result" in await request(req, {"op": "call.hold", "call_id": inbound, "agent": agent})
        await sub.until(lambda e: e["type"] == "call.held" and e["call_id"] == inbound)
        again = await request(req, {"op": "call.hold", "call_id": inbound, "agent": agent})
        assert again["error"]["code"] == "rejected" and "invalidObjectState" in again["error"]["message"]
        assert "result" in await request(req, {"op": "call.retrieve", "call_id": inbound, "agent": agent})
        assert "result" in await request(req, {"op": "call.transfer", "call_id": inbound, "agent": agent,
                                                "target": "vip"})
        moved = await sub.until(lambda e: e["type"] == "call.queued" and e["queue"] == "vip")
        assert moved["call_id"] == inbound  # a new callID at the PBX, the same call on the bus

        reply = await request(req, {"op": "agent.not_ready", "agent": "1004", "reason": "Training"})
        assert "result" in reply
        not_ready = await sub.until(lambda e: e["type"] == "agent.not_ready")
        assert (not_ready["agent"], not_ready["reason"]) == ("1004", "Training")
        missing = await request(req, {"op": "call.hangup", "call_id": "nope", "agent": "1001"})
        assert missing["error"]["code"] == "no_such_call"
    finally:
        sub.close()
        await daemon.stop()
        await sim.stop()


async def test_route_requests_answered_by_the_routing_engine(tmp_path):
    """A VDN's RouteRequest goes to ctid's ACD ([routing]); its choice comes back as RouteSelect
    and the simulated PBX rings that agent. A call nobody can take waits, then gets its agent."""
    from ctid.acd.rules import parse_routing

    sim = CstaSimulator(SimConfig.default(agents=2), seed=8, traffic=False)
    _, port = await sim.start()
    errors: list[str] = []
    rules = parse_routing({"tick": 0.05, "queue": [{"name": "sales"}],
                           "agent": [{"id": a, "device": a, "queues": {"sales": 0}} for a in ("1001", "1002")]}, errors)
    assert errors == []
    config = site(tmp_path, free_port(), port, sim)
    aes = dataclasses.replace(config.drivers[1], options={**config.drivers[1].options, "route_devices": ["sales"]})
    daemon = Daemon(dataclasses.replace(config, drivers=(aes,), routing=rules))
    sub = Subscriber(daemon.config.bus.pub, "route.", "call.")
    await daemon.start()
    try:
        await wait_for(lambda: daemon.counters.get("driver.aes.resyncs") >= 1)
        await wait_for(lambda: daemon.counters.get("bus.subscribe") > 0)
        await wait_for(lambda: len(daemon.routing.engine.matcher.ready_agents("sales")) == 2)
        first = sim.model.inbound("sales", "+442071234567", "Ada", patience=600)
        sim.sync()
        selected = await sub.until(lambda e: e["type"] == "route.selected")
        delivered = await sub.until(lambda e: e["type"] == "call.delivered")
        assert delivered["agent"] == selected["agent"] and selected["call_id"] == delivered["call_id"]
        assert first.ringing is not None and first.ringing.ext == selected["agent"]
        assert daemon.counters.get("driver.aes.routes") == 1
    finally:
        sub.close()
        await daemon.stop()
        await sim.stop()

"""Routing inside the daemon, on real sockets: the `route` op over ZeroMQ, route.* events on the
bus, agent states from the daemon's events, and the FastAGI route point over TCP with the
simulator's AGI channel as Asterisk (answer at once, wait with music, hang up while waiting,
bad requests)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import tomllib

from helpers import ScriptedAmi, Subscriber, free_port, request, site_config, wait_for
from ctid.acd.rules import parse_routing
from ctid.daemon import Daemon
from ctid.drivers.asterisk.simagi import run_agi

ROUTING = """
skills = ["english", "french"]
blacklist = ["+15550000666"]
tick = 0.05
[[queue]]
name = "sales"
skills = { english = 3 }
max_wait = 30
fallback = "voicemail:sales"
[[agent]]
id = "1001"
device = "PJSIP/1001"
skills = { english = 8 }
queues = { sales = 0 }
"""


def routed_config(tmp_path, port, fastagi_port=0):
    errors: list[str] = []
    rules = parse_routing(tomllib.loads((f'fastagi = "127.0.0.1:{fastagi_port}"\n' if fastagi_port else "") + ROUTING),
                          errors)
    assert errors == []
    return dataclasses.replace(site_config(tmp_path, port, resync_timeout=1), routing=rules)


def agent_event(daemon: Daemon, etype: str, agent: str = "1001") -> None:
    # As the driver would publish it: the state applies it, routing follows the state.
    daemon.dispatch({"type": etype, "agent": agent, "queue": "sales", "ts": time.time(), "source": "asterisk",
                     "device": "PJSIP/1001"})


async def test_route_op_and_route_events_on_the_bus(tmp_path):
    pbx = ScriptedAmi()
    daemon = Daemon(routed_config(tmp_path, await pbx.start()))
    sub = Subscriber(daemon.config.bus.pub, "route.")
    await daemon.start()
    try:
        await wait_for(lambda: daemon.counters.get("bus.subscribe") > 0)
        agent_event(daemon, "agent.logged_on")
        reply = await request(daemon.config.bus.req, {"op": "route", "call_id": "c1", "queue": "sales", "caller": "+1202"})
        assert reply["result"]["action"] == "agent" and reply["result"]["device"] == "PJSIP/1001"
        seen = [await sub.recv(), await sub.recv()]
        assert [t for t, _ in seen] == ["route.hq.sales.request", "route.hq.sales.selected"]
        assert seen[1][1]["strategy"] == "longest_idle" and seen[1][1]["agent"] == "1001"
        # A call nobody is free for waits; the agent's call clearing frees the agent for it.
        reply = await request(daemon.config.bus.req, {"op": "route", "call_id": "c2", "queue": "sales"})
        assert reply["result"]["action"] == "wait"
        daemon.dispatch({"type": "call.cleared", "call_id": "c1", "agent": "1001", "queue": "sales",
                         "ts": time.time(), "source": "asterisk"})
        event = await sub.until(lambda e: e["type"] == "route.selected" and e["call_id"] == "c2")
        assert event["direction"] == "agent_ready"
        # Bad input: a clear error, counted, and the rest goes on.
        reply = await request(daemon.config.bus.req, {"op": "route", "queue": "sales"})
        assert reply["error"]["code"] == "bad_request" and "call_id" in reply["error"]["message"]
        reply = await request(daemon.config.bus.req, {"op": "route", "call_id": "c3", "queue": "nope"})
        assert reply["result"]["action"] == "fallback" and reply["result"]["target"] == "voicemail:default"
        stats = (await request(daemon.config.bus.req, {"op": "stats"}))["result"]
        assert stats["routing.errors.unknown_queue"] == 1 and stats["routing.selected"] == 2
    finally:
        sub.close()
        await daemon.stop()
        await pbx.close()


async def test_route_op_without_routing_is_not_configured(tmp_path):
    pbx = ScriptedAmi()
    daemon = Daemon(site_config(tmp_path, await pbx.start(), resync_timeout=1))
    await daemon.start()
    try:
        reply = await request(daemon.config.bus.req, {"op": "route", "call_id": "c1", "queue": "sales"})
        assert reply["error"]["code"] == "not_configured"
    finally:
        await daemon.stop()
        await pbx.close()


async def test_fastagi_route_point_answers_waits_with_music_and_notices_hangups(tmp_path):
    pbx = ScriptedAmi()
    agi_port = free_port()
    daemon = Daemon(routed_config(tmp_path, await pbx.start(), agi_port))
    await daemon.start()
    server = daemon.routing._servers[0]
    server.poll = 0.05
    try:
        agent_event(daemon, "agent.logged_on")
        ch = await run_agi("127.0.0.1", agi_port, linkedid="L1", queue="sales", caller="+12025550100")
        assert ch.variables == {"CTID_ACTION": "agent", "CTID_AGENT": "1001", "CTID_DEVICE": "PJSIP/1001",
                                "CTID_REASON": ch.variables["CTID_REASON"]}
        assert ch.commands[0] == "GET VARIABLE CHANNEL(linkedid)" and not ch.music
        # Nobody free: music on hold until the agent is free, then the answer.
        waiting = asyncio.ensure_future(run_agi("127.0.0.1", agi_port, linkedid="L2", queue="sales"))
        await wait_for(lambda: daemon.counters.get("routing.queued") == 1)
        assert not waiting.done()
        daemon.dispatch({"type": "call.cleared", "call_id": "L1", "agent": "1001", "ts": time.time(),
                         "source": "asterisk"})
        ch = await asyncio.wait_for(waiting, 5)
        assert ch.variables["CTID_AGENT"] == "1001" and "SET MUSIC ON" in ch.commands and not ch.music
        # A caller who hangs up while waiting leaves the queue: the agent does not get a ghost.
        gone = asyncio.Event()
        waiting = asyncio.ensure_future(run_agi("127.0.0.1", agi_port, linkedid="L3", queue="sales", hangup=gone))
        await wait_for(lambda: daemon.counters.get("routing.queued") == 2)
        gone.set()
        ch = await asyncio.wait_for(waiting, 5)
        assert ch.hung_up and "CTID_ACTION" not in ch.variables
        await wait_for(lambda: daemon.counters.get("fastagi.hangups") == 1)
        assert daemon.routing.engine.matcher.waiting_calls("sales") == []
        # Blacklisted and malformed requests: answered, counted, nothing else lost.
        ch = await run_agi("127.0.0.1", agi_port, linkedid="L4", queue="sales", caller="+15550000666")
        assert ch.variables["CTID_ACTION"] == "reject" and ch.variables["CTID_TARGET"] == "busy"
        ch = await run_agi("127.0.0.1", agi_port, linkedid="L5", queue="")
        assert ch.variables["CTID_ACTION"] == "fallback" and ch.variables["CTID_TARGET"] == "voicemail:default"
        assert "no queue" in ch.variables["CTID_REASON"] and daemon.counters.get("fastagi.bad_requests") == 1
        ch = await run_agi("127.0.0.1", agi_port, linkedid="L6", queue="sales", skills={"french": 99})
        assert ch.variables["CTID_ACTION"] == "fallback" and ch.variables["CTID_TARGET"] == "voicemail:sales"
    finally:
        await daemon.stop()
        await pbx.close()

"""A CRM written only from docs/protocol.md drives an agent's day against the simulated PBX:
log in, not ready and back, take a call, hold it, transfer it, dial out, hang up.

The client below uses nothing of ctid: a ZeroMQ SUB and DEALER socket and msgpack,
as the "Control" section of the protocol document describes them; on a secure bus with
a `crm` key, as its "Keys and roles" section says, and on a plain one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Any

import msgpack
import pytest
import zmq
import zmq.asyncio

from helpers import site_config, wait_for
from ctid.daemon import Daemon
from ctid.drivers.asterisk.sim import AmiSimulator
from ctid.security.keys import KeyStore, server_keys

SIM = {
    "queues": [{"name": "sales", "rate": 0, "ring_timeout": 600, "wrapup": 0},
               {"name": "support", "rate": 0, "ring_timeout": 600, "wrapup": 0}],
    "agents": [{"name": "Ann", "extension": "1001", "queues": ["support"], "no_answer": 1.0},
               {"name": "Bob", "extension": "1002", "queues": ["sales"], "dynamic": True, "no_answer": 1.0}],
    "behaviour": {"talk_min": 3600, "hold": 0, "blind_transfer": 0, "attended_transfer": 0, "record_stop": 0,
                  "outbound_answer": 1.0, "pause_every": 0},
}


class Crm:
    """The CRM side: events on SUB, requests on DEALER, replies matched by `id`."""

    def __init__(self, pub: str, req: str, *prefixes: str, keys: tuple[bytes, str, str] | None = None) -> None:
        self.ctx = zmq.asyncio.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.req = self.ctx.socket(zmq.DEALER)
        if keys is not None:  # (the daemon's public key, ours, our secret one)
            for sock in (self.sub, self.req):
                sock.curve_serverkey = keys[0]
                sock.curve_publickey, sock.curve_secretkey = keys[1].encode(), keys[2].encode()
        for prefix in prefixes:
            self.sub.setsockopt_string(zmq.SUBSCRIBE, prefix)
        self.sub.connect(pub)
        self.req.connect(req)
        self.ids = itertools.count(1)
        self.seen: list[dict[str, Any]] = []

    async def ask(self, op: str, **params: Any) -> dict[str, Any]:
        my_id = next(self.ids)
        await self.req.send(msgpack.packb({"op": op, "id": my_id, **params}))
        while True:
            reply = msgpack.unpackb(await asyncio.wait_for(self.req.recv(), 10))
            if reply["id"] == my_id:
                return reply

    async def event(self, type_: str, **match: Any) -> dict[str, Any]:
        """The next event of this type whose fields match (earlier ones seen are searched first)."""
        for event in self.seen:
            if event["type"] == type_ and all(event.get(k) == v for k, v in match.items()):
                self.seen.remove(event)
                return event
        while True:
            _, body = await asyncio.wait_for(self.sub.recv_multipart(), 10)
            event = msgpack.unpackb(body)
            if event["type"] == type_ and all(event.get(k) == v for k, v in match.items()):
                return event
            self.seen.append(event)

    def close(self) -> None:
        self.sub.close(0)
        self.req.close(0)
        self.ctx.term()


def secure_config(tmp_path, port):
    """The test site with `[bus] security = "curve"` and the daemon's key under tmp_path."""
    cfg = site_config(tmp_path, port, resync_timeout=5)
    bus = dataclasses.replace(cfg.bus, security="curve", server_key=str(tmp_path / "keys" / "server.key_secret"))
    return dataclasses.replace(cfg, bus=bus)


async def start(tmp_path, security="plain"):
    sim = AmiSimulator(SIM, traffic=False, speed=20)
    _, port = await sim.start()
    config = secure_config(tmp_path, port) if security == "curve" else site_config(tmp_path, port, resync_timeout=5)
    daemon = Daemon(config)
    await daemon.start()
    await wait_for(lambda: daemon.counters.get("driver.asterisk.resyncs") >= 1)
    return sim, daemon


def caller(sim: AmiSimulator, queue: str, number: str) -> None:
    """The PSTN side: a customer dials in (the simulator's own traffic is off)."""
    sim.sync()
    sim.model.inbound(queue, number, "Customer", patience=3600)  # waits as long as the test needs
    sim.sync()  # the queue rings its agent now, not at the simulator's next tick


@pytest.mark.parametrize("security", ["curve", "plain"])
async def test_a_crm_from_the_protocol_doc_runs_an_agent_day(tmp_path, security):
    sim, daemon = await start(tmp_path, security)
    keys = None
    if security == "curve":  # what `ctid keys new --role crm` hands the CRM's administrator
        info, secret = KeyStore(daemon.config.database.url).new("crm", "the CRM")
        keys = (server_keys(daemon.config.bus.server_key)[0], info.key, secret)
    crm = Crm(daemon.config.bus.pub, daemon.config.bus.req, "agent.hq.1002.", "call.", keys=keys)
    try:
        await wait_for(lambda: daemon.counters.get("bus.subscribe") >= 2)
        # Log in and take a break.
        assert (await crm.ask("agent.login", agent="1002", queues=["sales"], request_id="login-1"))["ok"]
        await crm.event("agent.logged_on", agent="1002", queue="sales")
        assert (await crm.ask("agent.not_ready", agent="1002", reason="lunch"))["ok"]
        assert (await crm.event("agent.not_ready", agent="1002"))["reason"] == "lunch"
        assert (await crm.ask("agent.ready", agent="1002"))["ok"]
        await crm.event("agent.ready", agent="1002")

        # A customer calls: the agent's phone rings, the CRM answers it.
        caller(sim, "sales", "+442079460123")
        ring = await crm.event("call.delivered", agent="1002")
        call_id = ring["call_id"]
        assert ring["caller"] == "+442079460123"
        assert (await crm.ask("call.answer", call_id=call_id, agent="1002"))["ok"]
        await crm.event("call.established", call_id=call_id, agent="1002")

        # Hold and back.
        assert (await crm.ask("call.hold", call_id=call_id, agent="1002"))["ok"]
        await crm.event("call.held", call_id=call_id)
        assert (await crm.ask("call.retrieve", call_id=call_id, agent="1002"))["ok"]
        await crm.event("call.retrieved", call_id=call_id)

        # Blind transfer to the support queue: Ann's phone rings with the same call.
        assert (await crm.ask("call.transfer", call_id=call_id, agent="1002", target="support"))["ok"]
        moved = await crm.event("call.transferred", call_id=call_id)
        assert moved["kind"] == "blind" and moved["target"] == "support"
        assert (await crm.event("call.delivered", call_id=call_id))["agent"] == "1001"

        # Click-to-dial: the reply names the call the events then describe; a retry dials nothing more.
        made = await crm.ask("call.make", agent="1002", number="02079460999", request_id="dial-7")
        assert made["ok"], made
        out_id = made["result"]["call_id"]
        again = await crm.ask("call.make", agent="1002", number="02079460999", request_id="dial-7")
        assert again["result"] == {"call_id": out_id}
        offered = await crm.event("call.offered", call_id=out_id)
        assert offered["direction"] == "outbound" and offered["called"] == "02079460999"
        await crm.event("call.established", call_id=out_id)
        assert sum(1 for c in sim.model.calls.values() if c.direction == "outbound") == 1

        # Hang up: the call is over.
        assert (await crm.ask("call.hangup", call_id=out_id, agent="1002"))["ok"]
        cleared = await crm.event("call.cleared", call_id=out_id)
        assert cleared["disposition"] == "answered"
        assert (await crm.ask("agent.logout", agent="1002"))["ok"]
        await crm.event("agent.logged_off", agent="1002", queue="sales")
    finally:
        crm.close()
        await daemon.stop()
        await sim.stop()

"""The bus on real ZeroMQ sockets: envelope and topics, request replies and errors, the Clone pattern."""

from __future__ import annotations

import asyncio

import msgpack
import zmq
import zmq.asyncio

from helpers import Subscriber, free_port, request, site_config, transcript, wait_for
from ctid.bus import Bus, RequestError
from ctid.daemon import Daemon
from ctid.drivers.asterisk.replay import ReplayServer
from ctid.events import topic_for
from ctid.metrics import Counters


def endpoints() -> tuple[str, str]:
    return f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"


def test_topics():
    event = {"type": "call.established", "site": "hq", "queue": "sales", "agent": "1001"}
    assert topic_for(event) == "call.hq.sales.1001.established"
    assert topic_for({"type": "call.offered", "site": "hq", "queue": None}) == "call.hq.-.-.offered"
    assert topic_for({"type": "agent.not_ready", "site": "hq", "agent": "10.01 x"}) == "agent.hq.10_01_x.not_ready"
    assert topic_for({"type": "system.driver_up", "site": "hq", "source": "pbx1"}) == "system.hq.pbx1.driver_up"


async def test_prefix_subscriptions_and_envelope():
    pub, req = endpoints()
    counters = Counters()
    bus = Bus("hq", pub, req, counters)
    bus.start()
    sales = Subscriber(pub, "call.hq.sales.")
    agent = Subscriber(pub, "agent.hq.1001.")
    everything = Subscriber(pub)
    try:
        await wait_for(lambda: counters.get("bus.subscribe") >= 3)
        bus.publish({"type": "call.queued", "ts": 1.0, "source": "asterisk", "call_id": "c1", "queue": "sales", "agent": None})
        bus.publish({"type": "call.queued", "ts": 2.0, "source": "asterisk", "call_id": "c2", "queue": "sales2", "agent": None})
        bus.publish({"type": "agent.ready", "ts": 3.0, "source": "asterisk", "agent": "1001", "queue": None})
        topic, event = await sales.recv()
        assert topic == "call.hq.sales.-.queued" and event["call_id"] == "c1"
        assert set(event) >= {"v", "seq", "epoch", "ts", "site", "source", "type"}
        assert (event["v"], event["seq"], event["site"], event["epoch"]) == (1, 1, "hq", bus.epoch)
        topic, event = await agent.recv()
        assert topic == "agent.hq.1001.ready" and event["seq"] == 3
        seqs = [(await everything.recv())[1]["seq"] for _ in range(3)]
        assert seqs == [1, 2, 3]
        await sales.drain(0.2)
        assert len(sales.events) == 1  # `sales.` does not match `sales2`
        await wait_for(lambda: counters.get("bus.subscribers") == 3)
    finally:
        for s in (sales, agent, everything):
            s.close()
        await bus.close()


async def test_requests_reply_ok_or_a_clear_error():
    pub, req = endpoints()
    bus = Bus("hq", pub, req, Counters())

    def fail(request):
        raise RequestError("no_such_call", "call x is not live")

    async def slow(request):
        await asyncio.sleep(0.01)
        return {"slept": True}

    bus.register_op("fail", fail, "always fails")
    bus.register_op("slow", slow, "async op")
    bus.register_op("crash", lambda r: 1 / 0, "raises")
    bus.start()
    try:
        assert await request(req, {"op": "ping", "id": 7}) == {"ok": True, "result": {"pong": True, "epoch": bus.epoch, "seq": 0}, "id": 7}
        assert set((await request(req, {"op": "ops"}))["result"]) >= {"ping", "ops", "fail", "slow"}
        assert (await request(req, {"op": "slow", "id": "a"}))["result"] == {"slept": True}
        reply = await request(req, {"op": "nope", "id": 1})
        assert reply["ok"] is False and reply["error"]["code"] == "unknown_op" and reply["id"] == 1
        reply = await request(req, {"op": "fail"})
        assert reply["error"] == {"code": "no_such_call", "message": "call x is not live"}
        reply = await request(req, {"op": "crash"})
        assert reply["error"]["code"] == "internal" and "ZeroDivisionError" in reply["error"]["message"]
        reply = await request(req, None, raw=b"\xc1\xc1 not msgpack")
        assert reply["error"]["code"] == "bad_request"
        reply = await request(req, [1, 2, 3])
        assert reply["error"]["code"] == "bad_request"
        reply = await request(req, {"op": 5})
        assert reply["error"]["code"] == "bad_request"
        # A REQ client (empty delimiter frame) works too.
        ctx = zmq.asyncio.Context()
        sock = ctx.socket(zmq.REQ)
        sock.connect(req)
        await sock.send(msgpack.packb({"op": "ping"}))
        assert msgpack.unpackb(await asyncio.wait_for(sock.recv(), 5))["ok"] is True
        sock.close(0)
        ctx.term()
        # The bus still serves after all that.
        assert (await request(req, {"op": "ping"}))["ok"] is True
        assert bus.counters.get("bus.bad_requests") == 4
    finally:
        await bus.close()


async def test_clone_pattern_snapshot_then_updates_has_no_gap_and_no_duplicate(tmp_path):
    """Subscribe, snapshot mid-stream, apply only seq > N: the mirror ends equal to the daemon."""
    server = ReplayServer(transcript("c-mixed-day"), speed=25.0)
    _, port = await server.start()
    daemon = Daemon(site_config(tmp_path, port, resync_timeout=0.3))
    await daemon.start()
    sub = Subscriber(daemon.config.bus.pub)
    try:
        await wait_for(lambda: daemon.counters.get("bus.subscribe") > 0)
        await wait_for(lambda: len(daemon.state.calls) >= 3, timeout=30)  # mid-stream, calls live
        reply = await request(daemon.config.bus.req, {"op": "snapshot"})
        assert reply["ok"]
        snap = reply["result"]
        assert snap["calls"] and snap["agents"] and snap["queues"]
        n = snap["seq"]
        live = {c["call_id"] for c in snap["calls"]}
        offered = {q["queue"]: q["offered"] for q in snap["queues"]}
        await wait_for(lambda: server.sent.is_set(), timeout=60)
        await sub.drain(quiet=1.0, daemon=daemon)
        after = [e for _, e in sub.events if e["seq"] > n]
        assert after and after[0]["seq"] == n + 1
        assert [e["seq"] for e in after] == list(range(n + 1, n + 1 + len(after)))
        for e in after:
            if e["type"] == "call.offered":
                assert e["call_id"] not in live, "offered twice"
                live.add(e["call_id"])
            elif e["type"] == "call.cleared":
                assert e["call_id"] in live, "cleared a call the mirror never had"
                live.remove(e["call_id"])
            elif e["type"] == "call.queued":
                offered[e["queue"]] = offered.get(e["queue"], 0) + 1
        final = daemon.state.snapshot()
        assert live == {c["call_id"] for c in final["calls"]}
        assert offered == {q["queue"]: q["offered"] for q in final["queues"]} == {"sales": 18, "support": 15, "vip": 8}
    finally:
        sub.close()
        await daemon.stop()
        await server.close()

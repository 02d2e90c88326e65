"""The CSTA link against the CSTA simulator on real sockets: session, monitors, resync,
call control, negative answers, bad input on the wire, reconnect, routing."""

from __future__ import annotations

import asyncio
import struct

import pytest

from csta_support import QUEUES, STATIONS, Harness, harness
from helpers import wait_for
from ctid.drivers.csta import requests as rq
from ctid.drivers.csta.protocol import CstaError, encode
from ctid.drivers.csta.sim import CstaSimulator

async def test_session_monitors_and_resync():
    h = await harness()
    try:
        [client] = h.sim.clients
        assert set(client.monitors) == {*STATIONS, *QUEUES}
        assert h.link.session_id == client.session
        logged_on = {(e["agent"], e["queue"]) for e in h.types("agent.logged_on")}
        expected = {(a.ext, q) for a in h.sim.model.agents.values() for q in a.members}
        assert logged_on == expected and expected
        assert h.types("system.resynced")[0]["calls"] == 0
    finally:
        await h.close()
    assert not h.sim.clients  # StopApplicationSession closed the session


async def test_wrong_password_is_refused_counted_and_retried():
    sim = CstaSimulator(seed=1, traffic=False, secret="right")
    _, port = await sim.start()
    h = Harness(sim, port, secret="wrong")
    try:
        await wait_for(lambda: h.counters.get("driver.aes.reconnects") >= 2, 5)
        assert h.counters.get("driver.aes.negative_acks") >= 2
        assert not h.link.connected.is_set() and not h.types("system.driver_up")
    finally:
        await h.close()


async def test_a_call_through_call_control():
    h = await harness()
    model = h.sim.model
    try:
        call = model.inbound("sales", "+442071234567", "Ada")
        h.sim.sync()
        await wait_for(lambda: h.types("call.delivered"), 5)
        delivered = h.types("call.delivered")[0]
        agent, csta_id = delivered["agent"], delivered["call_id"]
        await h.link.request(rq.answer_call(csta_id, agent))
        await wait_for(lambda: h.types("call.established"), 5)
        assert h.types("call.established")[0]["agent"] == agent
        await h.link.request(rq.hold_call(csta_id, agent))
        await h.link.request(rq.retrieve_call(csta_id, agent))
        await wait_for(lambda: h.types("call.retrieved"), 5)
        answer = await h.link.request(rq.consultation_call(csta_id, agent, "2001"))
        consult_id = answer["initiatedCall"]["callID"]
        assert consult_id != csta_id
        await h.link.request(rq.transfer_call(csta_id, consult_id, agent))
        await wait_for(lambda: h.types("call.transferred"), 5)
        transferred = h.types("call.transferred")[0]
        assert (transferred["kind"], transferred["target"], transferred["call_id"]) == ("attended", "2001", csta_id)
        await h.link.request(rq.clear_connection(consult_id, "2001"))  # the transferred caller's other side hangs up
        await wait_for(lambda: h.types("call.cleared"), 5)
        assert h.types("call.cleared")[0]["call_id"] == csta_id  # one call_id across the consultation
        assert call.state == "ended" and not h.mapper.calls
    finally:
        await h.close()


async def test_make_call_and_agent_state():
    h = await harness()
    try:
        answer = await h.link.request(rq.make_call("1002", "+15551234567"))
        csta_id = answer["callingDevice"]["callID"]
        await wait_for(lambda: h.types("call.offered"), 5)
        offered = h.types("call.offered")[0]
        assert (offered["call_id"], offered["direction"], offered["called"], offered["agent"]) == (
            csta_id, "outbound", "+15551234567", "1002")
        await h.link.request(rq.set_agent_state("1003", "notReady", "1003", "sales", h.sim.renderer.reason_code("Lunch")))
        await wait_for(lambda: h.types("agent.not_ready"), 5)
        not_ready = h.types("agent.not_ready")[0]
        assert (not_ready["agent"], not_ready["queue"], not_ready["reason"]) == ("1003", "sales", "Lunch")
        await h.link.request(rq.set_agent_state("1003", "ready", "1003", "sales"))
        await wait_for(lambda: h.types("agent.ready"), 5)
    finally:
        await h.close()


@pytest.mark.parametrize("req, code", [
    (rq.hold_call("424242", "1001"), ("operation", "invalidCSTACallIdentifier")),
    (rq.answer_call("1", "9999"), ("operation", "invalidCSTADeviceIdentifier")),
    (rq.answer_call("1", "1001"), ("stateIncompatibility", "invalidObjectState")),  # nothing is ringing
    (rq.make_call("1001", ""), ("operation", "invalidCalledDevice")),
    (rq.conference_call("1", "2", "1001"), ("operation", "invalidFeature")),
    (("FlyToTheMoon", {}, rq.NS_CSTA), ("operation", "invalidFeature")),
])
async def test_negative_answers(req, code):
    h = await harness()
    try:
        with pytest.raises(CstaError) as info:
            await h.link.request(req)
        assert (info.value.category, info.value.code) == code
        assert h.counters.get("driver.aes.negative_acks") == 1
        assert h.link.connected.is_set()  # a refused request costs nothing else
    finally:
        await h.close()


async def test_an_unknown_device_costs_only_its_monitor():
    h = await harness(stations=("1001", "4711"), acd_devices=("sales",))
    try:
        assert h.counters.get("driver.aes.monitor_failures") == 1
        assert set(h.link.monitors.values()) == {"1001", "sales"}
    finally:
        await h.close()


def _xml(name: str, inner: str, ns: str = rq.NS_CSTA) -> bytes:
    return f'<{name} xmlns="{ns}">{inner}</{name}>'.encode()


def _frame(body: bytes, length: int | None = None) -> bytes:
    return struct.pack(">HH4s", 0, len(body) + 8 if length is None else length, b"9999") + body


async def test_bad_input_is_counted_and_the_link_comes_back():
    h = await harness()
    try:
        [client] = h.sim.clients
        bomb = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
                + _xml("DeliveredEvent", "<cause>&b;</cause>"))
        good = encode("AgentLoggedOffEvent", {"monitorCrossRefID": "1", "agentDevice": {"deviceIdentifier": "1001"},
                                              "agentID": "1001", "acdGroup": "sales"})
        client.write(_frame(bomb) + _frame(_xml("DeliveredEvent", "", "urn:wrong")) + _frame(b"<broken")
                     + encode("MysteryEvent", {"monitorCrossRefID": "1"}) + good)
        await wait_for(lambda: h.types("agent.logged_off"), 5)
        assert h.counters.get("driver.aes.parse_errors") == 3
        assert h.mapper.unknown == 1  # the unknown event, counted
        assert h.counters.get("driver.aes.reconnects") == 0
        # a header that cannot be one: what came before it is kept, then the link starts over
        client.write(good.replace(b"sales", b"vip__") + b"\x00\x07garbage-garbage")
        await wait_for(lambda: h.counters.get("driver.aes.resyncs") >= 2, 5)
        assert [e["queue"] for e in h.types("agent.logged_off")] == ["sales", "vip__"]
        assert h.counters.get("driver.aes.reconnects") == 1 and h.types("system.driver_down")
        assert len(h.sim.clients) == 1 and next(iter(h.sim.clients)) is not client
    finally:
        await h.close()


async def test_route_request_answered_with_the_configured_route():
    h = await harness(route_devices=("sales",))
    try:
        [client] = h.sim.clients
        assert list(client.routes.values()) == ["sales"]
        call = h.sim.model.inbound("sales", "+4420", "Ada")  # route-point mode: the VDN asks ctid
        h.sim.sync()
        await wait_for(lambda: h.types("call.delivered"), 5)
        request, selected = h.types("route.request")[0], h.types("route.selected")[0]
        assert (request["queue"], request["caller"], request["call_id"]) == ("sales", "+4420", selected["call_id"])
        assert (selected["device"], selected["strategy"]) == ("1003", "default")
        assert call.ringing is not None and call.ringing.ext == "1003"
        assert h.types("call.delivered")[0]["agent"] == "1003" and h.counters.get("driver.aes.routes") == 1
        # A RouteSelect for a request the server does not have is refused, and counted.
        with pytest.raises(CstaError, match="invalidCrossRefID"):
            await h.link.request(rq.route_select(next(iter(client.routes)), "4242", "1001"))
    finally:
        await h.close()


async def test_keepalive_resets_the_session_timer():
    h = await harness(keepalive=0.1)
    try:
        await asyncio.sleep(0.5)
        assert h.link.connected.is_set() and h.counters.get("driver.aes.reconnects") == 0
        h.sim.session_duration = 180
        [client] = h.sim.clients
        client.session = "EXPIRED"  # the server forgot the session: the next reset is refused
        await wait_for(lambda: h.counters.get("driver.aes.reconnects") >= 1, 5)
        await wait_for(lambda: h.counters.get("driver.aes.resyncs") >= 2, 5)
    finally:
        await h.close()


def _certificates(tmp_path):
    """A CA and a server certificate for 127.0.0.1 it signed (openssl CLI)."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make test certificates")
    run = lambda *args: subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=ctid test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=aes")
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"


async def test_tls_with_a_ca_file(tmp_path):
    import ssl

    ca, cert, key = _certificates(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    sim = CstaSimulator(seed=3, traffic=False)
    _, port = await sim.start(ssl=server)
    h = Harness(sim, port, ca_file=str(ca))
    try:
        await wait_for(lambda: h.counters.get("driver.aes.resyncs") >= 1, 10)
        assert h.types("system.resynced")
    finally:
        await h.close()
    # A server whose certificate the CA did not sign is refused: no session, the link retries.
    other = tmp_path / "other"
    other.mkdir()
    other_ca, _, _ = _certificates(other)
    sim = CstaSimulator(seed=3, traffic=False)
    _, port = await sim.start(ssl=server)
    h = Harness(sim, port, ca_file=str(other_ca))
    try:
        await wait_for(lambda: h.counters.get("driver.aes.reconnects") >= 1, 10)
        assert not h.types("system.driver_up")
    finally:
        await h.close()


async def test_route_end_cancels_the_pending_answer():
    class Undecided:  # a chooser that never makes up its mind
        name, publishes = "undecided", False

        def __init__(self) -> None:
            self.cancelled = asyncio.Event()

        async def choose(self, request):
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise

    h = await harness(route_devices=("sales",))
    h.link.router = chooser = Undecided()
    try:
        call = h.sim.model.inbound("sales", "+4420", "Ada")
        h.sim.sync()
        await wait_for(lambda: h.types("route.request"), 5)
        assert len(h.link._routes) == 1
        h.sim.model.hangup(call, "caller")  # the caller gives up while the route point waits
        h.sim.sync()
        await asyncio.wait_for(chooser.cancelled.wait(), 5)
        assert h.link._routes == {} and not h.types("route.selected")
        assert h.types("call.abandoned")
    finally:
        await h.close()


async def test_a_frame_cut_by_the_end_of_the_connection_is_counted():
    h = await harness()
    try:
        [client] = h.sim.clients
        good = encode("AgentLoggedOffEvent", {"monitorCrossRefID": "1", "agentDevice": {"deviceIdentifier": "1001"},
                                              "agentID": "1001", "acdGroup": "sales"})
        client.write(good + good[:30])
        await wait_for(lambda: h.types("agent.logged_off"), 5)  # what arrived whole is not lost
        client.close()
        await wait_for(lambda: h.counters.get("driver.aes.resyncs") >= 2, 5)  # back, with a new session
        assert h.counters.get("driver.aes.parse_errors") == 1 and h.counters.get("driver.aes.reconnects") == 1
    finally:
        await h.close()


async def test_cli_serves_for_its_duration_and_refuses_bad_queues(capsys):
    from ctid.cli import build_parser
    from ctid.drivers.csta import sim as csta_sim

    args = build_parser().parse_args(["sim", "csta", "--port", "0", "--seed", "3", "--speed", "20", "--duration",
                                      "0.3", "--agents", "4", "--queues", "sales:rrmemory:600", "vip"])
    assert await csta_sim.main(args) == 0
    out = capsys.readouterr().out
    assert "ctid sim csta: CSTA XML on 127.0.0.1:" in out and "seed 3" in out and "devices 1001" in out
    bad = build_parser().parse_args(["sim", "csta", "--port", "0", "--queues", "sales:bogus"])
    assert await csta_sim.main(bad) == 2
    assert "unknown strategy" in capsys.readouterr().err

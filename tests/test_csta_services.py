"""The CSTA driver's DTMF, call data and supervisor services: GenerateDigits, AssociateData
and SingleStepConferenceCall, on their bytes, against the simulator through a real link, and
from the bus through the daemon (`call.send_dtmf`, `call.set_data`, `monitor.*`)."""

from __future__ import annotations

import dataclasses

import pytest

from csta_support import Harness, harness, site
from helpers import Subscriber, free_port, request, wait_for
from ctid.daemon import Daemon
from ctid.drivers import ControlError
from ctid.drivers.csta import requests as rq
from ctid.drivers.csta.control import CstaControl
from ctid.drivers.csta.protocol import CstaError, FrameParser, encode
from ctid.drivers.csta.sim import CstaSimulator
from ctid.sim.model import Call

# -- the requests, no I/O ------------------------------------------------------------------------


def decoded(req: rq.Request) -> tuple[str, dict]:
    name, fields, ns = req
    [message] = FrameParser().feed(encode(name, fields, "0009", ns))
    return message.name, message.body


def test_generate_digits_bytes_and_digits_checked():
    name, fields, ns = rq.generate_digits("12", "1001", "12*#AD")
    assert encode(name, fields, "0007", ns)[8:] == (
        b'<?xml version="1.0" encoding="UTF-8"?><GenerateDigits xmlns="http://www.ecma-international.org/standards/'
        b'ecma-323/csta/ed3"><connectionToSendDigits><callID>12</callID><deviceID>1001</deviceID>'
        b'</connectionToSendDigits><charactersToSend>12*#AD</charactersToSend></GenerateDigits>')
    for bad in ("", "12E", "1 2", "a", "1" * 33):
        with pytest.raises(ValueError, match="0-9 \\* # A-D"):
            rq.generate_digits("12", "1001", bad)


def test_associate_data_carries_the_map_as_correlator_octets():
    name, body = decoded(rq.associate_data("12", "+4420", {"ticket": "A&B=1", "vip": ""}))
    assert name == "AssociateData" and body["existingCall"] == {"callID": "12", "deviceID": "+4420"}
    assert bytes.fromhex(body["correlatorData"]) == b"ticket=A%26B%3D1&vip="
    assert rq.read_correlator(body["correlatorData"]) == {"ticket": "A&B=1", "vip": ""}
    assert len(rq.correlator({"k": "x" * 30})) == 32  # exactly the limit is fine


def test_oversize_call_data_is_refused_not_truncated():
    with pytest.raises(ValueError, match="33 octets .* at most 32"):
        rq.correlator({"k": "x" * 31})
    with pytest.raises(ValueError, match="at most 32"):
        rq.read_correlator("41" * 33)
    for bad in ("zz", "41"):  # not hex; hex but not k=v
        with pytest.raises(ValueError):
            rq.read_correlator(bad)


def test_single_step_conference_participation():
    assert decoded(rq.single_step_conference("12", "1001", "3001", "listen")) == ("SingleStepConferenceCall", {
        "activeCall": {"callID": "12", "deviceID": "1001"}, "deviceToJoin": "3001", "participationType": "silent"})
    assert decoded(rq.single_step_conference("12", "1001", "3001", "barge"))[1]["participationType"] == "active"
    with pytest.raises(ValueError, match="whisper"):
        rq.single_step_conference("12", "1001", "3001", "whisper")


@pytest.mark.parametrize("answer", ["GenerateDigitsResponse", "AssociateDataResponse",
                                    "SingleStepConferenceCallResponse"])
def test_positive_answers_read_and_error_codes_raise(answer):
    [ok] = FrameParser().feed(encode(answer, {}, "0004"))
    assert rq.check_answer(answer.removesuffix("Response"), ok) == {}
    [error] = FrameParser().feed(encode("CSTAErrorCode", {"operation": "invalidCSTAConnectionIdentifier"}, "0004"))
    with pytest.raises(CstaError) as info:
        rq.check_answer(answer.removesuffix("Response"), error)
    assert (info.value.category, info.value.code) == ("operation", "invalidCSTAConnectionIdentifier")


# -- the simulator answers them as a server would ----------------------------------------------------


async def ringing(h: Harness) -> tuple[Call, str, str]:
    """A caller of the simulator's sales queue, ringing at an agent: (the model's call, the
    agent, the call's callID as the driver reports it)."""
    call = h.sim.model.inbound("sales", "+442071234567", "Ada")
    h.sim.sync()
    await wait_for(lambda: h.types("call.delivered"), 5)
    delivered = h.types("call.delivered")[0]
    return call, delivered["agent"], delivered["call_id"]


async def test_simulator_acts_on_good_requests_and_refuses_bad_ones():
    h = await harness()
    try:
        call, agent, cid = await ringing(h)
        other = next(s for s in h.sim.model.agents if s != agent)

        async def refused(req: rq.Request) -> tuple[str, str]:
            with pytest.raises(CstaError) as info:
                await h.link.request(req)
            return info.value.category, info.value.code

        # Ringing, not talking: no digits, no join.
        assert await refused(rq.generate_digits(cid, agent, "1")) == ("stateIncompatibility", "invalidObjectState")
        await h.link.request(rq.answer_call(cid, agent))
        await wait_for(lambda: h.types("call.established"), 5)

        assert await h.link.request(rq.generate_digits(cid, agent, "123#")) == {}
        await h.link.request(rq.hold_call(cid, agent))  # held: no digits, no join, until it is retrieved
        assert await refused(rq.generate_digits(cid, agent, "1")) == ("stateIncompatibility", "invalidObjectState")
        assert await refused(rq.single_step_conference(cid, agent, "3001", "listen")) == (
            "stateIncompatibility", "invalidObjectState")
        await h.link.request(rq.retrieve_call(cid, agent))
        assert await refused(rq.generate_digits("999", agent, "1")) == ("operation", "invalidCSTACallIdentifier")
        assert await refused(rq.generate_digits(cid, other, "1")) == ("operation", "invalidCSTAConnectionIdentifier")
        bad_digits = ("GenerateDigits", {"connectionToSendDigits": {"callID": cid, "deviceID": agent},
                                         "charactersToSend": "12x"}, rq.NS_CSTA)
        assert await refused(bad_digits) == ("operation", "valueOutOfRange")

        assert await h.link.request(rq.associate_data(cid, "+442071234567", {"order": "77"})) == {}
        assert h.sim.renderer.legs[call.id].correlator == {"order": "77"}
        assert await refused(rq.associate_data(cid, other, {"a": "1"})) == ("operation", "invalidCSTAConnectionIdentifier")
        too_long = ("AssociateData", {"existingCall": {"callID": cid, "deviceID": agent},
                                      "correlatorData": "61" * 33}, rq.NS_CSTA)
        assert await refused(too_long) == ("operation", "valueOutOfRange")

        answer = await h.link.request(rq.single_step_conference(cid, agent, "3001", "listen"))
        assert answer["conferencedCall"] == {"callID": cid, "deviceID": "3001"}
        await wait_for(lambda: h.types("call.conferenced"), 5)
        joined = h.types("call.conferenced")[0]
        assert (joined["call_id"], joined["agent"], joined["target"], joined["x"]) == (
            cid, agent, "3001", {"participation": "silent"})
        assert await refused(rq.single_step_conference(cid, agent, "3001", "barge")) == (
            "operation", "invalidCSTADeviceIdentifier")  # already on the call
        no_type = ("SingleStepConferenceCall", {"activeCall": {"callID": cid, "deviceID": agent},
                                                "deviceToJoin": "3002", "participationType": "loud"}, rq.NS_CSTA)
        assert await refused(no_type) == ("operation", "valueOutOfRange")

        rendered: list = []
        take = h.sim.renderer.take
        h.sim.renderer.take = lambda: (out := take(), rendered.extend(out))[0]  # what the server sends
        h.sim.model.hangup(call, "caller")
        h.sim.sync()
        await wait_for(lambda: h.types("call.cleared"), 5)
        dropped = [f["droppedConnection"]["deviceID"] for _, name, f in rendered if name == "ConnectionClearedEvent"]
        assert "3001" in dropped  # the supervisor's connection goes with the call
        assert h.counters.get("driver.aes.unmapped") == 0 and h.mapper.unknown == 0 and h.mapper.orphans == 0
        assert h.link.connected.is_set()  # the refusals cost nothing else
    finally:
        await h.close()


async def test_control_refuses_before_sending_what_csta_cannot_say():
    h = await harness()
    control = CstaControl(h.link, h.mapper)
    try:
        call, agent, cid = await ringing(h)
        with pytest.raises(ControlError) as info:
            await control.send_dtmf(cid, agent, "1")
        assert info.value.code == "invalid_state"  # ringing: not on the call yet
        with pytest.raises(ControlError) as info:
            await control.monitor("3001", agent, "listen")
        assert info.value.code == "invalid_state" and "not on a call" in info.value.message
        await control.answer(cid, agent)
        await wait_for(lambda: h.types("call.established"), 5)
        before = h.sim.renderer.legs[call.id].correlator
        with pytest.raises(ControlError) as info:
            await control.set_data(cid, {"note": "x" * 40})
        assert info.value.code == "not_supported" and "at most 32" in info.value.message
        with pytest.raises(ControlError) as info:
            await control.send_dtmf(cid, agent, "12E")
        assert info.value.code == "bad_request" and "0-9 * # A-D" in info.value.message
        with pytest.raises(ControlError) as info:
            await control.monitor("3001", agent, "whisper")
        assert info.value.code == "not_supported" and "whisper" in info.value.message
        assert h.sim.renderer.legs[call.id].correlator == before and control.data == {}

        await control.send_dtmf(cid, agent, "9a")  # lower case a-d pass the bus check; sent upper case
        await control.set_data(cid, {"a": "1"})
        await control.set_data(cid, {"b": "2"})  # AssociateData replaces: the whole map goes again
        assert h.sim.renderer.legs[call.id].correlator == {"a": "1", "b": "2"}
        with pytest.raises(ControlError) as info:
            await control.set_data(cid, {"c": "x" * 24})  # fits alone, not with what the call has
        assert info.value.code == "not_supported" and control.data[cid] == {"a": "1", "b": "2"}
    finally:
        await h.close()


# -- from the bus, through the daemon ----------------------------------------------------------------


async def test_dtmf_data_and_monitor_on_the_bus(tmp_path):
    sim = CstaSimulator(seed=5, traffic=False)
    _, port = await sim.start()
    config = site(tmp_path, free_port(), port, sim)
    daemon = Daemon(dataclasses.replace(config, drivers=config.drivers[1:]))  # CSTA alone
    sub = Subscriber(daemon.config.bus.pub, "call.")
    req = daemon.config.bus.req
    await daemon.start()
    try:
        await wait_for(lambda: daemon.counters.get("driver.aes.resyncs") >= 1)
        await wait_for(lambda: daemon.counters.get("bus.subscribe") > 0)
        call = sim.model.inbound("sales", "+442071234567", "Ada")
        sim.sync()
        delivered = await sub.until(lambda e: e["type"] == "call.delivered")
        cid, agent = delivered["call_id"], delivered["agent"]
        idle = next(a for a in sim.model.agents if a != agent)
        early = await request(req, {"op": "call.send_dtmf", "call_id": cid, "agent": agent, "digits": "1"})
        assert early["error"]["code"] == "invalid_state"
        assert "result" in await request(req, {"op": "call.answer", "call_id": cid, "agent": agent})
        await sub.until(lambda e: e["type"] == "call.established")

        dtmf = await request(req, {"op": "call.send_dtmf", "call_id": cid, "agent": agent, "digits": "0*"})
        assert dtmf.get("result") == {}
        bad = await request(req, {"op": "call.send_dtmf", "call_id": cid, "agent": agent, "digits": "12E"})
        assert bad["error"]["code"] == "bad_request" and "digits" in bad["error"]["message"]
        elsewhere = await request(req, {"op": "call.send_dtmf", "call_id": cid, "agent": idle, "digits": "1"})
        assert elsewhere["error"]["code"] == "invalid_state" and "not on call" in elsewhere["error"]["message"]

        assert (await request(req, {"op": "call.set_data", "call_id": cid, "data": {"order": "A-77"}})).get(
            "result") == {}
        data = await sub.until(lambda e: e["type"] == "call.data")
        assert (data["call_id"], data["data"]) == (cid, {"order": "A-77"})
        assert sim.renderer.legs[call.id].correlator == {"order": "A-77"}  # the PBX holds it too
        big = await request(req, {"op": "call.set_data", "call_id": cid, "data": {"note": "x" * 64}})
        assert big["error"]["code"] == "not_supported" and "at most 32" in big["error"]["message"]

        listen = await request(req, {"op": "monitor.listen", "agent": agent, "device": "3001"})
        assert listen.get("result") == {}
        joined = await sub.until(lambda e: e["type"] == "call.conferenced")
        assert (joined["call_id"], joined["target"], joined["x"]["participation"]) == (cid, "3001", "silent")
        barge = await request(req, {"op": "monitor.barge", "agent": agent, "device": "3002"})
        assert barge.get("result") == {}
        barged = await sub.until(lambda e: e["type"] == "call.conferenced" and e["target"] == "3002")
        assert barged["x"]["participation"] == "active"
        whisper = await request(req, {"op": "monitor.whisper", "agent": agent, "device": "3003"})
        assert whisper["error"]["code"] == "not_supported" and "whisper" in whisper["error"]["message"]
        nobody = await request(req, {"op": "monitor.listen", "agent": idle, "device": "3001"})
        assert nobody["error"]["code"] == "invalid_state" and "not on a call" in nobody["error"]["message"]

        sim.model.hangup(call, "caller")
        sim.sync()
        cleared = await sub.until(lambda e: e["type"] == "call.cleared")
        assert cleared["data"] == {"order": "A-77"}  # the data follows the call to its end
        stats = (await request(req, {"op": "stats"}))["result"]
        assert stats["driver.aes.unmapped"] == 0 and stats.get("driver.aes.parse_errors", 0) == 0
        assert stats["control.errors.not_supported"] == 2 and stats["control.errors.invalid_state"] == 3
        assert daemon.drivers[0].link.connected.is_set()  # the refusals cost the link nothing
    finally:
        sub.close()
        await daemon.stop()
        await sim.stop()

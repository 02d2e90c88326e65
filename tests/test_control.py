"""Control requests end to end against the simulated PBX, and everything that must be refused:
malformed, out-of-turn, for another agent's call, unsupported, unanswered, PBX down."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from helpers import ScriptedAmi, Subscriber, frame, free_port, request, site_config, store_flushed, wait_for
from test_control_crm import SIM, caller
from ctid.control import OPS, ControlService
from ctid.daemon import Daemon
from ctid.drivers import CONTROL_ERRORS, ControlError
from ctid.drivers.asterisk.sim import AmiSimulator
from ctid.metrics import Counters
from ctid.state import State
from ctid.store.query import cdrs

DOC = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text(encoding="utf-8")


@pytest.fixture
async def site(tmp_path):
    sim = AmiSimulator(SIM, traffic=False, speed=20)
    _, port = await sim.start()
    daemon = Daemon(site_config(tmp_path, port, resync_timeout=5))
    sub = Subscriber(daemon.config.bus.pub, "call.", "agent.")
    await daemon.start()
    await wait_for(lambda: daemon.counters.get("driver.asterisk.resyncs") >= 1)
    await wait_for(lambda: daemon.counters.get("bus.subscribe") >= 2)
    try:
        yield sim, daemon, sub
    finally:
        sub.close()
        await daemon.stop()
        await sim.stop()


async def ask(daemon, op, **params):
    return await request(daemon.config.bus.req, {"op": op, **params})


async def talking(sim, daemon, sub, agent="1001", queue="support"):
    """A customer in `queue`, answered by `agent` through call.answer; returns the call_id."""
    caller(sim, queue, "+441632960001")
    ring = await sub.until(lambda e: e["type"] == "call.delivered" and e["agent"] == agent)
    answered = await ask(daemon, "call.answer", call_id=ring["call_id"], agent=agent)
    assert answered["ok"], (answered, list(daemon.state.calls), [e for _, e in sub.events])
    await sub.until(lambda e: e["type"] == "call.established" and e["call_id"] == ring["call_id"])
    return ring["call_id"]


# -- the contract ----------------------------------------------------------------------------


def test_every_control_op_its_parameters_and_errors_are_in_the_protocol_doc():
    rows = dict(re.findall(r"^\| `([a-z_.]+)` \| ([^|]*) \|", DOC.split("### Control requests")[1].split("### ")[0], re.M))
    for op in OPS:
        documented = re.findall(r"`([a-z_]+)`(\??)", rows[op.name])
        assert [(p.name, "" if p.required else "?") for p in op.params] == documented, op.name
    errors = DOC.split("### Control errors")[1].split("### ")[0]
    assert set(re.findall(r"^\| `([a-z_]+)` \|", errors, re.M)) == set(CONTROL_ERRORS)
    with pytest.raises(ValueError):
        ControlError("nope", "a driver cannot invent codes")


# -- calls -------------------------------------------------------------------------------------


async def test_attended_transfer_dtmf_and_call_data(site):
    sim, daemon, sub = site
    call_id = await talking(sim, daemon, sub)
    assert (await ask(daemon, "call.send_dtmf", call_id=call_id, agent="1001", digits="12#"))["ok"]
    assert (await ask(daemon, "call.set_data", call_id=call_id, data={"ticket": "T-42"}))["ok"]
    assert (await ask(daemon, "call.consult", call_id=call_id, agent="1001", target="2001"))["ok"]
    await sub.until(lambda e: e["type"] == "call.held" and e["call_id"] == call_id)
    assert sim.model.calls[next(iter(sim.model.calls))].state == "consult"
    assert (await ask(daemon, "call.transfer_complete", call_id=call_id, agent="1001"))["ok"]
    done = await sub.until(lambda e: e["type"] == "call.transferred" and e["call_id"] == call_id)
    assert done["kind"] == "attended" and done["target"] == "2001"
    assert daemon.counters.get("driver.asterisk.parse_errors") == 0


async def test_call_data_follows_the_call_into_its_events_and_cdr(site):
    sim, daemon, sub = site
    call_id = await talking(sim, daemon, sub)
    assert (await ask(daemon, "call.set_data", call_id=call_id, data={"ticket": "T-42"}))["ok"]
    first = await sub.until(lambda e: e["type"] == "call.data" and e["call_id"] == call_id)
    assert first["data"] == {"ticket": "T-42"} and first["agent"] == "1001" and first["queue"] == "support"
    assert (await ask(daemon, "call.set_data", call_id=call_id, data={"reason": "billing", "ticket": "T-43"}))["ok"]
    merged = await sub.until(lambda e: e["type"] == "call.data" and e["data"].get("reason") == "billing")
    assert merged["data"] == {"ticket": "T-43", "reason": "billing"}  # the whole map so far
    snapshot = (await ask(daemon, "snapshot"))["result"]
    assert [c["data"] for c in snapshot["calls"] if c["call_id"] == call_id] == [{"ticket": "T-43", "reason": "billing"}]
    assert (await ask(daemon, "call.hangup", call_id=call_id, agent="1001"))["ok"]
    cleared = await sub.until(lambda e: e["type"] == "call.cleared" and e["call_id"] == call_id)
    assert cleared["data"] == {"ticket": "T-43", "reason": "billing"}
    assert await store_flushed(daemon)
    [cdr] = [r for r in cdrs(daemon.store.engine) if r["call_id"] == call_id]
    assert cdr["x"]["data"] == {"ticket": "T-43", "reason": "billing"}
    # data for a call that is not up is refused by the control layer, and nothing is published
    assert (await ask(daemon, "call.set_data", call_id="no.such", data={"a": "b"}))["ok"] is False


async def test_what_the_pbx_refuses_comes_back_with_its_message(site):
    sim, daemon, sub = site
    reply = await ask(daemon, "agent.login", agent="1002", queues=["sales", "nowhere"])
    assert reply["error"]["code"] == "rejected"
    assert "No such queue" in reply["error"]["message"] and "joined so far: sales" in reply["error"]["message"]
    reply = await ask(daemon, "call.transfer", call_id=await talking(sim, daemon, sub), agent="1001", target="9999")
    assert reply["error"]["code"] == "rejected" and "Transfer failed" in reply["error"]["message"]


async def test_conference_is_not_supported_on_asterisk_and_says_so(site):
    sim, daemon, sub = site
    call_id = await talking(sim, daemon, sub)
    reply = await ask(daemon, "call.conference", call_id=call_id, agent="1001")
    assert reply["error"]["code"] == "not_supported" and "asterisk" in reply["error"]["message"]


async def test_an_agent_cannot_act_on_a_call_that_is_not_its_own(site):
    sim, daemon, sub = site
    call_id = await talking(sim, daemon, sub)
    reply = await ask(daemon, "call.hangup", call_id=call_id, agent="1002")
    assert reply["error"]["code"] == "invalid_state" and "1002" in reply["error"]["message"]
    assert (await ask(daemon, "call.hold", call_id="no-such-call", agent="1001"))["error"]["code"] == "no_such_call"
    assert len(sim.model.calls) == 1 and next(iter(sim.model.calls.values())).state == "talking"
    assert daemon.counters.get("control.errors.invalid_state") == 1


async def test_click_to_dial_retried_at_once_dials_once(site):
    sim, daemon, sub = site
    replies = await asyncio.gather(*(ask(daemon, "call.make", agent="1001", number="+15550100", request_id="r1")
                                     for _ in range(3)))
    assert len({r["result"]["call_id"] for r in replies}) == 1
    assert daemon.counters.get("control.replayed") == 2
    await sub.until(lambda e: e["type"] == "call.established" and e["call_id"] == replies[0]["result"]["call_id"])
    assert [c.direction for c in sim.model.calls.values()] == ["outbound"]
    busy = await ask(daemon, "call.make", agent="1001", number="+15550101")
    assert busy["error"]["code"] == "invalid_state"
    reused = await ask(daemon, "call.hangup", call_id=replies[0]["result"]["call_id"], agent="1001", request_id="r1")
    assert reused["error"]["code"] == "bad_request" and "call.make" in reused["error"]["message"]


# -- supervisors -------------------------------------------------------------------------------


async def test_supervisor_listens_forces_a_state_and_releases_a_call(site):
    sim, daemon, sub = site
    idle = await ask(daemon, "monitor.listen", agent="1001", device="PJSIP/9000")
    assert idle["error"]["code"] == "invalid_state"
    call_id = await talking(sim, daemon, sub)
    assert (await ask(daemon, "monitor.barge", agent="1001", device="PJSIP/9000"))["ok"]
    assert len(sim.spies) == 1
    assert (await ask(daemon, "agent.force_state", agent="1001", state="not_ready"))["ok"]
    forced = await sub.until(lambda e: e["type"] == "agent.not_ready" and e["agent"] == "1001")
    assert forced["reason"] == "supervisor"
    assert (await ask(daemon, "monitor.force_release", call_id=call_id))["ok"]
    await sub.until(lambda e: e["type"] == "call.cleared" and e["call_id"] == call_id)


# -- refused before the PBX --------------------------------------------------------------------


@pytest.mark.parametrize("params, culprit", [
    ({"agent": "1001"}, "'number' is required"),
    ({"agent": "1001", "number": "123;Dial(SIP/x)"}, "'number' must be"),
    ({"agent": "1001", "number": "123", "context": "admin"}, "unknown parameter(s) context"),
    ({"agent": ["1001"], "number": "123"}, "'agent' must be"),
    ({"agent": "1001", "number": "123", "request_id": 7}, "'request_id' must be"),
])
async def test_malformed_requests_are_refused_with_the_culprit_and_counted(tmp_path, params, culprit):
    pbx = ScriptedAmi()
    daemon = Daemon(site_config(tmp_path, await pbx.start()))
    await daemon.start()
    try:
        await wait_for(lambda: pbx.logins == 1)
        reply = await ask(daemon, "call.make", **params)
        assert reply["error"]["code"] == "bad_request" and culprit in reply["error"]["message"]
        assert daemon.counters.get("control.errors.bad_request") == 1
        assert not [a for a in pbx.actions if a["Action"] == "Originate"]
        assert (await ask(daemon, "ping"))["ok"]
    finally:
        await daemon.stop()
        await pbx.close()


async def test_oversized_call_data_is_refused(site):
    sim, daemon, sub = site
    call_id = await talking(sim, daemon, sub)
    reply = await ask(daemon, "call.set_data", call_id=call_id, data={f"k{i}": "v" for i in range(40)})
    assert reply["error"]["code"] == "bad_request"
    reply = await ask(daemon, "call.set_data", call_id=call_id, data={"note": "x" * 300})
    assert reply["error"]["code"] == "bad_request" and "data.note" in reply["error"]["message"]


# -- the PBX does not answer, or is not there --------------------------------------------------

MEMBER = frame(Event="QueueMember", Queue="sales", Name="Ann", Location="Local/1001@agents/n",
               StateInterface="Local/1001@agents", Membership="static", Penalty=0, CallsTaken=0, LastCall=0,
               Status=1, Paused=0, PausedReason="", Wrapuptime=0)


async def test_a_pbx_that_does_not_answer_gives_a_timeout_once(tmp_path):
    pbx = ScriptedAmi(lists={"queuestatus": [MEMBER]}, mute=frozenset({"queuepause"}))
    daemon = Daemon(site_config(tmp_path, await pbx.start(), action_timeout=0.3))
    await daemon.start()
    try:
        await wait_for(lambda: daemon.counters.get("driver.asterisk.resyncs") >= 1)
        first = await ask(daemon, "agent.not_ready", agent="1001", reason="lunch", request_id="p1")
        assert first["error"]["code"] == "timeout" and "request_id" in first["error"]["message"]
        again = await ask(daemon, "agent.not_ready", agent="1001", reason="lunch", request_id="p1")
        assert again["error"] == first["error"]
        assert len([a for a in pbx.actions if a["Action"] == "QueuePause"]) == 1
        unknown = await ask(daemon, "agent.ready", agent="4242")
        assert unknown["error"]["code"] == "no_such_agent"
    finally:
        await daemon.stop()
        await pbx.close()


async def test_pbx_down_is_pbx_unavailable(tmp_path):
    daemon = Daemon(site_config(tmp_path, free_port()))
    await daemon.start()
    try:
        reply = await ask(daemon, "agent.login", agent="1001", queues=["sales"])
        assert reply["error"]["code"] == "pbx_unavailable"
    finally:
        await daemon.stop()


async def test_a_driver_without_control_answers_not_supported():
    class Listener:  # a driver that only listens to its PBX
        name, kind = "csta1", "csta"

    service = ControlService([Listener()], State(), Counters())  # type: ignore[list-item]
    op = next(op for op in OPS if op.name == "agent.ready")
    with pytest.raises(Exception) as info:
        await service.handle(op, {"op": "agent.ready", "agent": "1001"})
    assert info.value.code == "not_supported" and "csta1" in info.value.message

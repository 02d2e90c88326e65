"""The simulated Asterisk over real TCP on 127.0.0.1: login, lists, traffic, control, determinism.

Every check is on content and order of frames, never on timing; waits only bound how long
a test may hang. The simulator runs fast (`speed`) so a virtual quarter hour takes seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
from typing import Any

import pytest

from ami_support import AmiClient, started
from ctid.drivers.asterisk import sim as ami_sim
from ctid.drivers.asterisk.mapper import AsteriskMapper
from ctid.drivers.asterisk.protocol import NOISE_EVENTS, PyFrameParser, encode_action
from ctid.drivers.asterisk.sim import AmiSimulator
from ctid.drivers.asterisk.simrender import AmiRenderer
from ctid.sim import CallCenter, SimConfig, SimError

Frame = dict[str, str]

#: A small quiet site for control tests: agents always answer, talks are long, callers patient.
QUIET = {
    "queues": [{"name": "sales", "strategy": "rrmemory", "rate": 0},
               {"name": "support", "strategy": "leastrecent", "rate": 0}],
    "agents": [{"name": "Alice Adams", "extension": "1001", "queues": ["sales"], "no_answer": 0},
               {"name": "Bob Brown", "extension": "1002", "queues": ["sales", "support"], "no_answer": 0}],
    "behaviour": {"talk_min": 3600, "patience_min": 3600, "hold": 0, "blind_transfer": 0, "attended_transfer": 0,
                  "record_stop": 0, "pause_every": 0},
}


# -- session -----------------------------------------------------------------------------------


async def test_banner_login_and_ping():
    sim = AmiSimulator(QUIET, traffic=False, speed=50)
    address = await sim.start("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*address)
    try:
        assert await asyncio.wait_for(reader.readline(), 5) == b"Asterisk Call Manager/11.0.0\r\n"
        writer.write(encode_action("Login", {"Username": "anyone", "Secret": "anything"}, "l-1"))
        writer.write(encode_action("Ping", None, "p-1"))
        data = b""
        while b"Ping: Pong" not in data:
            data += await asyncio.wait_for(reader.read(65536), 5)
        assert b"Response: Success\r\nActionID: l-1\r\nMessage: Authentication accepted\r\n\r\n" in data
        assert b"Response: Success\r\nActionID: p-1\r\nPing: Pong\r\nTimestamp: " in data
        assert b"Event: FullyBooted\r\nPrivilege: system,all\r\n" in data
    finally:
        writer.close()
        await sim.stop()


async def test_login_refused_with_a_wrong_secret():
    sim = AmiSimulator(QUIET, traffic=False, speed=50, secret="s3cret")
    address = await sim.start("127.0.0.1", 0)
    bad, good = AmiClient(), AmiClient()
    try:
        await bad.connect(address)
        before = await bad.action("QueuePause", Interface="Local/1001@agents/n", Paused="1")
        assert (before["Response"], before["Message"]) == ("Error", "Permission denied")
        refused = await bad.login(Secret="wrong")
        assert (refused["Response"], refused["Message"]) == ("Error", "Authentication failed")
        assert refused["ActionID"].startswith("t-")
        await asyncio.wait_for(bad.closed.wait(), 5)  # Asterisk ends the session
        await good.connect(address)
        assert (await good.login(Secret="s3cret"))["Message"] == "Authentication accepted"
    finally:
        await bad.close()
        await good.close()
        await sim.stop()


async def test_unknown_or_missing_action_is_an_error_with_the_action_id():
    sim = AmiSimulator(QUIET, traffic=False, speed=50)
    client = await started(sim)
    try:
        unknown = await client.action("NoSuchThing")
        assert unknown["Response"] == "Error" and unknown["Message"].startswith("Invalid/unknown command: NoSuchThing")
        client.writer.write(b"ActionID: lonely\r\nFoo: bar\r\n\r\n")
        missing = await client.wait_for(lambda f: f.get("ActionID") == "lonely")
        assert (missing["Response"], missing["Message"]) == ("Error", "Missing action in request")
        assert (await client.action("Logoff"))["Response"] == "Goodbye"
    finally:
        await client.close()
        await sim.stop()


async def test_events_off_then_on_by_class_and_several_clients():
    sim = AmiSimulator(QUIET, traffic=False, speed=50)
    client = await started(sim, Events="off")
    other = AmiClient()
    await other.connect(sim.address)  # type: ignore[arg-type]
    await other.login()
    try:
        await client.action("QueuePause", Interface="Local/1001@agents/n", Paused="1", Reason="Lunch")
        assert client.events() == []
        response = await client.action("Events", EventMask="agent")
        assert response["Events"] == "On"
        await client.action("QueuePause", Interface="Local/1001@agents/n", Paused="0")
        pause = await client.wait_for(lambda f: f.get("Event") == "QueueMemberPause")
        assert pause["Paused"] == "0"
        assert {f.get("Privilege") for f in client.events()} == {"agent,all"}  # no DeviceStateChange (call)
        # a second client with all events saw both pauses, and the device states too
        await other.wait_for(lambda f: f.get("Event") == "QueueMemberPause" and f["Paused"] == "0")
        assert [p["Paused"] for p in other.events("QueueMemberPause")] == ["1", "0"]
        assert other.events("DeviceStateChange")
    finally:
        await other.close()
        await client.close()
        await sim.stop()


# -- lists --------------------------------------------------------------------------------------


async def test_list_actions_are_acked_itemised_and_completed_with_their_action_id():
    sim = AmiSimulator(QUIET, traffic=False, speed=50)
    client = await started(sim)
    try:
        # one caller talking to Bob (sales, Alice paused), one waiting (support: Bob is busy, nobody else there)
        await client.action("QueuePause", Interface="Local/1001@agents/n", Paused="1", Queue="sales")
        await client.action("Originate", Channel="Local/sales@inbound", Application="Wait", Data="900",
                            CallerID='"Ana Lima" <+12025550101>', Async="true")
        await client.wait_for(lambda f: f.get("Event") == "AgentConnect")
        await client.action("Originate", Channel="Local/support@inbound", Application="Wait", Data="900",
                            CallerID="anonymous", Async="true")
        await client.wait_for(lambda f: f.get("Event") == "QueueCallerJoin" and f["Queue"] == "support")

        ack, items, done = await client.listing("QueueStatus")
        assert (ack["Response"], ack["EventList"], ack["Message"]) == ("Success", "start", "Queue status will follow")
        assert done["Event"] == "QueueStatusComplete" and int(done["ListItems"]) == len(items)
        assert [i["Event"] for i in items] == ["QueueParams", "QueueMember", "QueueMember",
                                               "QueueParams", "QueueMember", "QueueEntry"]
        assert all(i["ActionID"] == ack["ActionID"] for i in items)
        entry = items[-1]
        assert (entry["Queue"], entry["Position"], entry["CallerIDNum"], entry["CallerIDName"]) == \
            ("support", "1", "anonymous", "unknown")
        alice = items[1]
        assert (alice["Name"], alice["Paused"], alice["Location"]) == ("Alice Adams", "1", "Local/1001@agents/n")

        _, only, done = await client.listing("QueueStatus", Queue="support")
        assert {i["Queue"] for i in only} == {"support"} and done["ListItems"] == str(len(only))

        ack, chans, done = await client.listing("CoreShowChannels")
        assert ack["Message"] == "Channels will follow" and done["Event"] == "CoreShowChannelsComplete"
        assert int(done["ListItems"]) == len(chans) == 6  # 2 caller halves x2 calls + the agent's 2 halves
        by_link = collections.Counter(c["Linkedid"] for c in chans)
        assert sorted(by_link.values()) == [2, 4]
        assert any(c["Application"] == "Queue" and c["ApplicationData"].startswith("support,") for c in chans)

        _, statuses, done = await client.listing("Status")
        assert done["Event"] == "StatusComplete" and done["Items"] == done["ListItems"] == str(len(statuses)) == "6"
        assert {"BridgeID", "Data", "Seconds"} <= set(statuses[0])

        _, summary, done = await client.listing("QueueSummary")
        assert [s["Queue"] for s in summary] == ["sales", "support"] and done["ListItems"] == "2"
        assert summary[1]["Callers"] == "1"
    finally:
        await client.close()
        await sim.stop()


# -- traffic -----------------------------------------------------------------------------------


def busy_config(until: float) -> dict[str, Any]:
    return {"rates": {"sales": 400, "support": 300, "vip": 120}, "traffic_until": until}


async def run_traffic(seed: int, until: float = 900.0, epoch: float = 1_795_000_000) -> list[Frame]:
    """Every event a client sees of a traffic run, from its first moment to the last hangup."""
    sim = AmiSimulator(busy_config(until), seed=seed, speed=600, epoch=epoch, paused=True)
    client = await started(sim)
    try:
        sim.resume()
        await sim.wait_idle(timeout=60)
        await client.action("Ping")  # everything sent before the answer has been read
        return [f for f in client.events() if f["Event"] not in ("FullyBooted", "SuccessfulAuth")]
    finally:
        await client.close()
        await sim.stop()


async def test_traffic_is_well_formed_consistent_and_mostly_noise():
    frames = await run_traffic(seed=11)
    names = collections.Counter(f["Event"] for f in frames)
    assert len(frames) > 5000
    for name in ("Newchannel", "QueueCallerJoin", "AgentCalled", "AgentConnect", "AgentComplete", "MixMonitorStart",
                 "QueueMemberStatus", "QueueMemberPause", "BridgeEnter", "Cdr", "Hangup"):
        assert names[name] > 0, name
    noise = sum(n for name, n in names.items() if name in NOISE_EVENTS)
    assert 0.6 < noise / len(frames) < 0.9  # like the recordings: VarSet, Newexten, DeviceStateChange...

    # every caller that joins a queue is answered or leaves it (QueueCallerAbandon) before it joins again
    open_joins: dict[str, str] = {}
    for f in frames:
        uid = f.get("Uniqueid")
        if f["Event"] == "QueueCallerJoin":
            assert uid not in open_joins
            open_joins[uid] = f["Queue"]
        elif f["Event"] in ("AgentConnect", "QueueCallerAbandon"):
            assert open_joins.pop(uid) == f["Queue"]
    assert open_joins == {}
    # every channel hangs up, once
    born = collections.Counter(f["Uniqueid"] for f in frames if f["Event"] == "Newchannel")
    died = collections.Counter(f["Uniqueid"] for f in frames if f["Event"] == "Hangup")
    assert born == died and set(born.values()) == {1}
    # a real abandon is announced by the caller side before QueueCallerAbandon
    hangup_requested: set[str] = set()
    for f in frames:
        if f["Event"] == "HangupRequest":
            hangup_requested.add(f["Linkedid"])
        elif f["Event"] == "QueueCallerAbandon" and f["Linkedid"] not in hangup_requested:
            assert f["Queue"] == "support"  # only support has a maximum wait (a timeout, no hangup first)
    # recordings: the file name comes in the VarSet just before MixMonitorStart
    for i, f in enumerate(frames):
        if f["Event"] == "MixMonitorStart":
            prev = frames[i - 1]
            assert prev["Variable"] == "MIXMONITOR_FILENAME" and prev["Value"].endswith(f["Uniqueid"] + ".wav")

    # and the driver's mapper makes sense of all of it
    mapper = AsteriskMapper()
    parser = PyFrameParser()
    wire = b"".join(ami_sim.encode(f.items()) for f in frames)  # back to bytes, through the noise filter
    out = [e for i, fr in enumerate(parser.feed(ami_sim.BANNER + wire)) for e in mapper.handle(fr, float(i))]
    assert parser.errors == 0 and mapper.unknown == 0 and mapper.orphans == 0 and mapper.calls == {}
    types = collections.Counter(e["type"] for e in out)
    assert types["call.offered"] == types["call.cleared"] > 0
    assert types["call.abandoned"] > 0 and types["agent.not_ready"] > 0


async def test_same_seed_gives_the_same_events():
    first, second = await asyncio.gather(run_traffic(seed=21, until=300), run_traffic(seed=21, until=300))
    assert len(first) > 1000 and first == second
    other = await run_traffic(seed=22, until=300)
    assert other != first


def test_model_alone_is_deterministic_whatever_the_clock_steps():
    def run(steps: list[float]) -> list[tuple[Any, ...]]:
        model = CallCenter(SimConfig.from_dict(busy_config(1800)), seed=5)
        seen: list[tuple[Any, ...]] = []
        model.sinks.append(lambda h: seen.append((h.kind, round(h.t, 9), h.call.id if h.call else None,
                                                  h.agent.ext if h.agent else None, h.queue)))
        t = 0.0
        for step in steps:
            t += step
            model.advance(t)
        model.advance(1e9)
        assert model.active_calls == 0 and model.next_time() is None
        return seen

    one = run([2400.0])
    assert one == run([0.37] * 6500)
    kinds = collections.Counter(k for k, *_ in one)
    for kind in ("arrive", "join", "ring", "connect", "end", "abandon", "timeout", "ring_noanswer", "hold",
                 "unhold", "blind_transfer", "attended_transfer", "pause", "unpause", "member_add", "member_remove"):
        assert kinds[kind] > 0, kind


def test_random_control_never_leaves_a_channel_up():
    """Hangups on any side, redirects, originates, pauses and member changes at random moments."""
    model = CallCenter(SimConfig.from_dict({**busy_config(1200), "behaviour": {
        "blind_transfer": 0.1, "attended_transfer": 0.15, "hold": 0.3, "record_stop": 0.1}}), seed=3)
    renderer = AmiRenderer(model, 1_795_000_000, 3)
    model.sinks.append(renderer)
    rng, t, done = random.Random(3), 0.0, collections.Counter()
    while t < 1200:
        t += rng.uniform(0.5, 8)
        model.advance(t)
        x = rng.random()
        try:
            if x < 0.35 and renderer.channels:
                call, side = renderer.owner[rng.choice(list(renderer.channels))]
                if x < 0.25:
                    model.hangup(call, side)
                elif side == "caller" and call.direction == "inbound":
                    model.redirect(call, rng.choice(list(model.queues)))
                done[f"{x < 0.25}"] += 1
            elif x < 0.45:
                model.outbound(rng.choice(list(model.agents)), "+442070000000")
            elif x < 0.55:
                model.set_paused(rng.choice(list(model.agents)), rng.random() < 0.5, None, "Lunch")
            elif x < 0.6:
                model.add_member(rng.choice(list(model.queues)), rng.choice(list(model.agents)))
        except SimError:
            done["refused"] += 1
    model.advance(1e9)
    assert done["True"] > 20 and done["False"] > 5
    assert renderer.channels == {} and renderer.legs == {} and renderer.bridges == {} and model.calls == {}
    parser, mapper = PyFrameParser(), AsteriskMapper()
    for i, frame in enumerate(parser.feed(ami_sim.BANNER + b"".join(data for _, data in renderer.take()))):
        mapper.handle(frame, float(i))
    assert parser.errors == 0 and mapper.unknown == 0 and mapper.calls == {}


# -- control ------------------------------------------------------------------------------------


async def test_queuepause_gives_queuemember_pause_with_the_reason():
    sim = AmiSimulator(QUIET, traffic=False, speed=50)
    client = await started(sim)
    try:
        missing = await client.action("QueuePause", Interface="Local/1002@agents/n")
        assert missing["Message"] == "Need 'Interface' and 'Paused' parameters."
        unknown = await client.action("QueuePause", Interface="Local/1999@agents/n", Paused="1")
        assert unknown["Message"] == "Interface not found"

        mark = len(client.frames)
        ok = await client.action("QueuePause", Interface="Local/1002@agents/n", Paused="true", Reason="Training")
        assert ok["Message"] == "Interface paused successfully"
        await client.wait_for(lambda f: f.get("Event") == "QueueMemberPause" and f["Queue"] == "support", mark)
        pauses = [f for f in client.frames[mark:] if f.get("Event") == "QueueMemberPause"]
        assert [(p["Queue"], p["Paused"], p["PausedReason"]) for p in pauses] == \
            [("sales", "1", "Training"), ("support", "1", "Training")]  # one per queue for an interface-wide pause
        assert pauses[0]["MemberName"] == "Bob Brown" and pauses[0]["Interface"] == "Local/1002@agents/n"

        mark = len(client.frames)
        ok = await client.action("QueuePause", Interface="Local/1002@agents/n", Paused="false", Queue="support")
        assert ok["Message"] == "Interface unpaused successfully"
        unpause = await client.wait_for(lambda f: f.get("Event") == "QueueMemberPause", mark)
        assert (unpause["Queue"], unpause["Paused"], unpause["PausedReason"]) == ("support", "0", "")
    finally:
        await client.close()
        await sim.stop()


async def test_originate_gives_originate_response_and_a_call():
    sim = AmiSimulator(QUIET, traffic=False, speed=50)
    client = await started(sim)
    try:
        ok = await client.action("Originate", Channel="Local/sales@inbound", Application="Wait", Data="900",
                                 CallerID='"Zoë Müller" <+4930123456>', Async="true")
        assert (ok["Response"], ok["Message"]) == ("Success", "Originate successfully queued")
        done = await client.wait_for(lambda f: f.get("Event") == "OriginateResponse")
        assert (done["ActionID"], done["Response"], done["Reason"]) == (ok["ActionID"], "Success", "4")
        assert done["Channel"].startswith("Local/sales@inbound-") and done["Channel"].endswith(";1")
        assert done["CallerIDName"] == "Zoë Müller"
        join = await client.wait_for(lambda f: f.get("Event") == "QueueCallerJoin")
        assert join["Channel"] == done["Channel"][:-1] + "2" and join["Linkedid"] == done["Uniqueid"]
        connect = await client.wait_for(lambda f: f.get("Event") == "AgentConnect")
        assert connect["Linkedid"] == done["Uniqueid"] and connect["DestChannel"].startswith("Local/100")

        # click-to-dial: the PBX rings Alice's device, then dials the number on the trunk
        mark = len(client.frames)
        await client.action("Originate", Channel="Local/1002@agents", Context="outbound", Exten="+442071234567",
                            Priority="1", Async="true")
        out = await client.wait_for(lambda f: f.get("Event") == "OriginateResponse", mark)
        assert out["Response"] == "Success" and out["Channel"].startswith("Local/1002@agents-")
        dial = await client.wait_for(lambda f: f.get("Event") == "DialBegin" and "Channel" in f, mark)
        assert dial["DestChannel"].startswith("PJSIP/trunk-") and dial["DialString"] == "+442071234567@trunk"

        mark = len(client.frames)
        await client.action("Originate", Channel="Local/nowhere@nothing", Application="Wait", Data="5")
        failed = await client.wait_for(lambda f: f.get("Event") == "OriginateResponse", mark)
        assert failed["Response"] == "Failure"
    finally:
        await client.close()
        await sim.stop()


async def test_hangup_and_redirect_act_on_live_channels():
    sim = AmiSimulator(QUIET, traffic=False, speed=50)
    client = await started(sim)
    try:
        await client.action("QueuePause", Interface="Local/1002@agents/n", Paused="1", Queue="support")
        await client.action("Originate", Channel="Local/support@inbound", Application="Wait", Data="900",
                            CallerID="+12025550199", Async="true")
        join = await client.wait_for(lambda f: f.get("Event") == "QueueCallerJoin")
        assert join["Queue"] == "support"  # and nobody there to answer

        mark = len(client.frames)
        moved = await client.action("Redirect", Channel=join["Channel"], Context="inbound", Exten="sales", Priority="1")
        assert moved["Message"] == "Redirect successful"
        left = await client.wait_for(lambda f: f.get("Event") == "QueueCallerAbandon", mark)
        assert left["Queue"] == "support"
        assert not [f for f in client.frames[mark:client.frames.index(left)] if f.get("Event") == "HangupRequest"]
        rejoin = await client.wait_for(lambda f: f.get("Event") == "QueueCallerJoin", mark)
        assert (rejoin["Queue"], rejoin["Uniqueid"]) == ("sales", join["Uniqueid"])
        connect = await client.wait_for(lambda f: f.get("Event") == "AgentConnect", mark)

        mark = len(client.frames)
        gone = await client.action("Hangup", Channel=connect["DestChannel"])  # the agent's leg
        assert gone["Message"] == "Channel Hungup"
        complete = await client.wait_for(lambda f: f.get("Event") == "AgentComplete", mark)
        assert complete["Reason"] == "agent" and complete["Linkedid"] == join["Linkedid"]
        await client.wait_for(lambda f: f.get("Event") == "Hangup" and f["Channel"] == join["Channel"], mark)
        _, chans, _ = await client.listing("CoreShowChannels")
        assert chans == []

        # a waiting caller who hangs up is a real abandon: the caller side asks first
        await client.action("Originate", Channel="Local/support@inbound", Application="Wait", Data="900", Async="true")
        waiting = await client.wait_for(lambda f: f.get("Event") == "QueueCallerJoin" and f["Queue"] == "support", mark)
        mark = len(client.frames)
        await client.action("Hangup", Channel=waiting["Channel"][:-1] + "1")
        abandon = await client.wait_for(lambda f: f.get("Event") == "QueueCallerAbandon", mark)
        before = client.frames[mark:client.frames.index(abandon)]
        assert any(f.get("Event") == "HangupRequest" and f["Channel"] == waiting["Channel"] for f in before)

        assert (await client.action("Hangup", Channel="Local/x@y-00000099;1"))["Message"] == "No such channel"
        missing = await client.action("Redirect", Channel="Local/x@y-00000099;1", Context="inbound", Exten="sales",
                                      Priority="1")
        assert missing["Message"] == "Channel does not exist: Local/x@y-00000099;1"
    finally:
        await client.close()
        await sim.stop()


async def test_queueadd_and_queueremove_members():
    sim = AmiSimulator(QUIET, traffic=False, speed=50)
    client = await started(sim)
    try:
        added = await client.action("QueueAdd", Queue="support", Interface="Local/1001@agents/n", Penalty="1")
        assert added["Message"] == "Added interface to queue"
        event = await client.wait_for(lambda f: f.get("Event") == "QueueMemberAdded")
        assert (event["Queue"], event["MemberName"], event["Membership"], event["Penalty"]) == \
            ("support", "Alice Adams", "dynamic", "1")
        again = await client.action("QueueAdd", Queue="support", Interface="Local/1001@agents/n")
        assert again["Message"] == "Unable to add interface: Already there"
        static = await client.action("QueueRemove", Queue="sales", Interface="Local/1001@agents/n")
        assert static["Message"] == "Member not dynamic"
        removed = await client.action("QueueRemove", Queue="support", Interface="Local/1001@agents/n")
        assert removed["Message"] == "Removed interface from queue"
        event = await client.wait_for(lambda f: f.get("Event") == "QueueMemberRemoved")
        assert event["Queue"] == "support"
        nothere = await client.action("QueueRemove", Queue="support", Interface="Local/1001@agents/n")
        assert nothere["Message"] == "Unable to remove interface: Not there"
    finally:
        await client.close()
        await sim.stop()


# -- config and CLI ------------------------------------------------------------------------------


def test_config_dict_is_validated():
    cfg = SimConfig.from_dict(QUIET)
    assert [q.name for q in cfg.queues] == ["sales", "support"] and cfg.agents[1].queues == ["sales", "support"]
    with pytest.raises(ValueError, match="strategy"):
        SimConfig.from_dict({"queues": [{"name": "q", "strategy": "bogus"}]})
    with pytest.raises(ValueError, match="unknown queue"):
        SimConfig.from_dict({"agents": [{"name": "A", "extension": "1", "queues": ["nope"]}]})
    with pytest.raises(ValueError, match="unknown key"):
        SimConfig.from_dict({"queue": []})


async def test_cli_main_serves_for_its_duration(capsys):
    parser = argparse.ArgumentParser()
    ami_sim.add_arguments(parser)
    args = parser.parse_args(["--port", "0", "--seed", "3", "--speed", "20", "--duration", "0.3", "--agents", "4",
                              "--queues", "sales:rrmemory:600", "support:leastrecent:300:60"])
    assert await ami_sim.main(args) == 0
    assert "seed 3" in capsys.readouterr().out

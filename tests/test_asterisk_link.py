"""The AMI link against a scripted PBX on real TCP: bad input, reconnect and resync, refused login."""

from __future__ import annotations

import asyncio

from helpers import ScriptedAmi, Subscriber, frame, site_config, wait_for
from ctid.daemon import Daemon


def pause(member: str, paused: int, reason: str = "") -> bytes:
    return frame(Event="QueueMemberPause", Privilege="agent,all", Queue="sales", MemberName=member,
                 Interface="Local/1001@agents/n", StateInterface="Local/1001@agents/n", Paused=paused, PausedReason=reason)


def channel(uid: str, linkedid: str, name: str, event: str = "Newchannel", state: int = 6, **extra) -> bytes:
    return frame(Event=event, Privilege="call,all", Channel=name, ChannelState=state, ChannelStateDesc="Up",
                 CallerIDNum="+12025550199", CallerIDName="Test Caller", Context="inbound", Exten="sales",
                 Uniqueid=uid, Linkedid=linkedid, **extra)


async def start(tmp_path, pbx: ScriptedAmi, **options):
    port = await pbx.start()
    daemon = Daemon(site_config(tmp_path, port, resync_timeout=2, **options))
    sub = Subscriber(daemon.config.bus.pub)
    await daemon.start()
    await wait_for(lambda: daemon.counters.get("bus.subscribe") > 0)
    await wait_for(lambda: daemon.counters.get("driver.asterisk.resyncs") >= 1)
    return daemon, sub


async def test_bad_input_is_counted_and_loses_no_good_frame(tmp_path):
    pbx = ScriptedAmi()
    daemon, sub = await start(tmp_path, pbx)
    try:
        pbx.push(pause("Alice Adams", 1, "Lunch"))
        pbx.push(b"X" * (1 << 20) + b"\r\n")  # a 1 MB line
        pbx.push(b"\r\n" + pause("Alice Adams", 0))  # ends the oversized frame, then a good one
        pbx.push(b"\x00\xff\xfe garbage \x81\r\nmore garbage\r\n\r\n")  # binary, no Event
        pbx.push(frame(Event="AgentConnect", Queue="sales"))  # missing every field it needs
        pbx.push(frame(Event="SomethingNew", Foo="bar"))  # an event this version does not know
        pbx.push(channel("9.1", "9.1", "Local/sales@inbound-00000001;1"))
        pbx.push(channel("9.1", "9.1", "Local/sales@inbound-00000001;1", event="Newstate"))
        pbx.push(pause("Alice Adams", 1, "Training"))
        last = await sub.until(lambda e: e["type"] == "agent.not_ready" and e["reason"] == "Training")
        types = [e["type"] for _, e in sub.events]
        assert types.count("agent.not_ready") == 2 and "agent.ready" in types and "call.offered" in types
        assert last["agent"] == "1001"
        c = daemon.counters.snapshot()
        assert c["driver.asterisk.parse_errors"] >= 2  # oversized + frame without Event/Response
        assert c["driver.asterisk.unmapped"] == 2  # the broken AgentConnect and the unknown event
        assert c.get("driver.asterisk.reconnects", 0) == 0 and pbx.logins == 1
    finally:
        sub.close()
        await daemon.stop()
        await pbx.close()


async def test_reconnect_resyncs_and_closes_calls_that_ended_while_down(tmp_path):
    member = frame(Event="QueueMember", Queue="sales", Name="Alice Adams", Location="Local/1001@agents/n",
                   StateInterface="Local/1001@agents/n", Membership="static", Penalty=0, CallsTaken=0, Paused=1,
                   PausedReason="Lunch", Wrapuptime=0)
    pbx = ScriptedAmi(lists={"queuestatus": [member]})
    daemon, sub = await start(tmp_path, pbx, backoff_max=0.2)
    try:
        pbx.push(channel("5.1", "5.1", "Local/sales@inbound-00000005;1"))
        pbx.push(channel("5.2", "5.1", "Local/sales@inbound-00000005;2"))
        pbx.push(channel("6.1", "6.1", "Local/sales@inbound-00000006;1"))
        pbx.push(channel("5.2", "5.1", "Local/sales@inbound-00000005;2", event="Newstate"))
        pbx.push(channel("6.1", "6.1", "Local/sales@inbound-00000006;1", event="Newstate"))
        await sub.until(lambda e: e["type"] == "call.offered" and e["call_id"] == "6.1")
        # The PBX goes away; when we are back only call 6.1 still exists there.
        pbx.lists["coreshowchannels"] = [
            channel("6.1", "6.1", "Local/sales@inbound-00000006;1", event="CoreShowChannel", Application="Queue", BridgeId="")
        ]
        pbx.drop()
        await sub.until(lambda e: e["type"] == "system.driver_down")
        cleared = await sub.until(lambda e: e["type"] == "call.cleared")
        assert cleared["call_id"] == "5.1" and cleared["disposition"] == "lost"
        resynced = await sub.until(lambda e: e["type"] == "system.resynced")
        assert resynced["closed"] == 1 and resynced["calls"] == 1
        types = [e["type"] for _, e in sub.events]
        assert types.count("system.driver_up") == 1  # the first one came before we subscribed
        assert pbx.logins == 2 and daemon.counters.get("driver.asterisk.reconnects") >= 1
        snapshot = daemon.state.snapshot()
        assert [c["call_id"] for c in snapshot["calls"]] == ["6.1"]
        (alice,) = snapshot["agents"]
        assert alice["state"] == "not_ready" and alice["reason"] == "Lunch"
    finally:
        sub.close()
        await daemon.stop()
        await pbx.close()


async def test_refused_login_backs_off_and_never_logs_the_secret(tmp_path, caplog):
    pbx = ScriptedAmi(secret="right")
    port = await pbx.start()
    daemon = Daemon(site_config(tmp_path, port, backoff_max=0.2))
    await daemon.start()
    try:
        await wait_for(lambda: daemon.counters.get("driver.asterisk.reconnects") >= 3)
        assert pbx.logins == 0
        contexts = [str(getattr(r, "ctx", "")) for r in caplog.records]
        assert any("login refused: Authentication failed" in c for c in contexts)
        assert not any("ctisecret" in c for c in contexts) and "ctisecret" not in caplog.text
    finally:
        await daemon.stop()
        await pbx.close()


async def test_pbx_down_at_start_keeps_retrying(tmp_path):
    pbx = ScriptedAmi()
    port = await pbx.start()
    await pbx.close()  # nothing listens there now
    daemon = Daemon(site_config(tmp_path, port, backoff_max=0.1, connect_timeout=0.5))
    await daemon.start()
    try:
        await wait_for(lambda: daemon.counters.get("driver.asterisk.reconnects") >= 3)
    finally:
        await daemon.stop()

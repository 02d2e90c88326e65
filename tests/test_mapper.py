"""Mapper cases the recorded transcripts do not contain, on hand-built AMI frames (no I/O)."""

from __future__ import annotations

from ctid import config
from ctid.drivers.asterisk import AsteriskDriver
from ctid.drivers.asterisk.mapper import AsteriskMapper
from ctid.metrics import Counters
from ctid.state import State


def chan(event: str, uid: str, linkedid: str, name: str, **extra) -> dict[str, str]:
    frame = {"Event": event, "Channel": name, "ChannelState": "6", "CallerIDNum": extra.pop("num", "+12025550100"),
             "CallerIDName": extra.pop("cname", "Pat Doe"), "Context": extra.pop("context", "inbound"),
             "Exten": extra.pop("exten", "5551000"), "Uniqueid": uid, "Linkedid": linkedid}
    frame.update({k: str(v) for k, v in extra.items()})
    return frame


def member(event: str, iface: str = "PJSIP/1001", queue: str = "sales", **extra) -> dict[str, str]:
    frame = {"Event": event, "Queue": queue, "MemberName": "Alice", "Interface": iface, "Paused": "0",
             "PausedReason": "", "Penalty": "0", "Wrapuptime": "0"}
    frame.update({k: str(v) for k, v in extra.items()})
    return frame


class Run:
    def __init__(self, **kw) -> None:
        self.mapper = AsteriskMapper(**kw)
        self.state = State()
        self.events: list[dict] = []
        self.t = 1000.0

    def feed(self, *frames: dict[str, str], dt: float = 1.0) -> list[dict]:
        out = []
        for frame in frames:
            self.t += dt
            for event in self.mapper.handle(frame, self.t):
                self.state.apply(event)
                out.append(event)
        self.events += out
        return out

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]


def test_outbound_call_from_an_agent_device():
    run = Run()
    run.feed(member("QueueMemberStatus"))
    run.feed(chan("Newchannel", "1.1", "1.1", "PJSIP/1001-00000001", context="from-internal", exten="0033123456789", ChannelState=4))
    run.feed(chan("Newchannel", "1.2", "1.1", "PJSIP/trunk-00000002", context="from-internal", ChannelState=0))
    run.feed({**chan("DialBegin", "1.1", "1.1", "PJSIP/1001-00000001"), "DestChannel": "PJSIP/trunk-00000002", "DestUniqueid": "1.2"})
    run.feed({**chan("DialEnd", "1.1", "1.1", "PJSIP/1001-00000001"), "DestChannel": "PJSIP/trunk-00000002", "DialStatus": "ANSWER"})
    run.feed(chan("Hangup", "1.2", "1.1", "PJSIP/trunk-00000002", Cause=16), chan("Hangup", "1.1", "1.1", "PJSIP/1001-00000001", Cause=16), dt=30)
    offered = next(e for e in run.events if e["type"] == "call.offered")
    assert offered["direction"] == "outbound" and offered["called"] == "0033123456789" and offered["agent"] == "1001"
    established = next(e for e in run.events if e["type"] == "call.established")
    assert established["agent"] == "1001" and established["device"] == "PJSIP/trunk"
    cleared = run.events[-1]
    assert cleared["type"] == "call.cleared" and cleared["disposition"] == "answered" and cleared["talk"] == 60.0
    assert run.state.agents["1001"].state == "ready"


def test_redirect_out_of_a_queue_is_not_an_abandon():
    run = Run()
    caller = "SIP/trunk-0000000a"
    run.feed(chan("Newchannel", "2.1", "2.1", caller, ChannelState=4), chan("Newstate", "2.1", "2.1", caller))
    run.feed({**chan("QueueCallerJoin", "2.1", "2.1", caller), "Queue": "sales", "Position": "1"})
    run.feed({**chan("QueueCallerAbandon", "2.1", "2.1", caller), "Queue": "sales", "Position": "1", "OriginalPosition": "1", "HoldTime": "7"})
    # An AMI client's Redirect: the channel's next dialplan step is at the target, not after Queue().
    run.feed(chan("Newexten", "2.1", "2.1", caller, context="overflow", exten="s", Application="Playback"))
    run.feed(chan("Hangup", "2.1", "2.1", caller, Cause=16))
    diverted = next(e for e in run.events if e["type"] == "call.diverted")
    assert diverted["cause"] == "redirected" and diverted["wait"] == 7.0
    assert "call.abandoned" not in run.types()
    assert run.events[-1]["disposition"] == "redirected"


def test_attended_transfer_merges_a_consultation_call_with_its_own_linkedid():
    run = Run()
    run.feed(member("QueueMemberStatus"))
    cust, agent, target = "SIP/trunk-0000000b", "PJSIP/1001-0000000c", "PJSIP/2001-0000000d"
    run.feed(chan("Newchannel", "3.1", "3.1", cust), chan("Newstate", "3.1", "3.1", cust))
    run.feed({**chan("QueueCallerJoin", "3.1", "3.1", cust), "Queue": "sales", "Position": "1"})
    run.feed(chan("Newchannel", "3.2", "3.1", agent))
    run.feed({**chan("AgentConnect", "3.1", "3.1", cust), "Queue": "sales", "Interface": "PJSIP/1001", "MemberName": "Alice", "HoldTime": "3"})
    run.feed(chan("Newchannel", "4.1", "4.1", "PJSIP/1001-0000000e"), chan("Newchannel", "4.2", "4.1", target))
    run.feed({"Event": "AttendedTransfer", "Result": "Success", "OrigTransfererChannel": agent, "TransfereeUniqueid": "3.1",
              "TransfereeLinkedid": "3.1", "SecondTransfererLinkedid": "4.1", "TransferTargetLinkedid": "4.1",
              "TransferTargetExten": "2001"})
    for uid, name in (("3.2", agent), ("4.1", "PJSIP/1001-0000000e"), ("4.2", target), ("3.1", cust)):
        run.feed(chan("Hangup", uid, "3.1" if uid.startswith("3") else "4.1", name, Cause=16))
    cleared = [e for e in run.events if e["type"] == "call.cleared"]
    assert [c["call_id"] for c in cleared] == ["3.1"]  # one call, not two
    transferred = next(e for e in run.events if e["type"] == "call.transferred")
    assert (transferred["kind"], transferred["agent"], transferred["target"]) == ("attended", "1001", "2001")
    assert cleared[0]["transfers"] == 1 and cleared[0]["disposition"] == "answered"


def _answered_then_complete(run: Run) -> dict:
    """A sales call Alice answers; the caller hangs up; AgentComplete comes after the Hangup."""
    run.feed(member("QueueMemberStatus"))
    cust = "SIP/trunk-0000000f"
    run.feed(chan("Newchannel", "5.1", "5.1", cust), chan("Newstate", "5.1", "5.1", cust))
    run.feed({**chan("QueueCallerJoin", "5.1", "5.1", cust), "Queue": "sales", "Position": "1"})
    run.feed({**chan("AgentConnect", "5.1", "5.1", cust), "Queue": "sales", "Interface": "PJSIP/1001", "MemberName": "Alice", "HoldTime": "2"})
    run.feed(chan("Hangup", "5.1", "5.1", cust, Cause=16))
    run.feed({"Event": "AgentComplete", "Queue": "sales", "Interface": "PJSIP/1001", "MemberName": "Alice",
              "HoldTime": "2", "TalkTime": "1", "Reason": "caller"})
    return run.events[-1]


def test_agent_complete_after_hangup_without_channel_fields_gives_acw():
    run = Run(wrapup={"sales": 15})
    acw = _answered_then_complete(run)
    assert acw["type"] == "agent.acw" and acw["call_id"] == "5.1" and acw["duration"] == 15.0
    assert run.state.agents["1001"].state == "acw"
    snap = run.state.snapshot(now=run.t + 16)
    assert snap["agents"][0]["state"] == "ready"  # after-call work ends by itself


def test_acw_length_defaults_to_the_queue_tables_wrapuptime():
    """The driver takes `[[queue]] wrapuptime` (what `ctid import asterisk-queues` writes) unless its
    own `wrapup` option names the queue."""
    cfg = config.parse({"site": "hq", "driver": [{"kind": "asterisk", "wrapup": {"vip": 5}}],
                        "queue": [{"name": "sales", "wrapuptime": 12}, {"name": "vip", "wrapuptime": 30},
                                  {"name": "support"}]})
    driver = AsteriskDriver(cfg.drivers[0], lambda event: None, Counters())
    assert driver.mapper.queue_wrapup == {"sales": 12.0, "vip": 5.0}
    run = Run()
    run.mapper = driver.mapper
    acw = _answered_then_complete(run)
    assert acw["type"] == "agent.acw" and acw["duration"] == 12.0


def test_pause_without_queue_applies_to_every_queue_and_console_pauses_are_caught():
    run = Run()
    run.feed(member("QueueMemberStatus", queue="sales"), member("QueueMemberStatus", queue="vip"))
    run.feed({"Event": "QueueMemberPause", "Interface": "PJSIP/1001", "MemberName": "Alice", "Paused": "1", "PausedReason": "Lunch"})
    assert run.state.agents["1001"].queues == {"sales": True, "vip": True}
    assert run.state.agents["1001"].state == "not_ready" and run.state.agents["1001"].reason == "Lunch"
    # Unpaused from the console: no QueueMemberPause, only the next status shows it.
    run.feed(member("QueueMemberStatus", queue="sales", Paused=0), member("QueueMemberStatus", queue="vip", Paused=0))
    assert run.types()[-2:] == ["agent.ready", "agent.ready"]
    assert run.state.agents["1001"].state == "ready"


def test_events_for_unknown_channels_are_counted_not_raised():
    run = Run()
    assert run.feed(chan("Hangup", "9.9", "9.9", "SIP/x-1")) == []
    assert run.mapper.orphans == 1
    assert run.feed({"Event": "QueueCallerJoin", "Queue": "sales"}) == []  # no ids at all
    assert run.mapper.unknown == 1


def test_click_to_dial_through_a_local_channel_is_outbound_to_the_dialled_number():
    """Originate Local/1001@agents -> Dial(PJSIP/<number>@trunk), as the simulator does it."""
    run = Run()
    run.feed(member("QueueMemberStatus", iface="Local/1001@agents/n"))
    one, two, trunk = "Local/1001@agents-00000000;1", "Local/1001@agents-00000000;2", "PJSIP/trunk-00000001"
    run.feed(chan("Newchannel", "8.1", "8.1", one, context="agents", exten="1001", ChannelState=0),
             chan("Newchannel", "8.2", "8.1", two, context="agents", exten="1001", ChannelState=4))
    run.feed(chan("Newstate", "8.1", "8.1", one, context="agents", exten="1001"))
    assert "call.offered" not in run.types()  # not yet: the number is not known
    run.feed(chan("Newchannel", "8.3", "8.1", trunk, context="from-trunk", exten="s", ChannelState=0))
    run.feed({**chan("DialBegin", "8.1", "8.1", one, context="outbound", exten="0033123456789"),
              "DestChannel": trunk, "DestUniqueid": "8.3", "DialString": "0033123456789@trunk"})
    run.feed({**chan("DialEnd", "8.1", "8.1", one, context="outbound"), "DestChannel": trunk, "DialStatus": "ANSWER"})
    offered = next(e for e in run.events if e["type"] == "call.offered")
    assert (offered["called"], offered["direction"], offered["agent"]) == ("0033123456789", "outbound", "1001")
    assert next(e for e in run.events if e["type"] == "call.established")["agent"] == "1001"

"""A caller who leaves a queue unanswered and not by hanging up: a queue timeout, or a Redirect
(by ctid or by any other AMI client). Asterisk raises QueueCallerAbandon for both; the caller
channel's next Newexten (or Hangup) tells which: Queue() returned to the same place, or the
channel was moved elsewhere."""

from __future__ import annotations

import asyncio

from ami_support import AmiClient
from helpers import Subscriber, request, site_config, transcript, wait_for
from ctid.daemon import Daemon
from ctid.drivers.asterisk.mapper import AsteriskMapper
from ctid.drivers.asterisk.protocol import DRIVER_DROP, FrameParser
from ctid.drivers.asterisk.queueexit import QueueExits
from ctid.drivers.asterisk.sim import AmiSimulator
from ctid.state import State

CALLER = "Local/support@inbound-00000001;2"


def frame(event: str, uid: str = "9.2", context: str = "queue-entry", exten: str = "s", **extra: object) -> dict[str, str]:
    out = {"Event": event, "Channel": CALLER if uid == "9.2" else f"Local/x-{uid}", "ChannelState": "6",
           "CallerIDNum": "+12025550100", "CallerIDName": "Pat Doe", "Context": context, "Exten": exten,
           "Uniqueid": uid, "Linkedid": "9.1"}
    out.update({k: str(v) for k, v in extra.items()})
    return out


class Run:
    """A mapper fed by hand, events applied to a State as the daemon would, one second per frame."""

    def __init__(self, **kw: object) -> None:
        self.mapper = AsteriskMapper(**kw)  # type: ignore[arg-type]
        self.state = State()
        self.events: list[dict] = []
        self.t = 1000.0

    def feed(self, *frames: dict[str, str]) -> list[dict]:
        out = []
        for f in frames:
            self.t += 1.0
            for event in self.mapper.handle(f, self.t):
                self.state.apply(event)
                out.append(event)
        self.events += out
        return out

    def queued_then_abandon(self) -> float:
        """A caller queued in support, then QueueCallerAbandon with nobody hanging up: the abandon's time."""
        self.feed(frame("Newchannel", "9.1", context="inbound", exten="support"), frame("Newchannel", "9.2", context="inbound", exten="support"))
        self.feed(frame("Newexten", Application="Queue", AppData="support,t,,,6", Priority=10))
        self.feed(frame("QueueCallerJoin", Queue="support", Position=1, Count=1))
        out = self.feed(frame("QueueCallerAbandon", Queue="support", Position=1, OriginalPosition=2, HoldTime=6))
        assert out == [] and "9.2" in self.mapper.exits.pending  # not yet known: timeout or redirect
        return self.t

    def diverted(self) -> dict:
        [event] = [e for e in self.events if e["type"] == "call.diverted"]
        return event


def test_newexten_in_the_queue_steps_place_is_a_timeout():
    run = Run()
    left = run.queued_then_abandon()
    run.feed(frame("QueueCallerLeave", Queue="support", Position=1), frame("MusicOnHoldStop"))
    assert "9.2" in run.mapper.exits.pending  # the leave frames still carry the Queue() step's place
    out = run.feed(frame("Newexten", Application="NoOp", AppData="QUEUESTATUS=TIMEOUT", Priority=11))
    assert [e["type"] for e in out] == ["call.diverted"]
    event = run.diverted()
    assert event["cause"] == "timeout" and event["ts"] == left  # the time the call left the queue
    assert (event["wait"], event["position"], event["original_position"], event["queue"]) == (6.0, 1, 2, "support")
    run.feed(frame("Hangup", "9.2", Cause=16), frame("Hangup", "9.1", Cause=16))
    assert run.events[-1]["type"] == "call.cleared" and run.events[-1]["disposition"] == "timeout"
    assert run.mapper.exits.pending == {} and run.mapper.exits.assumed == 0


def test_newexten_elsewhere_is_a_third_party_redirect():
    run = Run()
    left = run.queued_then_abandon()
    run.feed(frame("QueueCallerLeave", Queue="support", Position=1))
    out = run.feed(frame("Newexten", context="inbound", exten="sales", Application="NoOp", Priority=1))
    assert [(e["type"], e["cause"], e["ts"]) for e in out] == [("call.diverted", "redirected", left)]
    run.feed(frame("QueueCallerJoin", context="queue-entry", Queue="sales", Position=1, Count=1))
    assert run.events[-1]["type"] == "call.queued" and run.events[-1]["queue"] == "sales"
    assert run.state.calls["9.1"].queue == "sales"
    assert run.mapper.exits.pending == {} and run.mapper.exits.assumed == 0


def test_hangup_after_the_abandon_is_a_timeout_published_before_the_clear():
    run = Run()
    left = run.queued_then_abandon()
    run.feed(frame("Hangup", "9.2", Cause=16))
    out = run.feed(frame("Hangup", "9.1", Cause=16))
    types = [e["type"] for e in run.events]
    assert types.index("call.diverted") < types.index("call.cleared")
    assert run.diverted()["cause"] == "timeout" and run.diverted()["ts"] == left
    assert out[-1]["disposition"] == "timeout" and run.mapper.exits.assumed == 0


def test_a_channel_that_never_says_where_it_went_is_taken_as_a_timeout_in_time():
    run = Run(decide_within=5.0)
    left = run.queued_then_abandon()
    for i in range(4):  # other calls' frames: within 5 s nothing is decided
        run.feed(frame("Newstate", f"7.{i}", context="inbound", Linkedid=f"7.{i}", ChannelState=4))
    assert "9.2" in run.mapper.exits.pending
    out = run.feed(frame("Newstate", "7.9", context="inbound", Linkedid="7.9", ChannelState=4), frame("Newstate", "7.8", Linkedid="7.8", ChannelState=4))
    assert [(e["type"], e["cause"], e["ts"]) for e in out] == [("call.diverted", "timeout", left)]
    assert run.mapper.exits.pending == {} and run.mapper.exits.assumed == 1


def test_resync_decides_what_is_pending_before_closing_the_call():
    run = Run()
    left = run.queued_then_abandon()
    out = run.mapper.resync([], [], [], run.t + 1)  # the channel is gone: the link was down meanwhile
    assert [e["type"] for e in out] == ["call.diverted", "call.cleared", "system.resynced"]
    assert out[0]["cause"] == "timeout" and out[0]["ts"] == left and out[1]["disposition"] == "lost"
    assert run.mapper.exits.pending == {} and run.mapper.exits.assumed == 1


def test_another_event_of_the_call_first_publishes_the_diversion_before_it():
    run = Run()
    run.queued_then_abandon()
    # the caller rejoins without a Newexten we saw (e.g. frames lost): it stays in place, so a timeout
    out = run.feed(frame("QueueCallerJoin", Queue="support", Position=1, Count=1))
    assert [e["type"] for e in out] == ["call.diverted", "call.queued"] and out[0]["cause"] == "timeout"


def test_a_bad_frame_of_a_pending_channel_is_counted_and_loses_nothing():
    run = Run()
    run.queued_then_abandon()
    bad = frame("Hangup")
    del bad["Uniqueid"]  # malformed: cannot be the pending channel's, cannot decide
    run.feed(bad)
    assert run.mapper.unknown == 1 and "9.2" in run.mapper.exits.pending
    run.feed(frame("Newexten", Application="Hangup", Priority=12))
    assert run.diverted()["cause"] == "timeout"


def test_a_second_exit_of_a_channel_before_the_first_is_decided_loses_neither():
    exits, out = QueueExits(), []
    exits.hold("9.2", {"type": "call.diverted", "ts": 1.0, "call_id": "9.1", "queue": "support"}, ("q", "s"), out)
    exits.hold("9.2", {"type": "call.diverted", "ts": 2.0, "call_id": "9.1", "queue": "sales"}, ("q", "s"), out)
    assert [(e["queue"], e["cause"]) for e in out] == [("support", "timeout")] and exits.assumed == 1
    exits.decide("Newexten", frame("Newexten", context="inbound", exten="vip"), 3.0, out)
    assert [(e["queue"], e["cause"]) for e in out] == [("support", "timeout"), ("sales", "redirected")]


def test_transcript_timeout_is_decided_by_its_newexten():
    """c-mixed-day: one real queue timeout (queue_log EXITWITHTIMEOUT, uniqueid 1795342336.101)."""
    parser, mapper = FrameParser(drop=DRIVER_DROP), AsteriskMapper()
    events = []
    for f in parser.feed(transcript("c-mixed-day").read_bytes()):
        if "Event" in f:
            events += mapper.handle(f, 0.0)
    diverted = [e for e in events if e["type"] == "call.diverted" and e["cause"] != "no_answer"]
    assert [(e["queue"], e["cause"], e["wait"]) for e in diverted] == [("support", "timeout", 6.0)]
    assert mapper.exits.assumed == 0 and mapper.exits.pending == {} and mapper.unknown == 0
    assert sum(e["type"] == "call.abandoned" for e in events) == 4


# -- end to end: the daemon on the simulator, a third-party AMI client redirects -------------------

SITE = {
    "queues": [{"name": "sales", "strategy": "rrmemory", "rate": 0},
               {"name": "support", "strategy": "leastrecent", "rate": 0, "timeout": 30}],
    "agents": [{"name": "Alice Adams", "extension": "1001", "queues": ["sales"], "no_answer": 0},
               {"name": "Bob Brown", "extension": "1002", "queues": ["support"], "no_answer": 0}],
    "behaviour": {"talk_min": 3600, "patience_min": 3600, "hold": 0, "blind_transfer": 0, "attended_transfer": 0,
                  "record_stop": 0, "pause_every": 0},
}


async def test_the_simulator_renders_where_the_caller_goes_after_its_queue():
    sim = AmiSimulator(SITE, traffic=False, speed=20)
    tool = AmiClient()
    await tool.connect(await sim.start("127.0.0.1", 0))
    try:
        assert (await tool.login(Secret="x"))["Response"] == "Success"
        await tool.action("QueuePause", Interface="Local/1002@agents/n", Paused="1", Queue="support")

        def after(name: str, uid: str, start: int) -> list[dict[str, str]]:
            """The caller channel's frames from its `name` frame on."""
            mine = [f for f in tool.frames[start:] if f.get("Uniqueid") == uid and "Event" in f]
            return mine[[f["Event"] for f in mine].index(name):]

        await tool.action("Originate", Channel="Local/support@inbound", Application="Wait", Data="900", Async="true")
        timed = await tool.wait_for(lambda f: f.get("Event") == "QueueCallerJoin")
        await tool.wait_for(lambda f: f.get("Event") == "Hangup" and f["Uniqueid"] == timed["Uniqueid"])
        frames = after("QueueCallerAbandon", timed["Uniqueid"], 0)
        step = next(f for f in frames if f["Event"] == "Newexten")
        assert (step["Context"], step["Exten"], step["Priority"]) == (timed["Context"], timed["Exten"], "11")

        mark = len(tool.frames)
        await tool.action("Originate", Channel="Local/support@inbound", Application="Wait", Data="900", Async="true")
        moved = await tool.wait_for(lambda f: f.get("Event") == "QueueCallerJoin", mark)
        refused = await tool.action("Redirect", Channel=moved["Channel"], Context="nowhere", Exten="sales", Priority="1")
        assert refused["Response"] == "Error" and refused["Message"] == "Redirect failed"
        ok = await tool.action("Redirect", Channel=moved["Channel"], Context="inbound", Exten="sales", Priority="1")
        assert ok["Message"] == "Redirect successful"
        await tool.wait_for(lambda f: f.get("Event") == "QueueCallerJoin" and f["Queue"] == "sales", mark)
        frames = after("QueueCallerAbandon", moved["Uniqueid"], mark)
        names = [f["Event"] for f in frames]
        assert names.index("QueueCallerLeave") < names.index("Newexten")
        step = frames[names.index("Newexten")]
        assert (step["Context"], step["Exten"], step["Priority"]) == ("inbound", "sales", "1")
    finally:
        await tool.close()
        await sim.stop()


async def test_third_party_redirect_and_timeout_through_the_daemon(tmp_path):
    sim = AmiSimulator(SITE, traffic=False, speed=20)
    address = await sim.start("127.0.0.1", 0)
    daemon = Daemon(site_config(tmp_path, address[1], resync_timeout=5))
    sub = Subscriber(daemon.config.bus.pub, "call.")
    tool = AmiClient()  # an operator panel: its own AMI login, unknown to ctid
    await daemon.start()
    try:
        await wait_for(lambda: daemon.counters.get("driver.asterisk.resyncs") >= 1)
        await wait_for(lambda: daemon.counters.get("bus.subscribe") > 0)
        await tool.connect(address)
        assert (await tool.login(Secret="ctisecret"))["Response"] == "Success"
        paused = await tool.action("QueuePause", Interface="Local/1002@agents/n", Paused="1", Queue="support")
        assert paused["Response"] == "Success"

        # 1. nobody answers in support: the queue's 30 s run out (1.5 s at speed 20)
        await tool.action("Originate", Channel="Local/support@inbound", Application="Wait", Data="900",
                          CallerID="+12025550111", Async="true")
        first = await tool.wait_for(lambda f: f.get("Event") == "QueueCallerJoin")
        await tool.wait_for(lambda f: f.get("Event") == "Hangup" and f["Uniqueid"] == first["Uniqueid"])

        # 2. the next caller is moved to sales by the tool's Redirect, before its timeout
        mark = len(tool.frames)
        await tool.action("Originate", Channel="Local/support@inbound", Application="Wait", Data="900",
                          CallerID="+12025550222", Async="true")
        second = await tool.wait_for(lambda f: f.get("Event") == "QueueCallerJoin", mark)
        moved = await tool.action("Redirect", Channel=second["Channel"], Context="inbound", Exten="sales", Priority="1")
        assert moved["Message"] == "Redirect successful"
        await tool.wait_for(lambda f: f.get("Event") == "AgentConnect" and f["Uniqueid"] == second["Uniqueid"], mark)

        def diverted() -> dict[str, str]:
            return {e["caller"]: e["cause"] for _, e in sub.events if e["type"] == "call.diverted"}

        async def until_both() -> None:
            while len(diverted()) < 2 or not any(e["type"] == "call.established" for _, e in sub.events):
                await sub.recv()
        await asyncio.wait_for(until_both(), 10)
        assert diverted() == {"+12025550111": "timeout", "+12025550222": "redirected"}
        second_call = [e for _, e in sub.events if e["caller"] == "+12025550222"]
        types = [e["type"] for e in second_call]
        assert types.index("call.diverted") < types.index("call.queued", types.index("call.diverted"))
        assert [e["queue"] for e in second_call if e["type"] == "call.queued"] == ["support", "sales"]
        stats = (await request(daemon.config.bus.req, {"op": "stats"}))["result"]
        assert stats["driver.asterisk.queue_exit_causes_assumed"] == 0 and stats["driver.asterisk.unmapped"] == 0
    finally:
        await tool.close()
        await daemon.stop()
        await sim.stop()
        sub.close()

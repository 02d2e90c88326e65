"""Happenings of the call center -> the AMI events a real Asterisk 22 sends for them.

The site is the one of the transcripts (shared/ami/config): callers are Local channels
`Local/<did>@inbound-xxxxxxxx;1/;2` (the `;1` half is the handset, the `;2` half runs
`inbound` then `queue-entry`: Answer, caller id, MixMonitor, Queue); members are
`Local/<ext>@agents/n`. Each handler reproduces the frame sequence recorded for that
situation, noise included (VarSet, Newexten, DeviceStateChange, Cdr...), with the
quirks a driver must survive. Features (hold, transfers, redirect, outbound calls)
are in `simfeatures.py`.
"""

from __future__ import annotations

from ctid.drivers.asterisk.simbase import INHERITED, MONITOR
from ctid.drivers.asterisk.simfeatures import Features
from ctid.drivers.asterisk.simwire import Legs
from ctid.sim.model import Happening


class AmiRenderer(Features):
    """Renders every kind of happening; see `RenderBase` for the state it keeps."""

    # -- arrival and queue ---------------------------------------------------------------------

    def _on_arrive(self, h: Happening) -> None:
        call, queue = h.call, h.queue or ""
        assert call is not None
        num, name, cnum = call.number, call.name, "" if call.number == "anonymous" else call.number
        c1, c2 = self.local_pair(call.did, "inbound")
        legs = self.legs[call.id] = Legs(call, c1, c2, f"Local/{call.did}@inbound")
        self._own(call, "caller", c1, c2)
        self.newchannel(c1, c2)
        self.newexten(c1, "AppDial2", "(Outgoing Line)")
        self.varset(c1, ("TALK", int(call.talk)), ("CALLREF", call.ref), ("CNAME", name), ("CNUM", cnum))
        c1.set_caller(num, name)
        self.newcallerid(c1)
        c1.set_connected(num, name)
        self.newconnectedline(c1)
        self.varset(c2, ("CNUM", cnum), ("CNAME", name), ("CALLREF", call.ref), ("TALK", int(call.talk)))
        c2.set_caller(num, name)
        c2.set_connected(num, name)
        self.newcallerid(c2)
        self.newconnectedline(c2)
        self.localbridge(c1, c2, "inbound", call.did, True)
        self.dial("DialBegin", None, c1, ("DialString", f"{call.did}@inbound"))
        self._inbound_dialplan(legs, queue)
        self.newstate(c2, 6)
        patience = 900 if call.patience == float("inf") else int(call.patience)
        self.newstate(c1, 6)
        c1.app, c1.data = "Wait", str(patience)
        if call.tag is not None:
            self.originate_response(call.tag, True, c1.name, [("Application", "Wait"), ("Data", patience)], 4,
                                    c1.uid, c1.cid_num, c1.cid_name)
        self.dial("DialEnd", None, c1, ("DialStatus", "ANSWER"))
        self._did_state(legs)
        self._did_state(legs)

    def _on_record_start(self, h: Happening) -> None:
        call = h.call
        assert call is not None
        c2 = self.legs[call.id].c2
        assert c2 is not None
        self.newexten(c2, "Set", f"CALLERID(num)={call.number}", priority=2)
        self.newexten(c2, "Set", f"CALLERID(name)={call.name}", priority=3)
        self.newexten(c2, "Set", f"CDR(userfield)={call.ref}", priority=4)
        values = (int(call.talk), "", "agenthold", call.ref)
        for prio, (var, value) in enumerate(zip(("__TALKTIME", "__NOANS", "__DYNAMIC_FEATURES", "__CALLREF"), values), 5):
            self.newexten(c2, "Set", f"{var}={value}", priority=prio)
            self.varset(c2, (var, value))
        self.newexten(c2, "MixMonitor", f"{c2.uid}.wav", priority=9)
        self.varset(c2, ("MIXMONITOR_FILENAME", f"{MONITOR}/{c2.uid}.wav"))
        self.plain("MixMonitorStart", c2)

    def _on_join(self, h: Happening) -> None:
        call, queue = h.call, h.queue or ""
        assert call is not None
        legs = self.legs[call.id]
        timeout = self.model.queues[queue].spec.timeout
        legs.queue, legs.queue_app, legs.t_app = queue, f"{queue},t,,,{int(timeout) if timeout else 300}", self.now
        self.newexten(legs.c2, "Queue", legs.queue_app, priority=10)
        self.varset(legs.c2, *((v, "") for v in ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS",
                                                 "QUEUEWAIT", "QUEUEWAIT_MS")))
        if h.info["count"] == 1:
            self.device(f"Queue:{queue}", "RINGING")
        self.plain("QueueCallerJoin", legs.c2, ("Queue", queue), ("Position", h.info["position"]),
                   ("Count", h.info["count"]), privilege="agent,all")
        self.moh(legs.c2, True)

    # -- ringing -------------------------------------------------------------------------------

    def _on_ring(self, h: Happening) -> None:
        call, agent, queue = h.call, h.agent, h.queue or ""
        assert call is not None and agent is not None
        legs = self.legs[call.id]
        leg = legs.ring = self._agent_leg(call, agent, legs.c1.linkedid)
        a1, a2, c2 = leg.one, leg.two, legs.c2
        num, name, ext = call.number, call.name, agent.ext
        self.newchannel(a1)
        self.newchannel(*([a2] if a2 else []))
        self.newexten(a1, "AppQueue", "(Outgoing Line)")
        a1.set_caller(num, name)
        self.newcallerid(a1)
        inherited = tuple(zip(INHERITED, (call.ref, "agenthold", "", int(call.talk))))
        peer = ("DIALEDPEERNUMBER", leg.iface.partition("/")[2])
        self.varset(a1, *inherited, peer)
        if a2 is not None:
            self.varset(a2, peer, *inherited)
            a2.set_caller(num, name)
            a2.set_connected(num, name)
            self.newcallerid(a2)
            self.newconnectedline(a2)
            self.localbridge(a1, a2, a1.context, a1.exten, False)
        self._agent_event("AgentCalled", c2, leg, queue)
        self.dial("DialBegin", c2, a1, ("DialString", leg.iface))
        self.newexten(a2, "NoOp", f"Agent {ext} offered {call.ref} from {num}", priority=1)
        self.newexten(a2, "Ringing", "", priority=2)
        self.newstate(a1, 5, exten="s" if a2 is not None else None)  # a Local ;1 shows exten `s` once ringing
        self.newexten(a1, "AppQueue", "(Outgoing Line)")
        a1.set_connected(num, name)
        self.newconnectedline(a1)
        if h.info.get("answers", True):
            self.newexten(a2, "GotoIf", "0?noanswer", priority=3)
            self.newexten(a2, "Wait", 1, priority=4)
        else:
            self.newexten(a2, "GotoIf", "1?noanswer", priority=3)
            self.newexten(a2, "NoOp", f"Agent {ext} does not pick up", priority=10)
            self.newexten(a2, "Wait", 30, priority=11)
        self._member_status(agent)
        self.device(self.agent_device(agent), "INUSE")
        self.dial("DialState", c2, a1, ("DialStatus", "RINGING"))

    def _on_ring_noanswer(self, h: Happening) -> None:
        legs = self.legs[h.call.id]  # type: ignore[union-attr]
        leg = legs.ring
        if leg is None:
            return
        self._agent_event("AgentRingNoAnswer", legs.c2, leg, h.queue or "", ("RingTime", int(h.info["ring"] * 1000)))
        self.dial("DialEnd", legs.c2, leg.one, ("DialStatus", "NOANSWER"))
        self._cancel_ring(legs, first=True)
        self._cancel_ring(legs, first=False)

    def _on_ring_cancel(self, h: Happening) -> None:
        legs = self.legs.get(h.call.id)  # type: ignore[union-attr]
        if legs is not None:
            self._cancel_ring(legs, first=True)
            self._cancel_ring(legs, first=False)

    def _on_connect(self, h: Happening) -> None:
        call, agent, queue = h.call, h.agent, h.queue or ""
        assert call is not None and agent is not None
        legs = self.legs[call.id]
        leg = legs.talk = legs.ring
        legs.ring = None
        if leg is None:
            return
        a1, a2, c2 = leg.one, leg.two, legs.c2
        device = self.agent_device(agent)
        wait, pos = h.info["wait"], h.info["position"]
        self.newexten(a2, "Answer", "", priority=5)
        self.newstate(a1, 6)
        self.newstate(a2, 6)
        self.device(device, "INUSE")
        self.dial("DialEnd", c2, a1, ("DialStatus", "ANSWER"))
        self.device(device, "INUSE")
        self.moh(c2, False)
        m = agent.members.get(queue)
        member = (("MEMBERINTERFACE", leg.iface), ("MEMBERNAME", agent.name), ("MEMBERCALLS", agent.calls_taken),
                  ("MEMBERLASTCALL", self._epoch0(agent.last_call)), ("MEMBERPENALTY", m.penalty if m else 0),
                  ("MEMBERDYNAMIC", int(m.dynamic) if m else 0), ("MEMBERREALTIME", 0))
        self.varset(c2, *member)
        self.varset(a1, *member)
        entry = (("QEHOLDTIME", int(wait)), ("QEORIGINALPOS", call.original_position))
        self.varset(c2, *entry)
        self.varset(a1, *entry)
        self._queue_vars(c2, queue)
        self._queue_vars(a1, queue)
        self._leave(legs, queue, pos)
        self.varset(c2, ("QUEUEWAIT", int(wait)), ("QUEUEWAIT_MS", int(wait * 1000)))
        self._agent_event("AgentConnect", c2, leg, queue, ("HoldTime", int(wait)), ("RingTime", int(h.info["ring"])))
        legs.bridge = self.bridge_create()
        self.bridge_enter(legs.bridge, a1)
        self.bridge_enter(legs.bridge, c2)
        self.varset(a1, ("BRIDGEPEER", c2.name if c2 else ""))
        self.varset(c2, ("BRIDGEPEER", a1.name))
        talk = int(call.talk)
        self.newexten(a2, "Set", f"TT={talk}", priority=6)
        self.varset(a2, ("TT", talk))
        self.newexten(a2, "NoOp", f"Agent {agent.ext} talking {talk}s", priority=7)
        self.newexten(a2, "Wait", talk, priority=8)

    # -- leaving the queue unanswered ------------------------------------------------------------

    def _on_abandon(self, h: Happening) -> None:
        legs = self.legs[h.call.id]  # type: ignore[union-attr]
        queue, wait = h.queue or "", h.info["wait"]
        self._cdr_c1(legs)
        self.hangup_request(legs.c2, 0)  # the handset hung up: the caller side asks first (a real abandon)
        self.hangup(legs.c1, 0)
        self.moh(legs.c2, False)
        self._did_state(legs)
        self._cancel_ring(legs, first=True)
        self.varset(legs.c2, ("QUEUEWAIT", int(wait)), ("QUEUEWAIT_MS", int(wait * 1000)),
                    *self._times(legs, 0), ("ABANDONED", "TRUE"))
        self._queue_vars(legs.c2, queue)
        self._abandon_event(legs, h)
        self._cancel_ring(legs, first=False)
        self._queue_vars(legs.c2, queue)
        self._leave(legs, queue, h.info["position"])
        self._cdr_c2(legs)
        self.hangup_request(legs.c2, 16, soft=True)
        self.hangup(legs.c2, 0)
        self._finish(legs)

    def _on_timeout(self, h: Happening) -> None:
        legs = self.legs[h.call.id]  # type: ignore[union-attr]
        queue, wait = h.queue or "", h.info["wait"]
        self._cancel_ring(legs, first=True)
        self.varset(legs.c2, ("ABANDONED", "TRUE"))
        self._queue_vars(legs.c2, queue)
        self._abandon_event(legs, h)  # no hangup before it: the queue timed out, nobody gave up
        self._cancel_ring(legs, first=False)
        self.varset(legs.c2, ("QUEUEWAIT", int(wait)), ("QUEUEWAIT_MS", int(wait * 1000)), *self._times(legs, 0))
        self.moh(legs.c2, False)
        self._queue_vars(legs.c2, queue)
        self._leave(legs, queue, h.info["position"])
        self.varset(legs.c2, ("QUEUESTATUS", "TIMEOUT"))
        self.newexten(legs.c2, "NoOp", f"Queue {queue} finished: QUEUESTATUS=TIMEOUT", priority=11)
        self.newexten(legs.c2, "Hangup", "", priority=12)
        self.hangup_request(legs.c2, 16, soft=True)
        self.hangup_request(legs.c1, 16)
        self.hangup(legs.c2)
        self.hangup(legs.c1)
        self._cdr_c2(legs, "Hangup", "")
        self._cdr_c1(legs)
        self._finish(legs)

    # -- the end of a talk ---------------------------------------------------------------------

    def _on_end(self, h: Happening) -> None:
        legs = self.legs.get(h.call.id)  # type: ignore[union-attr]
        if legs is None:
            return
        if h.info.get("outbound"):
            self._end_outbound(legs, h)
        elif legs.talk is None:
            self._end_target(legs, h)  # after an attended transfer: the target's side ends
        elif legs.x1 is not None:
            self._end_in_consult(legs, h)
        elif h.info["by"] == "caller":
            self._end_by_caller(legs, h)
        elif h.info.get("late") and legs.talk.two is not None:
            self._end_late(legs, h)
        else:
            self._end_by_agent(legs, h)
        self._finish(legs)

    def _end_by_agent(self, legs: Legs, h: Happening) -> None:
        leg, c2 = legs.talk, legs.c2
        assert leg is not None
        a1, a2 = leg.one, leg.two
        self.newexten(a2, "Hangup", "", priority=9)
        self.hangup_request(a2, 16, soft=True)
        self.hangup_request(a1, 16)
        self.hangup(a2)
        self._complete_event(legs, h, "agent")
        self.varset(a1, ("BRIDGEPEER", ""))
        self.varset(c2, ("BRIDGEPEER", ""))
        self.bridge_leave(legs.bridge, a1)
        self.hangup(a1)
        self._cdr_agent(leg)
        self._agent_down(leg)
        self.bridge_leave(legs.bridge, c2)
        self.bridge_destroy(legs.bridge)
        self._queue_end(legs, h)
        self._caller_down(legs)

    def _queue_end(self, legs: Legs, h: Happening) -> None:
        """What app_queue sets on the caller when the bridge ends (stats, times, stats again)."""
        self._queue_vars(legs.c2, legs.queue)
        self.varset(legs.c2, *self._times(legs, h.info.get("talk", 0)))
        self._queue_vars(legs.c2, legs.queue)

    def _caller_down(self, legs: Legs) -> None:
        self.hangup_request(legs.c2, 16, soft=True)
        self.hangup_request(legs.c1, 16)
        self.hangup(legs.c1)
        self._cdr_c1(legs)
        self._cdr_c2(legs)
        self.hangup(legs.c2)

    def _end_late(self, legs: Legs, h: Happening) -> None:
        """The race of the transcripts: the caller's side is gone before app_queue reports the
        completion, which then comes without any channel field."""
        leg, c1, c2 = legs.talk, legs.c1, legs.c2
        assert leg is not None
        self.newexten(leg.two, "Hangup", "", priority=9)
        self.hangup_request(leg.two, 16, soft=True)
        self.hangup_request(leg.one, 16)
        self._cdr_agent(leg)
        self.hangup(leg.two)
        self.varset(leg.one, ("BRIDGEPEER", ""))
        self.varset(c2, ("BRIDGEPEER", ""))
        self.bridge_leave(legs.bridge, leg.one)
        self.bridge_leave(legs.bridge, c2)
        self._queue_end(legs, h)
        self.hangup_request(c2, 16, soft=True)
        self.hangup_request(c1, 16)
        self.hangup(c2)
        self._cdr_c2(legs)
        self.device(self.agent_device(leg.agent), "NOT_INUSE")
        self._did_state(legs)
        self._member_status(leg.agent)
        self.hangup(c1)
        self._cdr_c1(legs)
        self.bridge_destroy(legs.bridge)
        self.hangup(leg.one)
        self._complete_event(legs, h, "agent", channels=False)
        self.device(self.agent_device(leg.agent), "NOT_INUSE")

    def _end_by_caller(self, legs: Legs, h: Happening) -> None:
        leg, c1, c2 = legs.talk, legs.c1, legs.c2
        assert leg is not None
        self.hangup_request(c2, 0)
        self._cdr_c1(legs)
        self.hangup(c1, 0)
        self._complete_event(legs, h, "caller")
        self.varset(c2, ("BRIDGEPEER", ""))
        self.varset(leg.one, ("BRIDGEPEER", ""))
        self.bridge_leave(legs.bridge, c2)
        self._cdr_c2(legs)
        self._queue_vars(c2, legs.queue)
        self._cdr_agent(leg, "Wait", int(legs.call.talk))
        self.varset(c2, *self._times(legs, h.info.get("talk", 0)))
        self.hangup_request(c2, 16, soft=True)
        self.bridge_leave(legs.bridge, leg.one)
        self.bridge_destroy(legs.bridge)
        self.hangup_request(leg.two, 16)
        self.hangup(c2)
        self.hangup_request(leg.two, 16, soft=True)
        self.hangup(leg.two)
        self.hangup(leg.one)
        self._agent_down(leg, twice=False)

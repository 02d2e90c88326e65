"""AMI rendering of what happens during a talk: hold, recording stop, blind and attended
transfers, Redirect out of a queue or a bridge, and agent-originated (outbound) calls.

The base of `simrender.AmiRenderer`, following the recorded sequences of c-mixed-day
(`*5` agent hold, `#1`/BlindTransfer to `xfer`, `*2`/attended transfer to 2001@xfer).
"""

from __future__ import annotations

from ctid.drivers.asterisk.simbase import INHERITED, RenderBase
from ctid.drivers.asterisk.simwire import Chan, Legs
from ctid.sim.model import Happening


class Features(RenderBase):
    def _dtmf(self, ch: Chan, digits: str, ms: int) -> None:
        for digit in digits:
            self.plain("DTMFEnd", ch, ("Digit", digit), ("DurationMs", ms), ("Direction", "Received"),
                       privilege="dtmf,all")

    def _drop_leg(self, legs: Legs) -> None:
        leg = legs.talk
        if leg is not None:
            for ch in (leg.one, leg.two):
                if ch is not None and ch.name not in self.channels:
                    self.owner.pop(ch.name, None)
        legs.talk = None

    # -- during the talk ---------------------------------------------------------------------

    def _on_hold(self, h: Happening) -> None:
        legs = self.legs.get(h.call.id)  # type: ignore[union-attr]
        if legs is None or legs.talk is None:
            return
        a1 = legs.talk.one
        self._dtmf(a1, "*5", 100)  # the site's `agenthold` feature
        self.varset(a1, ("DYNAMIC_FEATURENAME", "agenthold"), ("DYNAMIC_WHO_ACTIVATED", a1.name))
        self.plain("Hold", a1, ("MusicClass", "default"))  # on the agent's channel, not the caller's
        self.moh(legs.c2, True)

    def _on_unhold(self, h: Happening) -> None:
        legs = self.legs.get(h.call.id)  # type: ignore[union-attr]
        if legs is not None and legs.talk is not None:
            self.plain("Unhold", legs.talk.one)
            self.moh(legs.c2, False)

    def _on_record_stop(self, h: Happening) -> None:
        legs = self.legs.get(h.call.id)  # type: ignore[union-attr]
        if legs is not None:
            self.plain("MixMonitorStop", legs.c2)  # only an explicit stop says so; a hangup never does

    # -- transfers and redirects -------------------------------------------------------------

    def _on_blind_transfer(self, h: Happening) -> None:
        legs = self.legs[h.call.id]  # type: ignore[union-attr]
        leg, c2, target = legs.talk, legs.c2, h.info["target"]
        if leg is None or c2 is None:
            return
        a1, a2, bridge = leg.one, leg.two, legs.bridge or ""
        self.plain("Unhold", a1)  # Asterisk's quirk: an Unhold that no Hold preceded
        self._cdr_agent(leg, "Wait", int(legs.call.talk))
        self.varset(c2, ("BLINDTRANSFER", a1.name))
        self.varset(a1, ("BLINDTRANSFER", c2.name), ("BRIDGEPEER", ""))
        self.event("BlindTransfer", "call,all", [("Result", "Success"), *a1.snapshot("Transferer"),
                                                 *c2.snapshot("Transferee"), *self._bridge_fields(bridge),
                                                 ("IsExternal", "Yes"), ("Context", "xfer"), ("Extension", target)])
        self.bridge_leave(bridge, a1)
        self._complete_event(legs, h, "transfer")
        self.hangup_request(a2, 16)
        self.varset(c2, ("BRIDGEPEER", ""))
        self.hangup(a1)
        self._move(c2, "xfer", target, 1)
        self.bridge_leave(bridge, c2)
        self.varset(c2, *self._times(legs, 0))
        self._queue_vars(c2, legs.queue)
        self.newexten(c2, "NoOp", f"Blind transfer of {legs.call.ref} to {target} queue", priority=1)
        self.newexten(c2, "Goto", f"inbound,{target},1", priority=2)
        self.hangup_request(a2, 16, soft=True)
        self._inbound_dialplan(legs, target)
        self.bridge_destroy(bridge)
        self.hangup(a2 or a1)
        self._agent_down(leg)
        legs.bridge = None
        self._drop_leg(legs)

    def _on_redirect(self, h: Happening) -> None:
        """A Redirect (of the caller) to another queue's DID: out of the queue, or out of the bridge."""
        legs = self.legs[h.call.id]  # type: ignore[union-attr]
        c2, target = legs.c2, h.info["target"]
        if h.info.get("stage") == "queue":
            wait = h.info["wait"]
            self._cancel_ring(legs, first=True)
            self._queue_vars(c2, legs.queue)
            self._abandon_event(legs, h)  # Asterisk reports a redirect out of the queue as an abandon
            self._cancel_ring(legs, first=False)
            self.moh(c2, False)
            self.varset(c2, ("QUEUEWAIT", int(wait)), ("QUEUEWAIT_MS", int(wait * 1000)), *self._times(legs, 0))
            self._leave(legs, h.queue or "", h.info["position"])
        else:
            leg = legs.talk
            assert leg is not None and c2 is not None
            self.varset(c2, ("BRIDGEPEER", ""))
            self.varset(leg.one, ("BRIDGEPEER", ""))
            self._move(c2, "inbound", target, 1)
            self.bridge_leave(legs.bridge, c2)
            self._complete_event(legs, h, "transfer")
            self.bridge_leave(legs.bridge, leg.one)
            self.bridge_destroy(legs.bridge)
            self.hangup_request(leg.two, 16)
            self.hangup(leg.one)
            self.hangup_request(leg.two, 16, soft=True)
            self.hangup(leg.two)
            self._cdr_agent(leg)
            self._agent_down(leg)
            legs.bridge = None
            self._drop_leg(legs)
        self._inbound_dialplan(legs, target)

    def _on_consult(self, h: Happening) -> None:
        legs = self.legs[h.call.id]  # type: ignore[union-attr]
        call, leg, c2, target = legs.call, legs.talk, legs.c2, h.info["target"]
        if leg is None:
            return
        a1 = leg.one
        self.varset(a1, ("TRANSFER_CONTEXT", "xfer"))
        self._dtmf(a1, "*2", 0)
        self.plain("Hold", a1)  # the atxfer hold: no MusicClass, and no Unhold will ever follow
        self.moh(c2, True)
        self._dtmf(a1, target, 0)
        x1, x2 = legs.x1, legs.x2 = self.local_pair(target, "xfer", legs.c1.linkedid)
        self._own(call, "target", x1, x2)
        self.newchannel(x1, x2)
        inherited = tuple(zip(INHERITED, (call.ref, "agenthold", "", int(call.talk))))
        self.varset(x1, ("TRANSFERERNAME", a1.name), ("ATTENDEDTRANSFER", a1.name), *inherited)
        legs.bridge2 = self.bridge_create()
        self.varset(x2, ("ATTENDEDTRANSFER", a1.name), ("TRANSFERERNAME", a1.name), *inherited)
        x2.set_caller(call.number, call.name)
        self.newcallerid(x2)
        self.localbridge(x1, x2, "xfer", target, True)
        self.newexten(x2, "NoOp", f"Supervisor line offered {call.ref}", priority=1)
        self.newexten(x2, "Ringing", "", priority=2)
        x1.set_connected(call.number, call.name)
        self.newstate(x1, 5)
        self.newconnectedline(x1)
        self.newexten(x2, "Wait", 2, priority=3)
        self.bridge_enter(legs.bridge2, x1)
        self.varset(x1, ("ATTENDEDTRANSFER", ""))
        self.dial("DialState", None, x1, ("DialStatus", "RINGING"))
        self.bridge_leave(legs.bridge, a1)
        self.bridge_enter(legs.bridge2, a1)
        self.varset(x1, ("BRIDGEPEER", a1.name))
        self.varset(a1, ("BRIDGEPEER", x1.name))
        a1.set_connected(x1.cid_num, x1.cid_name)
        self.newconnectedline(a1)

    def _on_consult_answer(self, h: Happening) -> None:
        legs = self.legs[h.call.id]  # type: ignore[union-attr]
        if legs.x1 is None or legs.talk is None:
            return
        x1, x2, a1 = legs.x1, legs.x2, legs.talk.one
        self.newexten(x2, "Answer", "", priority=4)
        self.newstate(x2, 6)
        self.newstate(x1, 6)
        self.dial("DialEnd", None, x1, ("DialStatus", "ANSWER"))
        self.varset(x1, ("BRIDGEPEER", a1.name))
        self.varset(a1, ("BRIDGEPEER", x1.name))
        self.newexten(x2, "Wait", 15, priority=5)

    def _on_consult_fail(self, h: Happening) -> None:
        legs = self.legs[h.call.id]  # type: ignore[union-attr]
        if legs.talk is None or legs.x1 is None:
            return
        a1, c2 = legs.talk.one, legs.c2
        self.hangup_request(legs.x2, 16, soft=True)
        self.hangup_request(legs.x1, 16)
        self.hangup(legs.x2)
        self.bridge_leave(legs.bridge2, legs.x1)
        self.hangup(legs.x1)
        self.bridge_leave(legs.bridge2, a1)
        self.bridge_destroy(legs.bridge2)
        self.bridge_enter(legs.bridge or "", a1)
        self.varset(a1, ("BRIDGEPEER", c2.name if c2 else ""))
        self.varset(c2, ("BRIDGEPEER", a1.name))
        self.plain("Unhold", a1)
        self.moh(c2, False)
        for ch in (legs.x1, legs.x2):
            if ch is not None:
                self.owner.pop(ch.name, None)
        legs.x1 = legs.x2 = legs.bridge2 = None

    def _on_attended_transfer(self, h: Happening) -> None:
        legs = self.legs[h.call.id]  # type: ignore[union-attr]
        leg, c2, x1 = legs.talk, legs.c2, legs.x1
        if leg is None or x1 is None or c2 is None:
            return
        a1, a2, b1, b2 = leg.one, leg.two, legs.bridge or "", legs.bridge2 or ""
        self.newexten(a2, "Hangup", "", priority=9)  # the agent hangs up: that completes the transfer
        self.newcallerid(a2, "67 (Number Unavailable)")
        self.hangup_request(a2, 16, soft=True)
        self.hangup_request(a1, 16)
        self._cdr_agent(leg)
        self.hangup(a2)
        self.varset(a1, ("BRIDGEPEER", ""))
        self.bridge_leave(b2, a1)
        self.event("BridgeMerge", "call,all", [*self._bridge_fields(b1, "To"), *self._bridge_fields(b2, "From")])
        self.bridge_leave(b2, x1)
        self.bridge_enter(b1, x1)
        self.moh(c2, False)
        self.varset(c2, ("BRIDGEPEER", x1.name))
        self.varset(x1, ("BRIDGEPEER", c2.name))
        self.event("AttendedTransfer", "call,all", [
            ("Result", "Success"), *a1.snapshot("OrigTransferer"), *self._bridge_fields(b1, "Orig", 2),
            *a1.snapshot("SecondTransferer"), *self._bridge_fields(b2, "Second", 0), *c2.snapshot("Transferee"),
            *x1.snapshot("TransferTarget"), ("IsExternal", "No"), ("DestType", "Bridge"), ("DestBridgeUniqueid", b1)])
        c2.set_connected(x1.cid_num, x1.cid_name)
        self.newconnectedline(c2)
        self.bridge_destroy(b2)
        legs.bridge2 = None
        self.hangup(a1)
        self._complete_event(legs, h, "transfer")
        self._agent_down(leg)
        self._drop_leg(legs)

    def _end_target(self, legs: Legs, h: Happening) -> None:
        """The call after an attended transfer ends: the target (or the caller) hangs up."""
        c1, c2, x1, x2 = legs.c1, legs.c2, legs.x1, legs.x2
        if h.info.get("by") == "caller":
            self.hangup_request(c2, 0)
            self.hangup(c1, 0)
            self._cdr_c1(legs)
        else:
            self.newexten(x2, "Hangup", "", priority=6)
            self.hangup_request(x2, 16, soft=True)
            self.hangup_request(x1, 16)
            self.hangup(x2)
            if x2 is not None:
                self.cdr(x2, x2.exten, "xfer", "Hangup", "")
        self.varset(x1, ("BRIDGEPEER", ""))
        self.varset(c2, ("BRIDGEPEER", ""))
        self.bridge_leave(legs.bridge, x1)
        self.bridge_leave(legs.bridge, c2)
        self.varset(c2, *self._times(legs, h.info.get("talk", 0)))
        self.bridge_destroy(legs.bridge)
        self.hangup_request(c2, 16, soft=True)
        self.hangup(x1)
        self.hangup_request(c1, 16)
        self.hangup(c1)
        self._cdr_c1(legs)
        self._cdr_c2(legs)
        self.hangup(c2)

    def _end_in_consult(self, legs: Legs, h: Happening) -> None:
        """The caller hangs up while the agent consults: everything goes down."""
        leg, c1, c2 = legs.talk, legs.c1, legs.c2
        assert leg is not None
        self.hangup_request(c2, 0)
        self._cdr_c1(legs)
        self.hangup(c1, 0)
        self.moh(c2, False)
        self._complete_event(legs, h, "caller")
        self.bridge_leave(legs.bridge, c2)
        self.bridge_destroy(legs.bridge)
        self.hangup_request(c2, 16, soft=True)
        self.hangup(c2)
        self._cdr_c2(legs)
        for ch in (legs.x2, leg.two):
            self.hangup_request(ch, 16)
        for ch in (legs.x1, leg.one):
            self.bridge_leave(legs.bridge2, ch)
        self.bridge_destroy(legs.bridge2)
        for ch in (legs.x1, legs.x2, leg.one, leg.two):
            self.hangup(ch)
        self._agent_down(leg)

    # -- outbound ------------------------------------------------------------------------------

    def _on_dial_agent(self, h: Happening) -> None:
        """Originate to a member's device: its Local channel rings the agent first."""
        call, agent = h.call, h.agent
        assert call is not None and agent is not None
        uid = self.channel_ids.pop(call.tag, None) if call.tag is not None else None
        leg = self._agent_leg(call, agent, None, uid)
        legs = self.legs[call.id] = Legs(call, leg.one, leg.two, self.agent_device(agent))
        legs.talk = leg
        a1, a2 = leg.one, leg.two
        a1.set_caller(call.did, "")
        self.newchannel(a1)
        self.newchannel(*([a2] if a2 else []))
        self.newexten(a1, "AppDial2", "(Outgoing Line)")
        if a2 is not None:
            a2.set_caller(call.did, "")
            self.localbridge(a1, a2, a1.context, a1.exten, True)
        self.dial("DialBegin", None, a1, ("DialString", leg.iface.removeprefix("Local/").removesuffix("/n")))
        self.newexten(a2, "NoOp", f"Agent {agent.ext} offered {call.ref} from {call.did}", priority=1)
        self.newexten(a2, "Ringing", "", priority=2)
        self.newstate(a1, 5)
        self.newexten(a2, "GotoIf", "0?noanswer", priority=3)
        self.newexten(a2, "Wait", 1, priority=4)
        self._member_status(agent)
        self.device(self.agent_device(agent), "INUSE")

    def _on_outbound_dial(self, h: Happening) -> None:
        legs = self.legs[h.call.id]  # type: ignore[union-attr]
        call, a1, a2 = legs.call, legs.c1, legs.c2
        number = call.did
        self.newexten(a2, "Answer", "", priority=5)
        self.newstate(a2, 6)
        self.newstate(a1, 6)
        self.dial("DialEnd", None, a1, ("DialStatus", "ANSWER"))
        if call.tag is not None:
            self.originate_response(call.tag, True, a1.name, [("Context", "outbound"), ("Exten", number)], 4,
                                    a1.uid, a1.cid_num, a1.cid_name)
        self.newexten(a1, "Dial", f"PJSIP/{number}@trunk,60", context="outbound", exten=number, priority=1)
        trunk = legs.trunk = self.single("PJSIP", "trunk", "from-trunk", "s", a1.linkedid)
        self._own(call, "caller", trunk)
        trunk.set_caller(number, "")
        trunk.set_connected(h.agent.ext if h.agent else "", h.agent.name if h.agent else "")
        self.newchannel(trunk)
        self.dial("DialBegin", a1, trunk, ("DialString", f"{number}@trunk"))
        self.newstate(trunk, 5)
        self.dial("DialState", a1, trunk, ("DialStatus", "RINGING"))

    def _on_outbound_answer(self, h: Happening) -> None:
        legs = self.legs[h.call.id]  # type: ignore[union-attr]
        a1, trunk = legs.c1, legs.trunk
        if trunk is None:
            return
        self.newstate(trunk, 6)
        self.dial("DialEnd", a1, trunk, ("DialStatus", "ANSWER"))
        legs.bridge = self.bridge_create()
        self.bridge_enter(legs.bridge, trunk)
        self.bridge_enter(legs.bridge, a1)
        self.varset(trunk, ("BRIDGEPEER", a1.name))
        self.varset(a1, ("BRIDGEPEER", trunk.name))

    def _end_outbound(self, legs: Legs, h: Happening) -> None:
        a1, a2, trunk, leg, call = legs.c1, legs.c2, legs.trunk, legs.talk, legs.call
        assert leg is not None
        stage, by = h.info.get("stage"), h.info.get("by")
        if stage == "agent":  # the member's device never answered the originate
            self.hangup_request(a2, 16)
            self.dial("DialEnd", None, a1, ("DialStatus", "CANCEL"))
            self.hangup(a1, 16)
            self.hangup(a2, 16)
            if call.tag is not None:
                self.originate_response(call.tag, False, a1.name, [("Context", "outbound"), ("Exten", call.did)], 1)
        elif stage == "ringing" and trunk is not None:
            self.dial("DialEnd", a1, trunk, ("DialStatus", "NOANSWER" if by == "noanswer" else "CANCEL"))
            self.hangup(trunk, 19 if by == "noanswer" else 16)
            self.newexten(a1, "Hangup", "", priority=2)
            self.hangup_request(a1, 16, soft=True)
            self.hangup_request(a2, 16)
            self.hangup(a1)
            self.hangup(a2)
            self.cdr(a1, call.did, "outbound", "Dial", f"PJSIP/{call.did}@trunk,60", dest_channel=trunk.name)
        else:
            if by == "agent":
                self.hangup_request(a2, 16, soft=True)
                self.hangup_request(a1, 16)
                self.hangup(a2)
                self.bridge_leave(legs.bridge, a1)
                self.hangup_request(trunk, 16)
                self.bridge_leave(legs.bridge, trunk)
            else:
                self.hangup_request(trunk, 16)
                self.bridge_leave(legs.bridge, trunk)
                self.hangup(trunk)
                self.bridge_leave(legs.bridge, a1)
                self.hangup_request(a1, 16, soft=True)
                self.hangup_request(a2, 16)
            self.bridge_destroy(legs.bridge)
            for ch in (a1, trunk, a2):
                self.hangup(ch)
            self.cdr(a1, call.did, "outbound", "Dial", f"PJSIP/{call.did}@trunk,60",
                     dest_channel=trunk.name if trunk else "")
        self._agent_down(leg, twice=False)

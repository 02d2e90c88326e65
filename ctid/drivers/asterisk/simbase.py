"""The renderer's common ground: the call center it draws, the channels of each call, and
the helpers and member events (QueueMemberStatus/Pause/Added/Removed, queue device states)
that every flow uses. Flows are in `simrender.py` (calls) and `simfeatures.py` (features).
"""

from __future__ import annotations

from typing import Any

from ctid.drivers.asterisk.simwire import AgentLeg, Chan, Legs, Wire
from ctid.sim.model import Agent, Call, Happening, Membership
from ctid.sim.traffic import CallCenter

MONITOR = "/var/spool/asterisk/monitor"
INHERITED = ("__CALLREF", "__DYNAMIC_FEATURES", "__NOANS", "__TALKTIME")


class RenderBase(Wire):
    """A sink of `CallCenter` happenings; `take()` returns the frames rendered since the last call."""

    def __init__(self, model: CallCenter, epoch: float, seed: int) -> None:
        Wire.__init__(self, epoch, seed)
        self.model = model
        self.legs: dict[int, Legs] = {}
        self.owner: dict[str, tuple[Call, str]] = {}  # channel name -> (call, side: caller|agent|target)
        self.channel_ids: dict[str, str] = {}  # Originate ActionID -> the ChannelId it asked for
        self.avail = {name: self._is_avail(name) for name in model.queues}

    def __call__(self, h: Happening) -> None:
        self.now = h.t
        handler = getattr(self, "_on_" + h.kind, None)
        if handler is not None:
            handler(h)

    # -- helpers ---------------------------------------------------------------------------

    def iface(self, agent: Agent) -> str:
        return agent.interface or f"Local/{agent.ext}@agents/n"

    def agent_device(self, agent: Agent) -> str:
        iface = self.iface(agent)
        return iface[:-2] if iface.endswith("/n") else iface

    def _own(self, call: Call, side: str, *chans: Chan | None) -> None:
        for ch in chans:
            if ch is not None:
                self.owner[ch.name] = (call, side)

    def _epoch0(self, t: float | None) -> int:
        return 0 if t is None else self.epoch(t)

    def _did_state(self, legs: Legs) -> None:
        prefix = legs.device + "-"
        busy = any(name.startswith(prefix) for name in self.channels)
        self.device(legs.device, "INUSE" if busy else "NOT_INUSE")

    def _agent_leg(self, call: Call, agent: Agent, linkedid: str | None, uid: str | None = None) -> AgentLeg:
        iface = self.iface(agent)
        if iface.startswith("Local/"):
            exten, _, context = iface[6:].removesuffix("/n").partition("@")
            one, two = self.local_pair(exten, context or "agents", linkedid, uid)
        else:  # a device member (PJSIP/2000): one channel, no dialplan of its own
            tech, _, endpoint = iface.partition("/")
            one, two = self.single(tech, endpoint, "from-internal", endpoint, linkedid, uid), None
        self._own(call, "agent", one, two)
        return AgentLeg(agent, iface, one, two)

    def _agent_event(self, name: str, c2: Chan | None, leg: AgentLeg, queue: str, *extra: tuple[str, Any]) -> None:
        chans = [*c2.snapshot(), *leg.one.snapshot("Dest")] if c2 is not None else []
        self.event(name, "agent,all", [*chans, ("Queue", queue), ("Interface", leg.iface),
                                       ("MemberName", leg.agent.name), *extra])

    def member_fields(self, agent: Agent, m: Membership) -> list[tuple[str, Any]]:
        iface = self.iface(agent)
        in_call = agent.state == "talking" and agent.call is not None and agent.call.queue == m.queue
        status = 2 if agent.state in ("ringing", "talking", "outbound") else 1
        return [("Queue", m.queue), ("MemberName", agent.name), ("Interface", iface), ("StateInterface", iface),
                ("Membership", "dynamic" if m.dynamic else "static"), ("Penalty", m.penalty),
                ("CallsTaken", agent.calls_taken), ("LastCall", self._epoch0(agent.last_call)),
                ("LastPause", self._epoch0(m.last_pause)), ("LoginTime", self.epoch(m.login_time)),
                ("InCall", int(in_call)), ("Status", status), ("Paused", int(m.paused)), ("PausedReason", m.reason),
                ("Ringinuse", 0), ("Wrapuptime", 0)]

    def _member_status(self, agent: Agent) -> None:
        for m in list(agent.members.values()):
            self.event("QueueMemberStatus", "agent,all", self.member_fields(agent, m))
            self._avail(m.queue)

    def _is_avail(self, queue: str) -> bool:
        for ext in self.model.queues[queue].members:
            agent = self.model.agents[ext]
            m = agent.members.get(queue)
            if m is not None and not m.paused and agent.state in ("idle", "wrapup"):
                return True
        return False

    def _avail(self, queue: str) -> None:
        now = self._is_avail(queue)
        if now != self.avail.get(queue):
            self.avail[queue] = now
            self.device(f"Queue:{queue}_avail", "NOT_INUSE" if now else "INUSE")

    def _queue_vars(self, ch: Chan | None, queue: str) -> None:
        q = self.model.queues[queue]
        perf = 100.0 * q.completed_in_sl / q.completed if q.completed else 0.0
        self.varset(ch, ("QUEUENAME", queue), ("QUEUEMAX", 0), ("QUEUESTRATEGY", q.spec.strategy),
                    ("QUEUECALLS", len(q.waiting)), ("QUEUEHOLDTIME", int(q.holdtime)), ("QUEUETALKTIME", int(q.talktime)),
                    ("QUEUECOMPLETED", q.completed), ("QUEUEABANDONED", q.abandoned),
                    ("QUEUESRVLEVEL", q.spec.service_level), ("QUEUESRVLEVELPERF", f"{perf:.1f}"))

    def _times(self, legs: Legs, answered: float) -> tuple[tuple[str, Any], ...]:
        dialed = self.now - legs.t_app
        return (("ANSWEREDTIME", int(answered)), ("ANSWEREDTIME_MS", int(answered * 1000)),
                ("DIALEDTIME", int(dialed)), ("DIALEDTIME_MS", int(dialed * 1000)))

    def _leave(self, legs: Legs, queue: str, position: int) -> None:
        waiting = len(self.model.queues[queue].waiting)
        if waiting == 0:
            self.device(f"Queue:{queue}", "NOT_INUSE")
        self.plain("QueueCallerLeave", legs.c2, ("Queue", queue), ("Position", position), ("Count", waiting),
                   privilege="agent,all")
        self.varset(legs.c2, ("QUEUEPOSITION", position))

    def _cdr_c1(self, legs: Legs) -> None:
        self.cdr(legs.c1, legs.call.did, "inbound", "Wait", legs.c1.data)

    def _cdr_c2(self, legs: Legs, app: str = "Queue", data: str | None = None) -> None:
        dest = legs.talk.one.name if legs.talk is not None else ""
        self.cdr(legs.c2, "s", "queue-entry", app, legs.queue_app if data is None else data, dest_channel=dest,
                 userfield=legs.call.ref)

    def _cdr_agent(self, leg: AgentLeg, app: str = "Hangup", data: Any = "") -> None:
        ch = leg.two or leg.one
        self.cdr(ch, leg.agent.ext, ch.context if leg.two is None else "agents", app, data)

    def originate_response(self, tag: str | None, ok: bool, channel: str, how: list[tuple[str, Any]], reason: int,
                           uid: str = "<null>", num: str = "<unknown>", name: str = "<unknown>") -> None:
        head = [("ActionID", tag)] if tag else []
        self.event("OriginateResponse", "call,all", [*head, ("Response", "Success" if ok else "Failure"),
                                                     ("Channel", channel), *how, ("Reason", reason),
                                                     ("Uniqueid", uid), ("CallerIDNum", num), ("CallerIDName", name)])

    def _inbound_dialplan(self, legs: Legs, queue: str) -> None:
        """`inbound,<did>`: NoOp, Set(QNAME), Goto(queue-entry) and its Answer()."""
        c2, call = legs.c2, legs.call
        self.newexten(c2, "NoOp", f"Inbound DID {queue} call {call.ref}", context="inbound", exten=queue, priority=1)
        self.newexten(c2, "Set", f"QNAME={queue}", priority=2)
        self.varset(c2, ("QNAME", queue))
        self.newexten(c2, "Goto", "queue-entry,s,1", priority=3)
        self.newexten(c2, "Answer", "", context="queue-entry", exten="s", priority=1)

    def _cancel_ring(self, legs: Legs, first: bool) -> None:
        """A ring that ends without an answer, in the two parts real Asterisk interleaves with the queue events."""
        leg = legs.ring
        if leg is None:
            return
        if first:
            self.dial("DialEnd", legs.c2, leg.one, ("DialStatus", "CANCEL"))
            self.hangup_request(leg.two, 0)
            self.hangup(leg.one if leg.two is not None else None, 0)
            return
        self._member_status(leg.agent)
        device = self.agent_device(leg.agent)
        self.device(device, "NOT_INUSE")
        self.hangup_request(leg.two, 16, soft=True)
        self.hangup(leg.two or leg.one, 0)
        self.device(device, "NOT_INUSE")
        legs.ring = None

    def _abandon_event(self, legs: Legs, h: Happening) -> None:
        self.plain("QueueCallerAbandon", legs.c2, ("Queue", h.queue), ("Position", h.info["position"]),
                   ("OriginalPosition", h.info["original_position"]), ("HoldTime", int(h.info["wait"])),
                   privilege="agent,all")

    def _complete_event(self, legs: Legs, h: Happening, reason: str, channels: bool = True) -> None:
        leg = legs.talk
        assert leg is not None
        extra = (("HoldTime", int(h.info.get("wait", 0))), ("TalkTime", int(h.info.get("talk", 0))), ("Reason", reason))
        self._agent_event("AgentComplete", legs.c2 if channels else None, leg, h.queue or "", *extra)

    def _agent_down(self, leg: AgentLeg, twice: bool = True) -> None:
        self._member_status(leg.agent)
        device = self.agent_device(leg.agent)
        for _ in range(1 + twice):
            self.device(device, "NOT_INUSE")

    def _finish(self, legs: Legs) -> None:
        """Whatever is still up when a call is over goes down; the call is forgotten."""
        for ch in legs.chans():
            if ch.name in self.channels:
                self.hangup_request(ch, 16)
                self.hangup(ch)
        for bid in (legs.bridge, legs.bridge2):
            self.bridge_destroy(bid)
        self._did_state(legs)
        for ch in legs.chans():
            self.owner.pop(ch.name, None)
        self.legs.pop(legs.call.id, None)

    # -- members -------------------------------------------------------------------------------

    def _on_pause(self, h: Happening, paused: bool = True) -> None:
        agent = h.agent
        assert agent is not None
        for queue in h.info["queues"]:
            m = agent.members.get(queue)
            if m is None:
                continue
            self.device(f"Queue:{queue}_pause_{self.iface(agent)}", "INUSE" if paused else "NOT_INUSE")
            if not paused:
                self._avail(queue)
            self.event("QueueMemberPause", "agent,all", self.member_fields(agent, m))
            self._avail(queue)

    def _on_unpause(self, h: Happening) -> None:
        self._on_pause(h, paused=False)

    def _on_member_add(self, h: Happening) -> None:
        agent, queue = h.agent, h.queue or ""
        assert agent is not None
        m = agent.members[queue]
        self.device(f"Queue:{queue}_pause_{self.iface(agent)}", "INUSE" if m.paused else "NOT_INUSE")
        self.event("QueueMemberAdded", "agent,all", self.member_fields(agent, m))
        self._avail(queue)

    def _on_member_remove(self, h: Happening) -> None:
        agent = h.agent
        assert agent is not None
        self.event("QueueMemberRemoved", "agent,all", self.member_fields(agent, h.info["member"]))
        self._avail(h.queue or "")

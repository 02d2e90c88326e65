"""AMI frames -> normalized events. No I/O: frames in (dicts from protocol.py), event dicts out.

Correlation rules (see docs/design.md, "Asterisk mapping"):
- one customer call = one Linkedid: Local channel halves, agent legs and transfer
  legs share it; AttendedTransfer linkedids that differ are aliased onto the first (transfers.py).
- device-to-device dials (not a queue's) are told by DialBegin/DialEnd (dials.py).
- a channel is an agent leg when its device (channel name without the `-xxxx;n`
  suffix) is a known queue member's interface.
- QueueCallerAbandon is a real abandon only when the caller side asked to hang up
  first (HangupRequest, or a caller leg hung up); otherwise the queue timed out
  or the call was redirected out of the queue (`call.diverted`). Which of the two
  is known only from where the channel goes next: its next Newexten in the place
  (context, exten) of the Queue() step is a timeout (Queue() returned), elsewhere
  a Redirect by some AMI client; a Hangup first is a timeout. The diverted event
  waits for that frame (queueexit.py), keeping the abandon's fields and time.
- a recording's file name comes from the VarSet MIXMONITOR_FILENAME just before
  MixMonitorStart; a recording ends with MixMonitorStop or with its channel (recordings.py).
- after a (re)connect the live channel and queue lists rebuild the calls (resync.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from ctid.drivers.asterisk.dials import Dials
from ctid.drivers.asterisk.members import Members, clean, interface_device
from ctid.drivers.asterisk.queueexit import QueueExits
from ctid.drivers.asterisk.recordings import Recordings
from ctid.drivers.asterisk.resync import rebuild
from ctid.drivers.asterisk.transfers import Transfers

log = logging.getLogger("ctid.driver.asterisk")

Event = dict[str, Any]

WITHHELD = frozenset({"anonymous", "Anonymous", "restricted", "Restricted", "private", "Private"})
DEFAULT_INBOUND_CONTEXTS = ("inbound", "from-pstn", "from-trunk", "from-external", "from-did")


@dataclass(slots=True)
class Call:
    call_id: str
    called: str | None = None
    caller: str | None = None
    caller_name: str | None = None
    withheld: bool = False
    direction: str | None = None
    first_context: str | None = None
    origin_agent: str | None = None  # the agent whose device started the call
    offered: bool = False
    queue: str | None = None
    in_queue: str | None = None
    agent: str | None = None
    device: str | None = None
    caller_gone: bool = False
    held: bool = False
    queue_place: tuple[str | None, str | None] | None = None  # (Context, Exten) of the Queue() step
    channels: set[str] = field(default_factory=set)


class AsteriskMapper:
    """Stateful normalizer for one AMI link. `handle(frame, ts)` returns the events it causes."""

    def __init__(
        self,
        source: str = "asterisk",
        inbound_contexts: tuple[str, ...] = DEFAULT_INBOUND_CONTEXTS,
        wrapup: dict[str, float] | None = None,
        internal_digits: int = 5,
        decide_within: float = 5.0,
    ) -> None:
        self.source = source
        self.inbound_contexts = frozenset(inbound_contexts)
        self.queue_wrapup = dict(wrapup or {})
        self.internal_digits = internal_digits
        self.calls: dict[str, Call] = {}
        self.chan_call: dict[str, str] = {}  # uniqueid -> call_id
        self.chan_name: dict[str, str] = {}  # uniqueid -> channel name
        self.members = Members(source)
        self.connected: dict[str, str] = {}  # member device -> call_id (open AgentConnect)
        self.dials = Dials(self)  # device-to-device dials (dials.py)
        self.transfers = Transfers(self)
        self.aliases = self.transfers.aliases  # linkedid -> call_id it was merged into (attended transfers)
        self.recordings = Recordings(self.ensure_call, self.call_or_bare, self.event)
        self.exits = QueueExits(decide_within)  # queue exits waiting to learn timeout vs Redirect
        self.unknown = 0  # frames of events we do not map
        self.orphans = 0  # events for channels/calls we never saw
        self._handlers: dict[str, Callable[[dict[str, str], float, list[Event]], None]] = {
            "Newchannel": self._newchannel,
            "Newstate": self._newstate,
            "HangupRequest": self._hangup_request,
            "Hangup": self._hangup,
            "DialBegin": self.dials.begin,
            "DialEnd": self.dials.end,
            "QueueCallerJoin": self._queue_join,
            "QueueCallerLeave": self._queue_leave,
            "QueueCallerAbandon": self._queue_abandon,
            "AgentCalled": self._agent_called,
            "AgentRingNoAnswer": self._agent_ring_no_answer,
            "AgentConnect": self._agent_connect,
            "AgentComplete": self._agent_complete,
            "Hold": self._hold,
            "Unhold": self._unhold,
            "BlindTransfer": self.transfers.blind,
            "AttendedTransfer": self.transfers.attended,
            "VarSet": self.recordings.varset,
            "MixMonitorStart": self.recordings.started,
            "MixMonitorStop": self.recordings.stopped,
            "QueueMemberPause": self.members.pause,
            "QueueMemberAdded": self.members.added,
            "QueueMemberRemoved": self.members.removed,
            "QueueMemberStatus": self.members.status,
            "QueueMember": self.members.status,
        }
        # Events that carry nothing for the model but are expected (not counted as unknown).
        self._ignored = frozenset(
            {
                "BridgeEnter", "BridgeLeave", "BridgeMerge", "FullyBooted", "OriginateResponse",
                "QueueParams", "QueueEntry", "QueueStatusComplete", "QueueSummary", "QueueSummaryComplete",
                "CoreShowChannel", "CoreShowChannelsComplete", "Status", "StatusComplete", "AGIExecStart",
                "AGIExecEnd", "AsyncAGIStart", "AsyncAGIExec", "AsyncAGIEnd", "Shutdown", "UserEvent", "NewConnectedLine", "Rename", "Masquerade",
                "ChanSpyStart", "ChanSpyStop", "Newexten",  # Newexten: only read while a diversion is undecided
            }
        )

    # -- entry points ---------------------------------------------------------------------

    def handle(self, frame: dict[str, str], ts: float) -> list[Event]:
        """Map one frame (an event; responses are the link's business) to zero or more events."""
        name = frame.get("Event")
        if name is None:
            return []
        out: list[Event] = []
        exits = self.exits
        if exits.pending:  # rare and short-lived: the only per-frame cost of deciding queue exits
            exits.decide(name, frame, ts, out)
        handler = self._handlers.get(name)
        if handler is None:
            if name not in self._ignored:
                self.unknown += 1
            return out
        try:
            handler(frame, ts, out)
        except (KeyError, ValueError, TypeError) as exc:
            # A frame missing a field it should have: count, log with context, go on.
            self.unknown += 1
            log.warning("cannot map AMI event", extra={"ctx": {"event": name, "error": repr(exc), "uniqueid": frame.get("Uniqueid")}})
        if exits.pending and out:
            exits.settle_before(out)
        return out

    # -- helpers -------------------------------------------------------------------------

    # Public: recordings.py, transfers.py and resync.py work the calls through these.

    def call_id(self, linkedid: str) -> str:
        """The call_id of a Linkedid (an attended transfer may have merged it into another call)."""
        return self.aliases.get(linkedid, linkedid)

    def event(self, type_: str, call: Call, ts: float, **extra: Any) -> Event:
        """A normalized event of `type_` carrying the call's fields, then `extra`."""
        event: Event = {"type": type_, "ts": ts, "source": self.source, "call_id": call.call_id, "caller": call.caller,
                        "caller_name": call.caller_name, "called": call.called, "queue": call.queue,
                        "agent": call.agent, "device": call.device, "direction": call.direction}
        event.update(extra)
        return event

    def call_or_bare(self, call_id: str) -> Call:
        """The call by id; a bare one (no fields but the id) when it is gone."""
        return self.calls.get(call_id) or Call(call_id)

    def _is_agent_leg(self, uid: str) -> bool:
        name = self.chan_name.get(uid)
        return name is not None and self.members.is_agent_channel(name)

    def ensure_call(self, frame: dict[str, str], uid_key: str = "Uniqueid", link_key: str = "Linkedid") -> Call | None:
        """The call a frame's channel belongs to, registering a channel first seen mid-call."""
        uid = frame.get(uid_key)
        call_id = self.chan_call.get(uid) if uid else None
        if call_id is None:
            linkedid = frame.get(link_key)
            if not linkedid:
                raise KeyError(f"{uid_key}/{link_key}")  # malformed: counted and logged by handle()
            call_id = self.call_id(linkedid)
            if uid:
                self.chan_call[uid] = call_id
                self.chan_name[uid] = frame.get("Channel", "")
        call = self.calls.get(call_id)
        if call is None:
            call = self.calls[call_id] = Call(call_id)
        if uid:
            call.channels.add(uid)
        return call

    def learn_caller(self, call: Call, frame: dict[str, str]) -> None:
        """Take the caller's number and name from a caller-side frame (a withheld number clears it)."""
        num = frame.get("CallerIDNum")
        if num in WITHHELD:
            call.withheld = True
            call.caller = None
        elif clean(num) is not None:
            call.caller = num
        name = clean(frame.get("CallerIDName"))
        if name is not None:
            call.caller_name = name

    def offer(self, call: Call, ts: float, out: list[Event]) -> None:
        """`call.offered`, once per call, with the direction decided then."""
        if call.offered:
            return
        call.offered = True
        if call.direction is None:
            if call.in_queue or call.first_context in self.inbound_contexts:
                call.direction = "inbound"
            elif call.origin_agent is not None:
                digits = len((call.called or "").lstrip("+"))
                call.direction = "outbound" if digits > self.internal_digits else "internal"
            else:
                call.direction = "internal"
        extra = {"x": {"withheld": True}} if call.withheld else {}
        out.append(self.event("call.offered", call, ts, **extra))

    def close(self, call: Call, ts: float, out: list[Event], **extra: Any) -> None:
        """The call is over: forget its channels, recordings and aliases; `call.cleared` if it was offered."""
        if self.exits.pending:
            self.exits.settle_call(call.call_id, out, "the call ended")
        for uid in list(call.channels):
            self.recordings.end(uid, ts, out)
            self.chan_call.pop(uid, None)
            self.chan_name.pop(uid, None)
        del self.calls[call.call_id]
        if self.aliases:  # rare (attended transfers across linkedids)
            self.transfers.forget(call.call_id)
        # `connected` keeps the member's entry: AgentComplete may still come (after Hangup);
        # it is one entry per member, replaced by the next AgentConnect, so it cannot grow.
        if call.offered:
            out.append(self.event("call.cleared", call, ts, **extra))

    # -- channels ------------------------------------------------------------------------

    def _newchannel(self, f: dict[str, str], ts: float, out: list[Event]) -> None:
        uid, linkedid = f["Uniqueid"], f["Linkedid"]
        call_id = self.call_id(linkedid)
        self.chan_call[uid] = call_id
        self.chan_name[uid] = f["Channel"]
        call = self.calls.get(call_id)
        if call is None:
            call = self.calls[call_id] = Call(call_id)
            call.called = clean(f.get("Exten"))
            call.first_context = f.get("Context")
            member = self.members.find(f["Channel"])
            if member is not None:
                call.origin_agent = member.agent
                call.agent = member.agent
                call.device = member.agent
        call.channels.add(uid)
        if not self._is_agent_leg(uid):
            self.learn_caller(call, f)

    def _newstate(self, f: dict[str, str], ts: float, out: list[Event]) -> None:
        call = self.ensure_call(f)
        if call is None:
            return
        if not self._is_agent_leg(f["Uniqueid"]):
            self.learn_caller(call, f)
        if call.origin_agent is None and f["Uniqueid"] == call.call_id and self._is_agent_leg(f["Uniqueid"]):
            member = self.members.find(f["Channel"])
            call.origin_agent = call.agent = call.device = member.agent if member else None
        # Up: the call is real (answered by the PBX or a device). A call an agent's device
        # starts is offered when it dials out, once the dialled number is known.
        if f.get("ChannelState") == "6" and call.origin_agent is None:
            self.offer(call, ts, out)

    def _hangup_request(self, f: dict[str, str], ts: float, out: list[Event]) -> None:
        uid = f.get("Uniqueid", "")
        call_id = self.chan_call.get(uid)
        if call_id in self.calls and not self._is_agent_leg(uid):
            self.calls[call_id].caller_gone = True

    def _hangup(self, f: dict[str, str], ts: float, out: list[Event]) -> None:
        uid = f["Uniqueid"]
        call_id = self.chan_call.get(uid)
        call = self.calls.get(call_id) if call_id else None
        if call is None:
            self.orphans += 1
            return
        if not self._is_agent_leg(uid):
            call.caller_gone = True
        self.recordings.end(uid, ts, out)
        call.channels.discard(uid)
        self.chan_call.pop(uid, None)
        self.chan_name.pop(uid, None)
        if not call.channels:
            cause = f.get("Cause")
            self.close(call, ts, out, cause=int(cause) if cause and cause.isdigit() else None)

    # -- queues --------------------------------------------------------------------------

    def _queue_join(self, f: dict[str, str], ts: float, out: list[Event]) -> None:
        call = self.ensure_call(f)
        if call is None:
            return
        self.learn_caller(call, f)
        call.in_queue = call.queue = f["Queue"]
        call.agent = call.device = None
        call.queue_place = (f.get("Context"), f.get("Exten"))
        self.offer(call, ts, out)
        out.append(self.event("call.queued", call, ts, position=int(f.get("Position") or 0)))

    def _queue_leave(self, f: dict[str, str], ts: float, out: list[Event]) -> None:
        call = self.calls.get(self.chan_call.get(f.get("Uniqueid", ""), ""))
        if call is not None:
            call.in_queue = None

    def _queue_abandon(self, f: dict[str, str], ts: float, out: list[Event]) -> None:
        call = self.ensure_call(f)
        if call is None:
            return
        call.in_queue = None
        call.queue = f["Queue"]
        wait = float(f.get("HoldTime") or 0)
        fields = {"wait": wait, "position": int(f.get("Position") or 0), "original_position": int(f.get("OriginalPosition") or 0)}
        if call.caller_gone:
            out.append(self.event("call.abandoned", call, ts, disposition="abandoned", **fields))
        else:  # a timeout, or somebody else's Redirect: the channel's next step tells (queueexit.py)
            uid = f["Uniqueid"]
            place = call.queue_place or (f.get("Context"), f.get("Exten"))
            self.exits.hold(uid, self.event("call.diverted", call, ts, cause=None, **fields), place, out)

    def _agent_called(self, f: dict[str, str], ts: float, out: list[Event]) -> None:
        call = self.ensure_call(f)
        if call is None:
            return
        member = self.members.learn(f["Interface"], f.get("MemberName"))
        self.offer(call, ts, out)
        out.append(self.event("call.delivered", call, ts, agent=member.agent, device=member.agent, queue=f["Queue"]))

    def _agent_ring_no_answer(self, f: dict[str, str], ts: float, out: list[Event]) -> None:
        call = self.ensure_call(f)
        if call is None:
            return
        member = self.members.learn(f["Interface"], f.get("MemberName"))
        ring = float(f.get("RingTime") or 0) / 1000.0
        out.append(self.event("call.diverted", call, ts, cause="no_answer", agent=member.agent, device=member.agent, ring=ring))

    def _agent_connect(self, f: dict[str, str], ts: float, out: list[Event]) -> None:
        call = self.ensure_call(f)
        if call is None:
            return
        member = self.members.learn(f["Interface"], f.get("MemberName"))
        call.in_queue = None
        call.queue = f["Queue"]
        call.agent = call.device = member.agent
        self.connected[interface_device(f["Interface"])] = call.call_id
        ring = float(f.get("RingTime") or 0)
        out.append(self.event("call.established", call, ts, wait=float(f.get("HoldTime") or 0), ring=ring))

    def _agent_complete(self, f: dict[str, str], ts: float, out: list[Event]) -> None:
        # May arrive after the caller's Hangup and without channel fields: correlate by member.
        device = interface_device(f["Interface"])
        call_id = self.connected.pop(device, None)
        if call_id is None and f.get("Linkedid"):
            call_id = self.call_id(f["Linkedid"])
        member = self.members.learn(f["Interface"], f.get("MemberName"))
        wrapup = member.wrapup or self.queue_wrapup.get(f.get("Queue", ""), 0.0)
        if wrapup > 0:
            out.append(
                {"type": "agent.acw", "ts": ts, "source": self.source, "agent": member.agent, "name": member.name,
                 "queue": f.get("Queue"), "call_id": call_id, "duration": wrapup}
            )

    # -- features ------------------------------------------------------------------------

    def _hold(self, f: dict[str, str], ts: float, out: list[Event]) -> None:
        call = self.ensure_call(f)
        if call is None or call.held:
            return
        call.held = True
        member = self.members.find(f.get("Channel"))
        out.append(self.event("call.held", call, ts, agent=member.agent if member else call.agent))

    def _unhold(self, f: dict[str, str], ts: float, out: list[Event]) -> None:
        call = self.ensure_call(f)
        if call is None or not call.held:  # a blind transfer gives an Unhold with no Hold
            return
        call.held = False
        member = self.members.find(f.get("Channel"))
        out.append(self.event("call.retrieved", call, ts, agent=member.agent if member else call.agent))

    # -- resync --------------------------------------------------------------------------

    def resync(self, channels: list[dict[str, str]], members: list[dict[str, str]],
               entries: list[dict[str, str]], ts: float) -> list[Event]:
        """Rebuild from CoreShowChannel, QueueMember and QueueEntry items after a (re)connect.

        Calls whose channels are all gone ended while the link was down: they are
        closed with disposition `lost`. Live channels we never saw are adopted (resync.py).
        """
        return rebuild(self, channels, members, entries, ts)

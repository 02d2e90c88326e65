"""CSTA messages -> normalized events. No I/O: `Message`s in (protocol.py), event dicts out.

Correlation rules (see docs/csta.md):
- a CSTA call is a callID; one customer call keeps one `call_id` (its first callID).
  A transfer or conference lists the callIDs the parties now have (secondaryOldCall,
  transferredConnections' newConnection): they become aliases of that `call_id` (transfers.py).
- a device listed in `stations` (the agent extensions monitored) is an agent's device;
  agent events teach which agent id sits at which device.
- a consultation call (ServiceInitiated/Originated with cause `consultation`) is not a
  new customer call: it is kept aside until a transfer or conference merges it.
- a queued or ringing call whose caller's connection clears was abandoned; a queue that
  diverts a call with cause `timeout`/`redirected` timed it out / moved it.
- times (wait, ring) come from the server's event time stamps when it sends them
  (extensions/security/timestamp), else from the arrival time.
- recordings are ECMA-269 voice-unit events (RecordEvent / StopEvent, recordings.py); one
  still running when its call ends stops with the call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from ctid.drivers.csta.agents import Agents
from ctid.drivers.csta.protocol import Message, device_id, parse_timestamp, private_data
from ctid.drivers.csta.recordings import Recordings
from ctid.drivers.csta.transfers import Transfers
from ctid.drivers.csta.vocabulary import CAUSES_DIVERTED, Q850, unread

log = logging.getLogger("ctid.driver.csta")

Event = dict[str, Any]


@dataclass(slots=True)
class Call:
    call_id: str
    caller: str | None = None
    caller_name: str | None = None
    withheld: bool = False
    called: str | None = None
    direction: str | None = None
    queue: str | None = None
    in_queue: bool = False
    position: int = 0
    agent: str | None = None
    device: str | None = None
    origin: str | None = None  # the station that started the call
    offered: bool = False
    held: bool = False
    consult: bool = False  # a consultation leg, not (yet) part of a customer call
    current: str = ""  # the callID the call has now (a transfer may give it a new one)
    t_queued: float | None = None
    t_ring: float | None = None
    csta_ids: set[str] = field(default_factory=set)


class CstaMapper:
    """Stateful normalizer for one CSTA link. `handle(message, ts)` returns the events it causes."""

    def __init__(self, source: str = "csta", stations: tuple[str, ...] = (), wrapup: dict[str, float] | None = None,
                 reason_codes: dict[str, str] | None = None, internal_digits: int = 5,
                 agent_names: dict[str, str] | None = None) -> None:
        self.source = source
        self.internal_digits = internal_digits
        self.calls: dict[str, Call] = {}
        self.ids: dict[str, str] = {}  # CSTA callID -> call_id
        self.agents = Agents(source, stations, dict(wrapup or {}), dict(reason_codes or {}), dict(agent_names or {}))
        self.unknown = 0  # events we do not map (or could not: missing fields)
        self.orphans = 0  # events for calls we never saw
        self.recordings = Recordings(source, lambda conn: self.call_of(conn, create=False), self.event,
                                     self._unusable)
        self.transfers = Transfers(self)  # transfers and conferences join callIDs (transfers.py)
        self._handlers: dict[str, Callable[[dict[str, Any], float, float, list[Event]], None]] = {
            "DeliveredEvent": self._delivered, "QueuedEvent": self._queued, "EstablishedEvent": self._established,
            "DivertedEvent": self._diverted, "HeldEvent": self._held, "RetrievedEvent": self._retrieved,
            "TransferredEvent": self.transfers.transferred, "ConferencedEvent": self.transfers.conferenced,
            "FailedEvent": self._failed, "ServiceInitiatedEvent": self._initiated,
            "OriginatedEvent": self._originated, "ConnectionClearedEvent": self._connection_cleared,
            "CallClearedEvent": self._call_cleared, "AgentLoggedOnEvent": self.agents.logged_on,
            "AgentLoggedOffEvent": self.agents.logged_off, "AgentReadyEvent": self.agents.ready,
            "AgentNotReadyEvent": self.agents.not_ready, "AgentWorkingAfterCallEvent": self.agents.after_call,
            "RouteRequest": self._route_request, "RouteEnd": self._route_end,
            "RecordEvent": self.recordings.started, "StopEvent": self.recordings.stopped,
        }
        # Events that say nothing the model needs (not counted as unknown).
        self._ignored = frozenset({"NetworkReachedEvent", "DigitsDissipatedEvent", "BridgedEvent",
                                   "CallInformationEvent", "MonitorEndedEvent", "RouteUsedEvent"})

    # -- entry point ------------------------------------------------------------------------

    def handle(self, message: Message, ts: float) -> list[Event]:
        """Map one event message (answers to requests are the link's business)."""
        handler = self._handlers.get(message.name)
        if handler is None:
            if message.name not in self._ignored:
                self.unknown += 1
                log.info("unmapped CSTA event", extra={"ctx": {"driver": self.source, "event": message.name}})
            return []
        body = message.body
        ext = body.get("extensions")
        t = ts
        if isinstance(ext, dict):
            security = ext.get("security")
            if isinstance(security, dict):
                t = parse_timestamp(security.get("timestamp")) or ts
        out: list[Event] = []
        try:
            handler(body, ts, t, out)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            self.unknown += 1
            log.warning("cannot map CSTA event", extra={"ctx": {"driver": self.source, "event": message.name,
                                                                "error": repr(exc)}})
            return out
        extra = unread(message.name, body)
        if extra:
            for event in out:
                event.setdefault("x", {}).update(extra)
        return out

    # -- helpers (event, call_of: public, recordings.py and transfers.py work the calls through them)

    def event(self, type_: str, call: Call, ts: float, **extra: Any) -> Event:
        """A normalized event of `type_` carrying the call's fields, then `extra`."""
        event: Event = {"type": type_, "ts": ts, "source": self.source, "call_id": call.call_id, "caller": call.caller,
                        "caller_name": call.caller_name, "called": call.called, "queue": call.queue,
                        "agent": call.agent, "device": call.device, "direction": call.direction}
        event.update(extra)
        return event

    def _unusable(self) -> None:
        self.unknown += 1

    def call_of(self, conn: Any, create: bool = True) -> Call | None:
        """The call a connection's callID belongs to: a new one if unknown and `create`, else
        None (counted as an orphan). KeyError when the connection has no callID."""
        csta_id = conn["callID"] if isinstance(conn, dict) else None
        if not csta_id:
            raise KeyError("callID")
        call_id = self.ids.get(csta_id)
        if call_id is not None:
            return self.calls.get(call_id)
        if not create:
            self.orphans += 1
            return None
        call = self.calls[csta_id] = Call(csta_id, current=csta_id)
        call.csta_ids.add(csta_id)
        self.ids[csta_id] = csta_id
        return call

    def _learn_parties(self, call: Call, body: dict[str, Any]) -> None:
        calling = body.get("callingDevice")
        if isinstance(calling, dict) and ("restricted" in calling or "notKnown" in calling) and not call.caller:
            call.withheld = "restricted" in calling
        caller = device_id(calling)
        if caller and not self.agents.is_station(caller) and call.caller is None:
            call.caller = caller
        name = private_data(body).get("CallingDeviceName")
        if name and call.caller_name is None:
            call.caller_name = name
        called = device_id(body.get("calledDevice"))
        if called and call.called is None:
            call.called = called

    def _offer(self, call: Call, ts: float, out: list[Event]) -> None:
        if call.offered or call.consult:
            return
        call.offered = True
        if call.direction is None:
            if call.origin is None:
                call.direction = "inbound"
            else:
                digits = len((call.called or "").lstrip("+"))
                call.direction = "outbound" if digits > self.internal_digits else "internal"
        extra = {"x": {"withheld": True}} if call.withheld else {}
        out.append(self.event("call.offered", call, ts, **extra))

    def _close(self, call: Call, ts: float, out: list[Event], t: float | None = None, **extra: Any) -> None:
        if self.recordings.open:
            self.recordings.call_ended(call, ts, t, out)
        self.calls.pop(call.call_id, None)
        for cid in call.csta_ids:
            if self.ids.get(cid) == call.call_id:
                del self.ids[cid]
        if call.offered:
            out.append(self.event("call.cleared", call, ts, **extra))

    # -- call events ------------------------------------------------------------------------

    def _delivered(self, b: dict[str, Any], ts: float, t: float, out: list[Event]) -> None:
        call = self.call_of(b["connection"])
        assert call is not None
        self._learn_parties(call, b)
        alerting = device_id(b.get("alertingDevice")) or b["connection"].get("deviceID")
        if call.consult:
            return
        if self.agents.is_station(alerting) and alerting != call.origin:
            self._offer(call, ts, out)
            call.t_ring = t
            agent = self.agents.at(alerting)
            out.append(self.event("call.delivered", call, ts, agent=agent, device=agent or alerting))
        elif call.origin is not None and alerting != call.origin:  # a call an agent made reaches its party
            self._offer(call, ts, out)
            out.append(self.event("call.delivered", call, ts, device=alerting))
        elif call.origin is None:
            self._offer(call, ts, out)  # a call arriving at a VDN / routing device

    def _queued(self, b: dict[str, Any], ts: float, t: float, out: list[Event]) -> None:
        call = self.call_of(b["queuedConnection"])
        assert call is not None
        self._learn_parties(call, b)
        call.queue = device_id(b.get("queue")) or b["queuedConnection"].get("deviceID")
        call.in_queue = True
        call.agent = call.device = None
        call.t_queued = t
        call.position = int(b.get("numberQueued") or 0)
        self._offer(call, ts, out)
        out.append(self.event("call.queued", call, ts, position=call.position))

    def _established(self, b: dict[str, Any], ts: float, t: float, out: list[Event]) -> None:
        call = self.call_of(b["establishedConnection"])
        assert call is not None
        self._learn_parties(call, b)
        answering = device_id(b.get("answeringDevice")) or b["establishedConnection"].get("deviceID")
        if call.consult or answering == call.origin:
            return
        self._offer(call, ts, out)
        extra: dict[str, Any] = {}
        if self.agents.is_station(answering):
            call.agent = self.agents.at(answering)
            call.device = call.agent or answering
            if call.in_queue and call.t_queued is not None:
                extra["wait"] = round(t - call.t_queued, 3)
            if call.t_ring is not None:
                extra["ring"] = round(t - call.t_ring, 3)
            self.agents.answered(answering, call.call_id)
        else:
            call.device = answering
        call.in_queue = False
        out.append(self.event("call.established", call, ts, **extra))

    def _diverted(self, b: dict[str, Any], ts: float, t: float, out: list[Event]) -> None:
        call = self.call_of(b["connection"], create=False)
        if call is None or call.consult:
            return
        diverting = device_id(b.get("divertingDevice")) or b["connection"].get("deviceID")
        cause = CAUSES_DIVERTED.get(str(b.get("cause")), str(b.get("cause") or "redirected"))
        if self.agents.is_station(diverting):
            agent = self.agents.at(diverting)
            ring = round(t - call.t_ring, 3) if call.t_ring is not None else None
            call.t_ring = None
            out.append(self.event("call.diverted", call, ts, cause=cause, agent=agent, device=agent or diverting,
                                  ring=ring))
            return
        wait = round(t - call.t_queued, 3) if call.t_queued is not None else None
        call.in_queue = False
        out.append(self.event("call.diverted", call, ts, cause=cause, wait=wait, position=call.position))

    def _held(self, b: dict[str, Any], ts: float, t: float, out: list[Event]) -> None:
        call = self.call_of(b["heldConnection"], create=False)
        if call is None or call.held or call.consult:
            return
        call.held = True
        agent = self.agents.at(device_id(b.get("holdingDevice")))
        out.append(self.event("call.held", call, ts, agent=agent or call.agent))

    def _retrieved(self, b: dict[str, Any], ts: float, t: float, out: list[Event]) -> None:
        call = self.call_of(b["retrievedConnection"], create=False)
        if call is None or not call.held or call.consult:
            return
        call.held = False
        agent = self.agents.at(device_id(b.get("retrievingDevice")))
        out.append(self.event("call.retrieved", call, ts, agent=agent or call.agent))

    def _failed(self, b: dict[str, Any], ts: float, t: float, out: list[Event]) -> None:
        call = self.call_of(b["failedConnection"], create=False)
        if call is None or call.consult:
            return
        self._offer(call, ts, out)
        out.append(self.event("call.failed", call, ts, cause=str(b.get("cause") or "unknown"),
                              device=device_id(b.get("failingDevice"))))

    def _initiated(self, b: dict[str, Any], ts: float, t: float, out: list[Event]) -> None:
        call = self.call_of(b["initiatedConnection"])
        assert call is not None
        station = device_id(b.get("initiatingDevice")) or b["initiatedConnection"].get("deviceID")
        call.origin = station
        call.agent = self.agents.at(station)
        call.device = call.agent or station
        if b.get("cause") == "consultation":
            call.consult = True

    def _originated(self, b: dict[str, Any], ts: float, t: float, out: list[Event]) -> None:
        call = self.call_of(b["originatedConnection"])
        assert call is not None
        station = device_id(b.get("callingDevice")) or b["originatedConnection"].get("deviceID")
        if call.origin is None:
            call.origin = station
            call.agent = self.agents.at(station)
            call.device = call.agent or station
        if b.get("cause") == "consultation":
            call.consult = True
            return
        call.called = device_id(b.get("calledDevice")) or call.called
        self._offer(call, ts, out)

    def _connection_cleared(self, b: dict[str, Any], ts: float, t: float, out: list[Event]) -> None:
        conn = b["droppedConnection"]
        call = self.call_of(conn, create=False)
        if call is None or call.consult:
            return
        dropped = conn.get("deviceID") or device_id(b.get("releasingDevice"))
        if not call.in_queue or self.agents.is_station(dropped) or dropped in (call.queue, call.called):
            return
        call.in_queue = False  # the caller gave up while queued or ringing
        wait = round(t - call.t_queued, 3) if call.t_queued is not None else 0.0
        out.append(self.event("call.abandoned", call, ts, disposition="abandoned", wait=wait, position=call.position))

    def _call_cleared(self, b: dict[str, Any], ts: float, t: float, out: list[Event]) -> None:
        call = self.call_of(b["clearedCall"], create=False)
        if call is None:
            return
        csta_id = b["clearedCall"]["callID"]
        if call.consult:  # a consultation that was never merged (the consulted party hung up)
            self.calls.pop(call.call_id, None)
            self.ids.pop(csta_id, None)
            return
        if csta_id != call.current:  # a leg the call left behind (the old callID of a transfer)
            self.ids.pop(csta_id, None)
            call.csta_ids.discard(csta_id)
            return
        cause = str(b.get("cause") or "normalClearing")
        self._close(call, ts, out, t, cause=Q850.get(cause), x={"cause": cause})

    # -- routing ----------------------------------------------------------------------------

    def _route_request(self, b: dict[str, Any], ts: float, t: float, out: list[Event]) -> None:
        routed = b.get("routedCall")
        call = self.call_of(routed) if isinstance(routed, dict) else None
        if call is not None:
            self._learn_parties(call, b)
        out.append({"type": "route.request", "ts": ts, "source": self.source,
                    "call_id": call.call_id if call else None, "caller": device_id(b.get("callingDevice")),
                    "queue": device_id(b.get("currentRoute")) or b.get("currentRoute"),
                    "skills": [], "priority": None,
                    "x": {"cross_ref": b.get("routingCrossRefID"), "register_id": b.get("routeRegisterReqID")}})

    def _route_end(self, b: dict[str, Any], ts: float, t: float, out: list[Event]) -> None:
        pass  # the link forgets the pending route request (RouteEnd carries only its ids)

    # -- resync -----------------------------------------------------------------------------

    def resync(self, agent_states: dict[str, list[tuple[str, ...]]],
               calls: dict[str, list[tuple[str, str]]], ts: float) -> list[Event]:
        """Rebuild from GetAgentState and SnapshotDevice answers after a (re)connect.

        `agent_states`: device -> [(agent id, acdGroup, state, reason code)]...; `calls`:
        device -> [(callID, local connection state)]. Calls we knew that no device has any
        more ended while the link was down: closed with disposition `lost`.
        """
        out: list[Event] = []
        self.agents.resync(agent_states, ts, out)
        live = {cid for items in calls.values() for cid, _ in items}
        closed = 0
        for call in list(self.calls.values()):
            if not (call.csta_ids & live):
                closed += call.offered
                self._close(call, ts, out, disposition="lost")
        for dev, items in calls.items():
            for cid, state in items:
                if cid in self.ids:
                    continue
                call = self.call_of({"callID": cid})
                assert call is not None
                if state == "queued":
                    call.queue, call.in_queue = dev, True
                    self._offer(call, ts, out)
                    out.append(self.event("call.queued", call, ts, position=0))
                elif self.agents.is_station(dev) and state in ("connected", "hold"):
                    call.agent = self.agents.at(dev)
                    call.device = call.agent or dev
                    self._offer(call, ts, out)
                    out.append(self.event("call.established", call, ts))
                else:
                    self._offer(call, ts, out)
        out.append({"type": "system.resynced", "ts": ts, "source": self.source, "calls": len(self.calls),
                    "agents": len(self.agents), "closed": closed})
        return out

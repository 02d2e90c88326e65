"""Happenings of the call center -> the CSTA events an AES-like server reports for them.

The site is the simulator's (ctid.sim): each queue is an ACD split whose device id is the
queue's name, each queue's DID a VDN of the same name, agents sit at stations numbered as
their extensions and log in with that number as agent id. Call ids are numbers; a
single-step transfer gives the call a new one and a consultation has its own, as a
Communication Manager does.

Each rendered event is `(devices, name, fields)`: the server reports it on the first of
`devices` the client monitors. Stations come first (a station monitor sees its calls);
the VDN and the splits come after: their monitors follow a call to its end, which is how
an ACD call stays visible after the agent's station has left it.

Agents' logon, ready / not ready and after-call work are rendered by `simagents.py`.

Recordings are ECMA-269 voice-unit events (docs/csta.md): RecordEvent when the model starts
recording a call (where the AMI simulator renders MixMonitorStart), StopEvent when it stops
one explicitly, when the call leaves (hang-up, abandon, time-out) and before a new recording
replaces it; the message id is the recording's file path, unique per recording.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ctid.drivers.csta.protocol import NS_AVAYA, connection, device, timestamp
from ctid.drivers.csta.simagents import AgentRenderer
from ctid.sim.model import Call, Happening
from ctid.sim.traffic import CallCenter

Rendered = tuple[tuple[str, ...], str, dict[str, Any]]

RECORDINGS = "/var/spool/recordings"  # where the simulated voice unit "stores" its messages


@dataclass
class _Leg:
    """A simulated call as CSTA knows it."""

    cid: str  # the callID it has now
    caller: str  # the caller's device (a number, or the trunk's for a withheld caller)
    vdn: str
    queues: list[str] = field(default_factory=list)
    consult: str | None = None  # the consultation call's id
    station: str | None = None  # the agent station on the call
    recording: str | None = None  # the message id of the recording running now
    recordings: int = 0  # how many the call has had (numbers its message ids)
    correlator: dict[str, str] = field(default_factory=dict)  # the call data AssociateData gave it
    joined: dict[str, str] = field(default_factory=dict)  # device -> participation (SingleStepConferenceCall)


class CstaRenderer:
    """A sink of `CallCenter` happenings; `take()` returns the events rendered since the last call."""

    def __init__(self, model: CallCenter, epoch: float) -> None:
        self.model = model
        self.epoch = epoch
        self.now = 0.0
        self.out: list[Rendered] = []
        self.legs: dict[int, _Leg] = {}
        self.agents = AgentRenderer(model.b.pause_reasons, self.emit)  # agent events (simagents.py)
        self.reasons = self.agents.reasons  # reason code per pause reason
        self._ids = 1000

    def take(self) -> list[Rendered]:
        out, self.out = self.out, []
        return out

    def __call__(self, h: Happening) -> None:
        self.now = h.t
        if h.agent is not None and h.queue is not None and h.kind in ("end", "blind_transfer", "attended_transfer"):
            self.agents.last_queue[h.agent.ext] = h.queue  # the queue its after-call work is for
        handler = self.agents.handlers.get(h.kind) or getattr(self, "_on_" + h.kind, None)
        if handler is not None:
            handler(h)

    # -- helpers ---------------------------------------------------------------------------

    def new_id(self) -> str:
        self._ids += 1
        return str(self._ids)

    def reason_code(self, reason: str) -> str:
        """The reason code the server reports for a pause reason (simagents.py)."""
        return self.agents.reason_code(reason)

    def emit(self, devices: tuple[str | None, ...], name: str, fields: dict[str, Any], **private: str) -> None:
        ext: dict[str, Any] = {"security": {"timestamp": timestamp(self.epoch + self.now)}}
        if private:
            ext["privateData"] = {"private": {f"{{{NS_AVAYA}}}{k}": v for k, v in private.items()}}
        fields["extensions"] = ext
        self.out.append((tuple(d for d in devices if d), name, fields))

    def leg(self, call: Call) -> _Leg:
        leg = self.legs.get(call.id)
        if leg is None:
            number = call.number if call.number != "anonymous" else f"T{call.id:04d}"
            leg = self.legs[call.id] = _Leg(self.new_id(), number, call.did)
        return leg

    def where(self, leg: _Leg, *first: str | None) -> tuple[str | None, ...]:
        return (*first, leg.station, leg.vdn, *leg.queues)

    def parties(self, call: Call, leg: _Leg) -> dict[str, Any]:
        calling = {"restricted": True} if call.number == "anonymous" else device(call.number)
        return {"callingDevice": calling, "calledDevice": device(call.did)}

    def names(self, call: Call) -> dict[str, str]:
        return {"CallingDeviceName": call.name} if call.name and call.direction == "inbound" else {}

    # -- arrival and queue -----------------------------------------------------------------

    def _on_arrive(self, h: Happening) -> None:
        call = h.call
        assert call is not None
        leg = self.leg(call)
        self.emit((leg.vdn,), "DeliveredEvent", {
            "connection": connection(leg.cid, leg.vdn), "alertingDevice": device(leg.vdn), **self.parties(call, leg),
            "lastRedirectionDevice": {"notRequired": True}, "localConnectionInfo": "alerting", "cause": "newCall"},
            **self.names(call))

    # -- recording (voice unit) ---------------------------------------------------------------

    def _on_record_start(self, h: Happening) -> None:
        call = h.call
        assert call is not None
        leg = self.leg(call)
        self._stop_recording(leg)  # a second recording of the call replaces the first, as MixMonitor does
        leg.recordings += 1
        leg.recording = f"{RECORDINGS}/{leg.cid}-{leg.recordings}.wav"
        self.emit(self.where(leg), "RecordEvent", {"connection": connection(leg.cid, leg.caller),
                                                   "message": leg.recording})

    def _on_record_stop(self, h: Happening) -> None:
        call = h.call
        assert call is not None
        leg = self.legs.get(call.id)
        if leg is not None:
            self._stop_recording(leg)

    def _stop_recording(self, leg: _Leg, where: tuple[str | None, ...] | None = None, cause: str | None = None) -> None:
        if leg.recording is None:
            return
        fields: dict[str, Any] = {"connection": connection(leg.cid, leg.caller), "message": leg.recording}
        if cause:
            fields["cause"] = cause
        self.emit(where or self.where(leg), "StopEvent", fields)
        leg.recording = None

    def _on_join(self, h: Happening) -> None:
        call, queue = h.call, h.queue or ""
        assert call is not None
        leg = self.leg(call)
        if queue not in leg.queues:
            leg.queues.append(queue)
        self.emit(self.where(leg, queue), "QueuedEvent", {
            "queuedConnection": connection(leg.cid, queue), "queue": device(queue), **self.parties(call, leg),
            "numberQueued": str(h.info["position"]), "callsInFront": str(h.info["position"] - 1),
            "localConnectionInfo": "queued", "cause": "enteringDistribution"}, **self.names(call))

    # -- ringing and answer -------------------------------------------------------------------

    def _on_ring(self, h: Happening) -> None:
        call, agent = h.call, h.agent
        assert call is not None and agent is not None
        leg = self.leg(call)
        self.emit(self.where(leg, agent.ext), "DeliveredEvent", {
            "connection": connection(leg.cid, agent.ext), "alertingDevice": device(agent.ext),
            **self.parties(call, leg), "lastRedirectionDevice": device(h.queue), "localConnectionInfo": "alerting",
            "cause": "distributed"}, **self.names(call))

    def _on_ring_noanswer(self, h: Happening) -> None:
        call, agent = h.call, h.agent
        assert call is not None and agent is not None
        leg = self.leg(call)
        self.emit(self.where(leg, agent.ext), "DivertedEvent", {
            "connection": connection(leg.cid, agent.ext), "divertingDevice": device(agent.ext),
            "newDestination": device(h.queue), "localConnectionInfo": "null", "cause": "alertTimeExpired"})

    def _on_ring_cancel(self, h: Happening) -> None:
        call, agent = h.call, h.agent
        assert call is not None and agent is not None
        leg = self.leg(call)
        self._cleared_connection(leg, agent.ext, agent.ext, (agent.ext,))

    def _on_connect(self, h: Happening) -> None:
        call, agent = h.call, h.agent
        assert call is not None and agent is not None
        leg = self.leg(call)
        leg.station = agent.ext
        self.emit(self.where(leg), "EstablishedEvent", {
            "establishedConnection": connection(leg.cid, agent.ext), "answeringDevice": device(agent.ext),
            **self.parties(call, leg), "lastRedirectionDevice": device(h.queue), "localConnectionInfo": "connected",
            "cause": "distributed"}, **self.names(call))

    # -- leaving the queue unanswered -------------------------------------------------------------

    def _cleared_connection(self, leg: _Leg, dev: str, releasing: str, where: tuple[str | None, ...],
                            cid: str | None = None, cause: str = "normalClearing") -> None:
        self.emit(where, "ConnectionClearedEvent", {
            "droppedConnection": connection(cid or leg.cid, dev), "releasingDevice": device(releasing),
            "localConnectionInfo": "null", "cause": cause})

    def _call_cleared(self, leg: _Leg, where: tuple[str | None, ...], cid: str | None = None,
                      cause: str = "normalClearing") -> None:
        self.emit(where, "CallClearedEvent", {"clearedCall": {"callID": cid or leg.cid}, "cause": cause})

    def _on_abandon(self, h: Happening) -> None:
        call = h.call
        assert call is not None
        leg = self.leg(call)
        where = self.where(leg, h.agent.ext if h.agent else None)
        self._cleared_connection(leg, leg.caller, leg.caller, where)
        self._stop_recording(leg, where, "normalClearing")
        self._call_cleared(leg, where)
        self.legs.pop(call.id, None)

    def _on_timeout(self, h: Happening) -> None:
        call, queue = h.call, h.queue or ""
        assert call is not None
        leg = self.leg(call)
        where = self.where(leg, h.agent.ext if h.agent else None)
        self.emit(where, "DivertedEvent", {
            "connection": connection(leg.cid, queue), "divertingDevice": device(queue),
            "newDestination": {"notKnown": True}, "localConnectionInfo": "null", "cause": "timeout"})
        self._cleared_connection(leg, leg.caller, queue, where, cause="timeout")
        self._stop_recording(leg, where, "timeout")
        self._call_cleared(leg, where, cause="timeout")
        self.legs.pop(call.id, None)

    def _on_redirect(self, h: Happening) -> None:
        call, queue = h.call, h.queue or ""
        assert call is not None
        leg = self.leg(call)
        self.emit(self.where(leg, h.agent.ext if h.agent else None), "DivertedEvent", {
            "connection": connection(leg.cid, queue), "divertingDevice": device(queue),
            "newDestination": device(h.info.get("target")), "localConnectionInfo": "null", "cause": "redirected"})

    # -- talk ----------------------------------------------------------------------------------

    def _on_hold(self, h: Happening, held: bool = True) -> None:
        call, agent = h.call, h.agent
        assert call is not None and agent is not None
        leg = self.leg(call)
        if held:
            self.emit(self.where(leg), "HeldEvent", {"heldConnection": connection(leg.cid, agent.ext),
                                                     "holdingDevice": device(agent.ext),
                                                     "localConnectionInfo": "hold", "cause": "normal"})
        else:
            self.emit(self.where(leg), "RetrievedEvent", {"retrievedConnection": connection(leg.cid, agent.ext),
                                                          "retrievingDevice": device(agent.ext),
                                                          "localConnectionInfo": "connected", "cause": "normal"})

    def _on_unhold(self, h: Happening) -> None:
        self._on_hold(h, held=False)

    def _on_blind_transfer(self, h: Happening) -> None:
        call, agent = h.call, h.agent
        assert call is not None and agent is not None
        leg = self.leg(call)
        old, new, target = leg.cid, self.new_id(), h.info.get("target")
        self.emit(self.where(leg), "TransferredEvent", {
            "primaryOldCall": connection(old, agent.ext), "transferringDevice": device(agent.ext),
            "transferredToDevice": device(target),
            "transferredConnections": {"connectionListItem": [
                {"newConnection": connection(new, leg.caller), "oldConnection": connection(old, leg.caller)},
                {"newConnection": connection(new, target or ""), "endpoint": device(target)}]},
            "localConnectionInfo": "null", "cause": "singleStepTransfer"})
        leg.cid, leg.station = new, None

    def _on_consult(self, h: Happening) -> None:
        call, agent = h.call, h.agent
        assert call is not None and agent is not None
        leg = self.leg(call)
        target = h.info.get("target") or ""
        leg.consult = self.new_id()
        where = self.where(leg)
        self.emit(where, "HeldEvent", {"heldConnection": connection(leg.cid, agent.ext),
                                       "holdingDevice": device(agent.ext), "localConnectionInfo": "hold",
                                       "cause": "consultation"})
        self.emit(where, "ServiceInitiatedEvent", {"initiatedConnection": connection(leg.consult, agent.ext),
                                                   "initiatingDevice": device(agent.ext),
                                                   "localConnectionInfo": "initiated", "cause": "consultation"})
        self.emit(where, "OriginatedEvent", {"originatedConnection": connection(leg.consult, agent.ext),
                                             "callingDevice": device(agent.ext), "calledDevice": device(target),
                                             "localConnectionInfo": "connected", "cause": "consultation"})
        self.emit(where, "DeliveredEvent", {"connection": connection(leg.consult, target),
                                            "alertingDevice": device(target), "callingDevice": device(agent.ext),
                                            "calledDevice": device(target), "localConnectionInfo": "connected",
                                            "cause": "consultation"})

    def _on_consult_answer(self, h: Happening) -> None:
        call = h.call
        assert call is not None
        leg = self.leg(call)
        target = h.info.get("target") or ""
        self.emit(self.where(leg), "EstablishedEvent", {
            "establishedConnection": connection(leg.consult or "", target), "answeringDevice": device(target),
            "callingDevice": device(leg.station), "calledDevice": device(target),
            "localConnectionInfo": "connected", "cause": "consultation"})

    def _on_consult_fail(self, h: Happening) -> None:
        call, agent = h.call, h.agent
        assert call is not None and agent is not None
        leg = self.leg(call)
        target = h.info.get("target") or ""
        where = self.where(leg)
        if leg.consult:
            self._cleared_connection(leg, target, target, where, cid=leg.consult)
            self._call_cleared(leg, where, cid=leg.consult)
            leg.consult = None
        self.emit(where, "RetrievedEvent", {"retrievedConnection": connection(leg.cid, agent.ext),
                                            "retrievingDevice": device(agent.ext),
                                            "localConnectionInfo": "connected", "cause": "normal"})

    def _on_attended_transfer(self, h: Happening) -> None:
        call, agent = h.call, h.agent
        assert call is not None and agent is not None
        leg = self.leg(call)
        target = h.info.get("target") or ""
        old, new = leg.cid, leg.consult or self.new_id()
        self.emit(self.where(leg), "TransferredEvent", {
            "primaryOldCall": connection(old, agent.ext), "secondaryOldCall": connection(new, agent.ext),
            "transferringDevice": device(agent.ext), "transferredToDevice": device(target),
            "transferredConnections": {"connectionListItem": [
                {"newConnection": connection(new, leg.caller), "oldConnection": connection(old, leg.caller)},
                {"newConnection": connection(new, target), "oldConnection": connection(new, target)}]},
            "localConnectionInfo": "null", "cause": "transfer"})
        leg.cid, leg.consult, leg.station = new, None, None

    # -- the end -------------------------------------------------------------------------------

    def _on_end(self, h: Happening) -> None:
        call = h.call
        assert call is not None
        leg = self.legs.get(call.id)
        if leg is None:
            return
        agent = h.agent
        by = h.info.get("by")
        if h.info.get("outbound"):
            releasing = agent.ext if (by == "agent" and agent is not None) else call.did
        elif by == "agent" and agent is not None:
            releasing = agent.ext
        elif by == "target":
            releasing = call.target or leg.caller
        else:
            releasing = leg.caller
        where = self.where(leg, agent.ext if agent else None)
        if leg.consult:  # the caller hung up while the agent consulted: the consultation ends too
            self._cleared_connection(leg, leg.caller, leg.caller, where)
            self._stop_recording(leg, where, "normalClearing")
            self._call_cleared(leg, where)
            self._cleared_connection(leg, agent.ext if agent else "", agent.ext if agent else "", where,
                                     cid=leg.consult)
            self._call_cleared(leg, where, cid=leg.consult)
        else:
            self._cleared_connection(leg, releasing, releasing, where)
            self._stop_recording(leg, where, "normalClearing")
            for dev in leg.joined:  # a supervisor's connection goes with the call
                self._cleared_connection(leg, dev, releasing, where)
            self._call_cleared(leg, where)
        self.legs.pop(call.id, None)

    # -- outbound (MakeCall) -------------------------------------------------------------------

    def _on_dial_agent(self, h: Happening) -> None:
        call, agent = h.call, h.agent
        assert call is not None and agent is not None
        leg = self.leg(call)
        leg.station, leg.vdn, leg.caller = agent.ext, "", agent.ext
        self.emit((agent.ext,), "ServiceInitiatedEvent", {
            "initiatedConnection": connection(leg.cid, agent.ext), "initiatingDevice": device(agent.ext),
            "localConnectionInfo": "initiated", "cause": "makeCall"})

    def _on_outbound_dial(self, h: Happening) -> None:
        call, agent = h.call, h.agent
        assert call is not None and agent is not None
        leg = self.leg(call)
        number = h.info.get("number") or call.did
        self.emit((agent.ext,), "OriginatedEvent", {
            "originatedConnection": connection(leg.cid, agent.ext), "callingDevice": device(agent.ext),
            "calledDevice": device(number), "localConnectionInfo": "connected", "cause": "makeCall"})
        self.emit((agent.ext,), "DeliveredEvent", {
            "connection": connection(leg.cid, number), "alertingDevice": device(number),
            "callingDevice": device(agent.ext), "calledDevice": device(number), "localConnectionInfo": "connected",
            "cause": "newCall"})

    def _on_outbound_answer(self, h: Happening) -> None:
        call, agent = h.call, h.agent
        assert call is not None and agent is not None
        leg = self.leg(call)
        number = h.info.get("number") or call.did
        self.emit((agent.ext,), "EstablishedEvent", {
            "establishedConnection": connection(leg.cid, number), "answeringDevice": device(number),
            "callingDevice": device(agent.ext), "calledDevice": device(number), "localConnectionInfo": "connected",
            "cause": "newCall"})

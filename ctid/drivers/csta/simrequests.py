"""The CSTA simulator's answers to requests: session, monitors, snapshots, agent state,
call control and routing. A mixin of `CstaSimulator` (sim.py).

A request the call center refuses gets the CSTAErrorCode a server sends for it:
an unknown device `operation/invalidCSTADeviceIdentifier`, an unknown call
`operation/invalidCSTACallIdentifier`, a call or agent in the wrong state
`stateIncompatibility/invalidObjectState`, an unsupported service `operation/invalidFeature`,
a connection the call does not have `operation/invalidCSTAConnectionIdentifier`, a value
the service cannot take `operation/valueOutOfRange`.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from ctid.drivers.csta.protocol import (NS_AVAYA, NS_CSTA, NS_SESSION, Message, connection, device, device_id, encode,
                                       private_data)
from ctid.drivers.csta.requests import DTMF, read_correlator
from ctid.sim.model import Call, SimError

if TYPE_CHECKING:
    from ctid.drivers.csta.sim import Client
    from ctid.drivers.csta.simrender import CstaRenderer
    from ctid.sim.traffic import CallCenter

_SIM_ERRORS = {
    "no_such_agent": ("operation", "invalidCSTADeviceIdentifier"),
    "no_such_member": ("operation", "invalidCSTADeviceIdentifier"),
    "no_such_queue": ("operation", "invalidDestination"),
    "already_member": ("stateIncompatibility", "invalidObjectState"),
    "not_dynamic": ("operation", "requestIncompatibleWithObject"),
    "busy": ("stateIncompatibility", "invalidObjectState"),
    "bad_state": ("stateIncompatibility", "invalidObjectState"),
}


class Requests:
    model: CallCenter
    renderer: CstaRenderer
    secret: str | None
    username: str | None
    session_duration: int
    routing: dict[str, int]  # routingCrossRefID -> the simulated call waiting for its RouteSelect
    clients: set[Client]
    _xrefs: Any

    if TYPE_CHECKING:
        devices: set[str]

        def reply(self, client: Client, invoke_id: str, name: str, fields: dict[str, Any],
                  namespace: str = NS_CSTA) -> None: ...
        def error(self, client: Client, invoke_id: str, category: str, value: str) -> None: ...

    # -- session -----------------------------------------------------------------------------

    def start_session(self, client: Client, m: Message) -> None:
        info = m.body.get("applicationInfo") or {}
        login = ((info.get("applicationSpecificInfo") or {}).get("SessionLoginInfo") or {}) if isinstance(info, dict) else {}
        user, password = login.get("userName") or "", login.get("password") or ""
        if self.secret is not None and (password != self.secret or (self.username is not None and user != self.username)):
            self.reply(client, m.invoke_id, "StartApplicationSessionNegResponse",
                       {"errorCode": {"definitionError": "invalidApplicationInfo"}}, NS_SESSION)
            return
        client.session = secrets.token_hex(16).upper()
        requested = int(m.body.get("requestedSessionDuration") or self.session_duration)
        self.reply(client, m.invoke_id, "StartApplicationSessionPosResponse", {
            "sessionID": client.session, "actualProtocolVersion": NS_CSTA,
            "actualSessionDuration": str(min(requested, self.session_duration))}, NS_SESSION)

    def req_ResetApplicationSessionTimer(self, client: Client, m: Message) -> None:
        if m.body.get("sessionID") != client.session:
            self.reply(client, m.invoke_id, "ResetApplicationSessionTimerNegResponse",
                       {"errorCode": {"sessionManagementError": "invalidSessionID"}}, NS_SESSION)
            return
        self.reply(client, m.invoke_id, "ResetApplicationSessionTimerPosResponse",
                   {"actualSessionDuration": str(self.session_duration)}, NS_SESSION)

    def req_StopApplicationSession(self, client: Client, m: Message) -> None:
        self.reply(client, m.invoke_id, "StopApplicationSessionPosResponse", {}, NS_SESSION)
        client.close()

    # -- monitors and snapshots ----------------------------------------------------------------

    def req_MonitorStart(self, client: Client, m: Message) -> None:
        obj = m.body.get("monitorObject") or {}
        dev = obj.get("deviceObject") if isinstance(obj, dict) else None
        if dev not in self.devices:
            self.error(client, m.invoke_id, "operation", "invalidCSTADeviceIdentifier")
            return
        xref = client.monitors.get(dev) or str(next(self._xrefs))
        client.monitors[dev] = xref
        self.reply(client, m.invoke_id, "MonitorStartResponse", {"monitorCrossRefID": xref})

    def req_MonitorStop(self, client: Client, m: Message) -> None:
        xref = m.body.get("monitorCrossRefID")
        dev = next((d for d, x in client.monitors.items() if x == xref), None)
        if dev is None:
            self.error(client, m.invoke_id, "operation", "invalidCrossRefID")
            return
        del client.monitors[dev]
        self.reply(client, m.invoke_id, "MonitorStopResponse", {})

    def req_SnapshotDevice(self, client: Client, m: Message) -> None:
        dev = m.body.get("snapshotObject")
        if dev not in self.devices:
            self.error(client, m.invoke_id, "operation", "invalidCSTADeviceIdentifier")
            return
        items = []
        for call in self.model.calls.values():
            leg = self.renderer.legs.get(call.id)
            if leg is None:
                continue
            state = None
            if call.queue == dev and call.state in ("queued", "ringing"):
                state = "queued"
            elif call.ringing is not None and call.ringing.ext == dev:
                state = "alerting"
            elif call.agent is not None and call.agent.ext == dev and call.state not in ("ended",):
                state = "hold" if call.held else "connected"
            if state is not None:
                items.append({"connectionIdentifier": connection(leg.cid, dev),
                              "localCallState": {"compoundCallState": {"localConnectionState": state}}})
        self.reply(client, m.invoke_id, "SnapshotDeviceResponse",
                   {"crossRefIDorSnapshotData": {"snapshotData": {"snapshotDeviceResponseInfo": items}}})

    def req_GetAgentState(self, client: Client, m: Message) -> None:
        agent = self.model.agents.get(m.body.get("device") or "")
        if agent is None:
            self.error(client, m.invoke_id, "operation", "invalidCSTADeviceIdentifier")
            return
        items = [{"acdGroup": q, "agentState": "agentNotReady" if mb.paused else "agentReady"}
                 for q, mb in agent.members.items()]
        reason = next((mb.reason for mb in agent.members.values() if mb.paused), "")
        fields: dict[str, Any] = {"agentStateList": {"agentStateEntry": {
            "agentID": agent.ext, "loggedOnState": "true" if items else "false",
            "agentInfo": {"agentInfoItem": items} if items else None}}}
        if reason:
            fields["extensions"] = {"privateData": {"private": {
                f"{{{NS_AVAYA}}}ReasonCode": self.renderer.reason_code(reason)}}}
        self.reply(client, m.invoke_id, "GetAgentStateResponse", fields)

    # -- call control ----------------------------------------------------------------------------

    def _call(self, client: Client, m: Message, key: str) -> Call | None:
        conn = m.body.get(key)
        cid = conn.get("callID") if isinstance(conn, dict) else None
        for call_id, leg in self.renderer.legs.items():
            if cid in (leg.cid, leg.consult) and call_id in self.model.calls:
                return self.model.calls[call_id]
        self.error(client, m.invoke_id, "operation", "invalidCSTACallIdentifier")
        return None

    def _do(self, client: Client, m: Message, action: Any, answer: str, fields: Any = None) -> None:
        try:
            result = action()
        except SimError as exc:
            self.error(client, m.invoke_id, *_SIM_ERRORS.get(exc.code, ("operation", "generic")))
            return
        self.reply(client, m.invoke_id, answer, fields(result) if callable(fields) else (fields or {}))

    def req_MakeCall(self, client: Client, m: Message) -> None:
        calling, called = m.body.get("callingDevice") or "", m.body.get("calledDirectoryNumber") or ""
        if not called:
            self.error(client, m.invoke_id, "operation", "invalidCalledDevice")
            return
        self._do(client, m, lambda: self.model.outbound(calling, called), "MakeCallResponse",
                 lambda call: {"callingDevice": connection(self.renderer.leg(call).cid, calling)})

    def req_AnswerCall(self, client: Client, m: Message) -> None:
        conn = m.body.get("callToBeAnswered") or {}
        agent = self.model.agents.get(conn.get("deviceID") or "") if isinstance(conn, dict) else None
        if agent is None:
            self.error(client, m.invoke_id, "operation", "invalidCSTADeviceIdentifier")
            return
        self._do(client, m, lambda: self.model.answer(agent), "AnswerCallResponse")

    def req_HoldCall(self, client: Client, m: Message) -> None:
        if (call := self._call(client, m, "callToBeHeld")) is not None:
            self._do(client, m, lambda: self.model.hold(call, True), "HoldCallResponse")

    def req_RetrieveCall(self, client: Client, m: Message) -> None:
        if (call := self._call(client, m, "callToBeRetrieved")) is not None:
            self._do(client, m, lambda: self.model.hold(call, False), "RetrieveCallResponse")

    def req_SingleStepTransferCall(self, client: Client, m: Message) -> None:
        if (call := self._call(client, m, "activeCall")) is None:
            return
        target = m.body.get("transferredTo") or ""
        self._do(client, m, lambda: self.model.blind_transfer(call, target), "SingleStepTransferCallResponse",
                 lambda _: {"transferredCall": connection(self.renderer.leg(call).cid, target)})

    def req_ConsultationCall(self, client: Client, m: Message) -> None:
        if (call := self._call(client, m, "existingCall")) is None:
            return
        target = m.body.get("consultedDevice") or ""
        station = (m.body.get("existingCall") or {}).get("deviceID", "")
        self._do(client, m, lambda: self.model.consult(call, target), "ConsultationCallResponse",
                 lambda _: {"initiatedCall": connection(self.renderer.leg(call).consult or "", station)})

    def req_TransferCall(self, client: Client, m: Message) -> None:
        if (call := self._call(client, m, "heldCall")) is None:
            return
        if call.state != "consult":
            self.error(client, m.invoke_id, "stateIncompatibility", "invalidObjectState")
            return
        self._do(client, m, lambda: self.model.hangup(call, "agent"), "TransferCallResponse",
                 lambda _: {"transferredCall": connection(self.renderer.leg(call).cid, call.target or "")})

    def req_ConferenceCall(self, client: Client, m: Message) -> None:
        # The simulated call center has no three-party calls: refused as a real server refuses a feature.
        self.error(client, m.invoke_id, "operation", "invalidFeature")

    def req_ClearConnection(self, client: Client, m: Message) -> None:
        if (call := self._call(client, m, "connectionToBeCleared")) is None:
            return
        dev = (m.body.get("connectionToBeCleared") or {}).get("deviceID")
        side = "agent" if dev in self.model.agents else "target" if dev == call.target else "caller"
        self._do(client, m, lambda: self.model.hangup(call, side), "ClearConnectionResponse")

    def _agent_connection(self, client: Client, m: Message, key: str) -> tuple[Call, str] | None:
        """The call and station of a connection that must be its agent's, talking (not held)."""
        if (call := self._call(client, m, key)) is None:
            return None
        station = (m.body.get(key) or {}).get("deviceID")
        on_call = call.agent if call.agent is not None else call.ringing
        if on_call is None or on_call.ext != station:
            self.error(client, m.invoke_id, "operation", "invalidCSTAConnectionIdentifier")
            return None
        if call.agent is None or call.state not in ("talking", "talking_out") or call.held:
            self.error(client, m.invoke_id, "stateIncompatibility", "invalidObjectState")
            return None
        return call, station

    def req_GenerateDigits(self, client: Client, m: Message) -> None:
        if self._agent_connection(client, m, "connectionToSendDigits") is None:
            return
        if not DTMF.fullmatch(str(m.body.get("charactersToSend") or "")):
            self.error(client, m.invoke_id, "operation", "valueOutOfRange")
            return
        self.reply(client, m.invoke_id, "GenerateDigitsResponse", {})  # the model has no tones to play

    def req_AssociateData(self, client: Client, m: Message) -> None:
        if (call := self._call(client, m, "existingCall")) is None:
            return
        leg = self.renderer.leg(call)
        party = (m.body.get("existingCall") or {}).get("deviceID")
        if party not in (leg.caller, leg.station, call.did, call.agent.ext if call.agent else None):
            self.error(client, m.invoke_id, "operation", "invalidCSTAConnectionIdentifier")
            return
        try:
            data = read_correlator(str(m.body.get("correlatorData") or ""))
        except ValueError:
            self.error(client, m.invoke_id, "operation", "valueOutOfRange")
            return
        leg.correlator = data  # AssociateData replaces what the call carried
        self.reply(client, m.invoke_id, "AssociateDataResponse", {})

    def req_SingleStepConferenceCall(self, client: Client, m: Message) -> None:
        if (found := self._agent_connection(client, m, "activeCall")) is None:
            return
        call, station = found
        joining = str(m.body.get("deviceToJoin") or "")
        participation = m.body.get("participationType") or "active"  # ECMA-269's default
        leg = self.renderer.leg(call)
        if participation not in ("active", "silent") or not joining:
            self.error(client, m.invoke_id, "operation", "valueOutOfRange")
            return
        if joining in (leg.caller, station) or joining in leg.joined or joining in self.model.queues:
            self.error(client, m.invoke_id, "operation", "invalidCSTADeviceIdentifier")
            return
        self.reply(client, m.invoke_id, "SingleStepConferenceCallResponse",
                   {"conferencedCall": connection(leg.cid, joining)})
        # The shared model has no third party: the join lives in the leg, which clears it with the call.
        leg.joined[joining] = participation
        r = self.renderer
        r.now = self.model.now
        r.emit(r.where(leg, station), "ConferencedEvent", {
            "primaryOldCall": connection(leg.cid, station), "conferencingDevice": device(station),
            "addedParty": device(joining),
            "conferenceConnections": {"connectionListItem": [
                {"newConnection": connection(leg.cid, dev), "endpoint": device(dev)}
                for dev in (leg.caller, station, joining)]},
            "localConnectionInfo": "connected", "cause": f"{participation}Participation"})

    def req_SetAgentState(self, client: Client, m: Message) -> None:
        b = m.body
        ext, state, group = device_id(b.get("device")) or "", b.get("requestedAgentState"), b.get("acdGroup") or None
        code = private_data(b).get("ReasonCode")
        reason = next((r for r, c in self.renderer.reasons.items() if c == code), code or "")
        actions = {
            "notReady": lambda: self.model.set_paused(ext, True, group, reason),
            "ready": lambda: self.model.set_paused(ext, False, group),
            "loggedOn": lambda: self.model.add_member(group or "", ext),
            "loggedOff": lambda: self.model.remove_member(group or "", ext),
        }
        action = actions.get(str(state))
        if action is None:
            self.error(client, m.invoke_id, "operation", "valueOutOfRange")
            return
        self._do(client, m, action, "SetAgentStateResponse")

    # -- routing -------------------------------------------------------------------------------

    # A registered routing device turns the call center into route-point mode (as a VDN with an
    # adjunct-route step): every queued call is a RouteRequest to the registering client, and
    # rings the station its RouteSelect names (anything else is a fallback: the call leaves).

    def req_RouteRegister(self, client: Client, m: Message) -> None:
        dev = m.body.get("routingDevice")
        if dev not in self.model.queues:
            self.error(client, m.invoke_id, "operation", "invalidCSTADeviceIdentifier")
            return
        reg = str(next(self._xrefs))
        client.routes[reg] = dev
        self.model.router = self.route_request
        self.reply(client, m.invoke_id, "RouteRegisterResponse", {"routeRegisterReqID": reg})

    def route_request(self, call: Call) -> None:
        for client in list(self.clients):
            reg = next((r for r, dev in client.routes.items() if dev == call.queue), None)
            if reg is None or client.closed:
                continue
            leg = self.renderer.leg(call)
            cross_ref = str(next(self._xrefs))
            self.routing[cross_ref] = call.id
            calling = {"restricted": True} if call.number == "anonymous" else {"deviceIdentifier": call.number}
            client.write(encode("RouteRequest", {
                "routeRegisterReqID": reg, "routingCrossRefID": cross_ref, "currentRoute": call.queue,
                "callingDevice": calling, "routedCall": connection(leg.cid, call.queue or ""),
                "routedSelAlgorithm": "normal"}))
            return  # no registered client: the call waits (a VDN without its adjunct)

    def route_ended(self, call_id: int) -> None:
        """The call left before an answer: RouteEnd to whoever was asked."""
        for cross_ref, waiting in list(self.routing.items()):
            if waiting == call_id:
                del self.routing[cross_ref]
                for client in list(self.clients):
                    if client.routes:
                        client.write(encode("RouteEnd", {"routingCrossRefID": cross_ref,
                                                         "errorValue": {"operation": "generic"}}))

    def req_RouteSelect(self, client: Client, m: Message) -> None:
        call_id = self.routing.pop(str(m.body.get("routingCrossRefID")), None)
        if m.body.get("routeRegisterReqID") not in client.routes or call_id is None:
            self.error(client, m.invoke_id, "operation", "invalidCrossRefID")
            return
        self.reply(client, m.invoke_id, "RouteSelectResponse", {})
        selected = str(m.body.get("routeSelected") or "")
        if not (selected in self.model.agents and self.model.connect_routed(call_id, selected)):
            self.model.fallback_routed(call_id)

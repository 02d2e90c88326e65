"""The requests ctid sends to a CSTA server, as (name, fields, namespace) ready for
`protocol.encode`, and the reading of their answers. No I/O.

Session (ECMA-354): StartApplicationSession, ResetApplicationSessionTimer,
StopApplicationSession. Monitoring and resync (ECMA-323): MonitorStart, MonitorStop,
SnapshotDevice, GetAgentState. Call control: MakeCall, AnswerCall, HoldCall,
RetrieveCall, SingleStepTransferCall, ConsultationCall, TransferCall, ConferenceCall,
ClearConnection, SetAgentState. Routing: RouteRegister, RouteSelect.
"""

from __future__ import annotations

from typing import Any

from ctid.drivers.csta.protocol import NS_AVAYA, NS_CSTA, NS_SESSION, CstaError, Message, connection

Request = tuple[str, dict[str, Any], str]

#: Agent states SetAgentState accepts (ECMA-269 requestedAgentState).
AGENT_STATES = ("loggedOn", "loggedOff", "notReady", "ready", "workingAfterCall")


def start_session(application_id: str, username: str, password: str, duration: int = 180) -> Request:
    return ("StartApplicationSession", {
        "applicationInfo": {
            "applicationID": application_id,
            "applicationSpecificInfo": {f"{{{NS_AVAYA}}}SessionLoginInfo": {
                "userName": username, "password": password, "sessionCleanupDelay": "60"}},
        },
        "requestedProtocolVersions": {"protocolVersion": NS_CSTA},
        "requestedSessionDuration": str(duration),
    }, NS_SESSION)


def reset_session_timer(session_id: str, duration: int) -> Request:
    return ("ResetApplicationSessionTimer", {"sessionID": session_id, "requestedSessionDuration": str(duration)},
            NS_SESSION)


def stop_session(session_id: str) -> Request:
    return ("StopApplicationSession", {"sessionID": session_id,
                                       "sessionEndReason": {"appEndReason": "Application Request"}}, NS_SESSION)


def monitor_start(device_id: str) -> Request:
    return ("MonitorStart", {"monitorObject": {"deviceObject": device_id}, "monitorType": "call"}, NS_CSTA)


def monitor_stop(cross_ref: str) -> Request:
    return ("MonitorStop", {"monitorCrossRefID": cross_ref}, NS_CSTA)


def snapshot_device(device_id: str) -> Request:
    return ("SnapshotDevice", {"snapshotObject": device_id}, NS_CSTA)


def get_agent_state(device_id: str) -> Request:
    return ("GetAgentState", {"device": device_id}, NS_CSTA)


def make_call(calling: str, called: str) -> Request:
    return ("MakeCall", {"callingDevice": calling, "calledDirectoryNumber": called}, NS_CSTA)


def answer_call(call_id: str, device_id: str) -> Request:
    return ("AnswerCall", {"callToBeAnswered": connection(call_id, device_id)}, NS_CSTA)


def hold_call(call_id: str, device_id: str) -> Request:
    return ("HoldCall", {"callToBeHeld": connection(call_id, device_id)}, NS_CSTA)


def retrieve_call(call_id: str, device_id: str) -> Request:
    return ("RetrieveCall", {"callToBeRetrieved": connection(call_id, device_id)}, NS_CSTA)


def single_step_transfer(call_id: str, device_id: str, target: str) -> Request:
    return ("SingleStepTransferCall", {"activeCall": connection(call_id, device_id), "transferredTo": target}, NS_CSTA)


def consultation_call(call_id: str, device_id: str, target: str) -> Request:
    return ("ConsultationCall", {"existingCall": connection(call_id, device_id), "consultedDevice": target}, NS_CSTA)


def transfer_call(held_call: str, active_call: str, device_id: str) -> Request:
    return ("TransferCall", {"heldCall": connection(held_call, device_id),
                             "activeCall": connection(active_call, device_id)}, NS_CSTA)


def conference_call(held_call: str, active_call: str, device_id: str) -> Request:
    return ("ConferenceCall", {"heldCall": connection(held_call, device_id),
                               "activeCall": connection(active_call, device_id)}, NS_CSTA)


def clear_connection(call_id: str, device_id: str) -> Request:
    return ("ClearConnection", {"connectionToBeCleared": connection(call_id, device_id)}, NS_CSTA)


def set_agent_state(device_id: str, state: str, agent_id: str | None = None, group: str | None = None,
                    reason_code: str | None = None) -> Request:
    """`state` one of AGENT_STATES; the not-ready reason code travels as private data (as AES does)."""
    if state not in AGENT_STATES:
        raise ValueError(f"agent state {state!r} is not one of {', '.join(AGENT_STATES)}")
    fields: dict[str, Any] = {"device": device_id, "requestedAgentState": state, "agentID": agent_id,
                              "acdGroup": group}
    if reason_code is not None:
        fields["extensions"] = {"privateData": {"private": {f"{{{NS_AVAYA}}}ReasonCode": reason_code}}}
    return ("SetAgentState", fields, NS_CSTA)


def route_register(device_id: str) -> Request:
    return ("RouteRegister", {"routingDevice": device_id}, NS_CSTA)


def route_select(register_id: str, cross_ref: str, destination: str) -> Request:
    return ("RouteSelect", {"routeRegisterReqID": register_id, "routingCrossRefID": cross_ref,
                            "routeSelected": destination, "routeUsedReq": "false"}, NS_CSTA)


def check_answer(request: str, answer: Message) -> dict[str, Any]:
    """The body of a positive answer, or CstaError for CSTAErrorCode / a session NegResponse."""
    if answer.name == "CSTAErrorCode":
        category, code = next(iter(answer.body.items()), ("unspecified", ""))
        raise CstaError(category, str(code) if not isinstance(code, dict) else "", request)
    if answer.name.endswith("NegResponse"):
        code = answer.body.get("errorCode")
        if isinstance(code, dict):
            category, value = next(iter(code.items()), ("unspecified", ""))
        else:
            category, value = "session", code or ""
        raise CstaError(category, str(value), request)
    return answer.body

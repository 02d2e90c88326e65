"""The requests ctid sends to a CSTA server, as (name, fields, namespace) ready for
`protocol.encode`, and the reading of their answers. No I/O.

Session (ECMA-354): StartApplicationSession, ResetApplicationSessionTimer,
StopApplicationSession. Monitoring and resync (ECMA-323): MonitorStart, MonitorStop,
SnapshotDevice, GetAgentState. Call control: MakeCall, AnswerCall, HoldCall,
RetrieveCall, SingleStepTransferCall, ConsultationCall, TransferCall, ConferenceCall,
ClearConnection, SetAgentState, GenerateDigits, AssociateData, SingleStepConferenceCall.
Routing: RouteRegister, RouteSelect.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

from ctid.drivers.csta.protocol import NS_AVAYA, NS_CSTA, NS_SESSION, CstaError, Message, connection

Request = tuple[str, dict[str, Any], str]

#: Agent states SetAgentState accepts (ECMA-269 requestedAgentState).
AGENT_STATES = ("loggedOn", "loggedOff", "notReady", "ready", "workingAfterCall")
#: What GenerateDigits may send (ECMA-269 charactersToSend: the DTMF keys).
DTMF = re.compile(r"[0-9*#A-D]{1,32}")
#: ECMA-269 CorrelatorData is an OCTET STRING of at most 32 octets (ECMA-323: hexBinary).
MAX_CORRELATOR = 32
#: SingleStepConferenceCall participationType per supervisor mode; whisper has no ECMA-269 form.
PARTICIPATION = {"listen": "silent", "barge": "active"}


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


def generate_digits(call_id: str, device_id: str, digits: str) -> Request:
    """DTMF on the device's connection; `digits` must match DTMF (ValueError otherwise)."""
    if not DTMF.fullmatch(digits):
        raise ValueError(f"DTMF digits must be 1-32 of 0-9 * # A-D, got {digits!r:.40}")
    return ("GenerateDigits", {"connectionToSendDigits": connection(call_id, device_id), "charactersToSend": digits},
            NS_CSTA)


def correlator(data: dict[str, str]) -> bytes:
    """Key/value call data as correlatorData octets: form-encoded UTF-8 (`k=v&k2=v2`), so any
    key or value survives the trip; ValueError when it is over MAX_CORRELATOR octets."""
    octets = urlencode(data).encode()
    if len(octets) > MAX_CORRELATOR:
        raise ValueError(f"call data is {len(octets)} octets as CSTA correlatorData ({octets[:40]!r}...), "
                         f"which holds at most {MAX_CORRELATOR} (ECMA-269)")
    return octets


def read_correlator(value: str) -> dict[str, str]:
    """The call data of a correlatorData element (as `correlator` wrote it); ValueError when it
    is not hexBinary, is over MAX_CORRELATOR octets or is not form-encoded UTF-8."""
    octets = bytes.fromhex(value)
    if len(octets) > MAX_CORRELATOR:
        raise ValueError(f"correlatorData is {len(octets)} octets, at most {MAX_CORRELATOR} allowed")
    return dict(parse_qsl(octets.decode(), keep_blank_values=True, strict_parsing=bool(octets)))


def associate_data(call_id: str, device_id: str, data: dict[str, str]) -> Request:
    """Call data on the call through one of its connections, as correlatorData (hexBinary)."""
    return ("AssociateData", {"existingCall": connection(call_id, device_id),
                              "correlatorData": correlator(data).hex().upper()}, NS_CSTA)


def single_step_conference(call_id: str, device_id: str, joining: str, mode: str) -> Request:
    """`joining` joins the call `device_id` is on: `mode` listen (silent) or barge (active)."""
    participation = PARTICIPATION.get(mode)
    if participation is None:
        raise ValueError(f"SingleStepConferenceCall has no participation type for {mode!r} "
                         f"(only {', '.join(PARTICIPATION)})")
    return ("SingleStepConferenceCall", {"activeCall": connection(call_id, device_id), "deviceToJoin": joining,
                                         "participationType": participation}, NS_CSTA)


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

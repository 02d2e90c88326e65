"""What the CSTA mapper reads of each event and how it names causes: the elements it knows
per event (everything else, and private data it does not read, is kept under `x`) and
the ECMA-269 causes it translates."""

from __future__ import annotations

from typing import Any

from ctid.drivers.csta.protocol import private_data

#: Top-level elements every event may carry that the model already reads.
_COMMON = frozenset({"monitorCrossRefID", "extensions", "cause", "localConnectionInfo", "callLinkageData",
                     "lastRedirectionDevice", "networkCallingDevice", "networkCalledDevice", "associatedCallingDevice",
                     "associatedCalledDevice", "servicesPermitted", "mediaCallCharacteristics", "callCharacteristics",
                     "callingDevice", "calledDevice", "connection"})
#: Private data elements the mapper reads (the rest is kept under `x`).
_PRIVATE_KNOWN = frozenset({"ReasonCode", "CallingDeviceName"})
#: ECMA-269 event causes with a Q.850 equivalent (`call.cleared` cause, as Asterisk reports it);
#: the CSTA cause itself is kept as `x.cause`.
Q850 = {"normalClearing": 16, "busy": 17, "callNotAnswered": 19, "alertTimeExpired": 19,
        "destNotObtainable": 1, "numberUnallocated": 1, "networkCongestion": 34, "trunksBusy": 34,
        "networkOutOfOrder": 38, "destOutOfOrder": 27, "blocked": 21}
CAUSES_DIVERTED = {"alertTimeExpired": "no_answer", "callForwardNoAnswer": "no_answer", "callNotAnswered": "no_answer",
                   "timeout": "timeout", "redirected": "redirected", "overflow": "redirected"}


#: Per event, the top-level elements the mapper reads (anything else goes to `x`).
_KNOWN: dict[str, frozenset[str]] = {
    "DeliveredEvent": frozenset({"alertingDevice"}),
    "QueuedEvent": frozenset({"queuedConnection", "queue", "numberQueued", "callsInFront"}),
    "EstablishedEvent": frozenset({"establishedConnection", "answeringDevice"}),
    "DivertedEvent": frozenset({"divertingDevice", "newDestination"}),
    "HeldEvent": frozenset({"heldConnection", "holdingDevice"}),
    "RetrievedEvent": frozenset({"retrievedConnection", "retrievingDevice"}),
    "TransferredEvent": frozenset({"primaryOldCall", "secondaryOldCall", "transferringDevice", "transferredToDevice",
                                   "transferredConnections"}),
    "ConferencedEvent": frozenset({"primaryOldCall", "secondaryOldCall", "conferencingDevice", "addedParty",
                                   "conferenceConnections"}),
    "FailedEvent": frozenset({"failedConnection", "failingDevice"}),
    "ServiceInitiatedEvent": frozenset({"initiatedConnection", "initiatingDevice"}),
    "OriginatedEvent": frozenset({"originatedConnection"}),
    "ConnectionClearedEvent": frozenset({"droppedConnection", "releasingDevice"}),
    "CallClearedEvent": frozenset({"clearedCall"}),
    "AgentLoggedOnEvent": frozenset({"agentDevice", "agentID", "acdGroup", "agentPassword"}),
    "AgentLoggedOffEvent": frozenset({"agentDevice", "agentID", "acdGroup"}),
    "AgentReadyEvent": frozenset({"agentDevice", "agentID", "acdGroup"}),
    "AgentNotReadyEvent": frozenset({"agentDevice", "agentID", "acdGroup"}),
    "AgentWorkingAfterCallEvent": frozenset({"agentDevice", "agentID", "acdGroup"}),
    "RouteRequest": frozenset({"routeRegisterReqID", "routingCrossRefID", "currentRoute", "routedCall",
                               "routedSelAlgorithm", "priority"}),
    "RouteEnd": frozenset({"routeRegisterReqID", "routingCrossRefID", "errorValue"}),
    "RecordEvent": frozenset({"message"}),  # `length`, `currentPosition` go to `x` (their unit is not assumed)
    "StopEvent": frozenset({"message"}),
}


#: Per event, everything it carries that the mapper reads (_COMMON and its own), in one set.
_READ: dict[str, frozenset[str]] = {name: _COMMON | known for name, known in _KNOWN.items()}


def unread(name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The elements of a `name` message the mapper does not read, and its unread private data."""
    # Speed: one C-level subset test answers the usual case (nothing unread) for the body.
    read = _READ.get(name, _COMMON)
    extra = {} if read.issuperset(body) else {key: value for key, value in body.items() if key not in read}
    for key, value in private_data(body).items():
        if key not in _PRIVATE_KNOWN:
            extra[key] = value
    return extra

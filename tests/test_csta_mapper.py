"""CSTA messages -> normalized events, on bytes: correlation across transfers and
conferences, unknown elements and private data under `x`, bad events counted."""

from __future__ import annotations

from ctid.drivers.csta.mapper import CstaMapper
from ctid.drivers.csta.protocol import NS_AVAYA, FrameParser, connection, device, encode


def feed(mapper: CstaMapper, *events: tuple[str, dict]) -> list[dict]:
    parser = FrameParser()
    out = []
    for message in parser.feed(b"".join(encode(name, {"monitorCrossRefID": "1", **fields}) for name, fields in events)):
        out.extend(mapper.handle(message, 100.0))
    assert parser.errors == 0
    return out


def queued(cid: str, queue: str = "sales", caller: dict | None = None, **extra) -> tuple[str, dict]:
    return ("QueuedEvent", {"queuedConnection": connection(cid, queue), "queue": device(queue),
                            "callingDevice": caller or device("+4420"), "calledDevice": device("5000"),
                            "numberQueued": "1", **extra})


def established(cid: str, dev: str) -> tuple[str, dict]:
    return ("EstablishedEvent", {"establishedConnection": connection(cid, dev), "answeringDevice": device(dev)})


def test_conference_merges_the_consultation_into_one_call():
    m = CstaMapper(stations=("1001",))
    events = feed(m, queued("10"), established("10", "1001"),
                  ("HeldEvent", {"heldConnection": connection("10", "1001"), "holdingDevice": device("1001")}),
                  ("ServiceInitiatedEvent", {"initiatedConnection": connection("11", "1001"),
                                             "initiatingDevice": device("1001"), "cause": "consultation"}),
                  ("OriginatedEvent", {"originatedConnection": connection("11", "1001"), "callingDevice": device("1001"),
                                       "calledDevice": device("2001"), "cause": "consultation"}),
                  established("11", "2001"),
                  ("ConferencedEvent", {"primaryOldCall": connection("10", "1001"),
                                        "secondaryOldCall": connection("11", "1001"),
                                        "conferencingDevice": device("1001"), "addedParty": device("2001"),
                                        "conferenceConnections": {"connectionListItem": [
                                            {"newConnection": connection("12", "+4420")},
                                            {"newConnection": connection("12", "1001")}]}}),
                  ("CallClearedEvent", {"clearedCall": {"callID": "12"}, "cause": "normalClearing"}))
    types = [(e["type"], e["call_id"]) for e in events]
    assert types == [("call.offered", "10"), ("call.queued", "10"), ("call.established", "10"), ("call.held", "10"),
                     ("call.retrieved", "10"), ("call.conferenced", "10"), ("call.cleared", "10")]
    assert events[5]["target"] == "2001" and events[5]["agent"] == "1001"
    assert events[-1]["cause"] == 16 and events[-1]["x"] == {"cause": "normalClearing"}
    assert not m.calls and not m.ids


def test_withheld_caller_unknown_elements_and_private_data_go_to_x():
    m = CstaMapper(stations=("1001",))
    private = {"privateData": {"private": {f"{{{NS_AVAYA}}}CallingDeviceName": "Ada",
                                           f"{{{NS_AVAYA}}}UCID": "00001002731700000000"}}}
    events = feed(m, queued("20", caller={"restricted": True}, extensions=private, trunkGroup="T7"))
    offered, queued_ = events
    assert offered["caller"] is None and offered["x"]["withheld"] is True
    assert offered["caller_name"] == "Ada"
    assert queued_["x"] == {"trunkGroup": "T7", "UCID": "00001002731700000000"}


def test_abandon_timeout_and_no_answer():
    m = CstaMapper(stations=("1001",))
    events = feed(m, queued("30"),
                  ("DeliveredEvent", {"connection": connection("30", "1001"), "alertingDevice": device("1001")}),
                  ("DivertedEvent", {"connection": connection("30", "1001"), "divertingDevice": device("1001"),
                                     "cause": "alertTimeExpired"}),
                  ("ConnectionClearedEvent", {"droppedConnection": connection("30", "+4420"),
                                              "releasingDevice": device("+4420")}),
                  ("CallClearedEvent", {"clearedCall": {"callID": "30"}}),
                  queued("31", queue="vip"),
                  ("DivertedEvent", {"connection": connection("31", "vip"), "divertingDevice": device("vip"),
                                     "cause": "timeout"}),
                  ("ConnectionClearedEvent", {"droppedConnection": connection("31", "+4420"),
                                              "releasingDevice": device("vip")}),
                  ("CallClearedEvent", {"clearedCall": {"callID": "31"}, "cause": "timeout"}))
    got = [(e["type"], e.get("cause"), e.get("disposition")) for e in events]
    assert got == [("call.offered", None, None), ("call.queued", None, None), ("call.delivered", None, None),
                   ("call.diverted", "no_answer", None), ("call.abandoned", None, "abandoned"),
                   ("call.cleared", 16, None), ("call.offered", None, None), ("call.queued", None, None),
                   ("call.diverted", "timeout", None), ("call.cleared", None, None)]


def test_agent_states_with_reason_codes():
    m = CstaMapper(stations=("1001",), reason_codes={"2": "Training"}, wrapup={"sales": 30.0})
    agent = {"agentDevice": device("1001"), "agentID": "A1001"}
    events = feed(m, ("AgentLoggedOnEvent", {**agent, "acdGroup": "sales"}),
                  ("AgentNotReadyEvent", {**agent, "acdGroup": "sales",
                                          "extensions": {"privateData": {"private": {f"{{{NS_AVAYA}}}ReasonCode": "2"}}}}),
                  ("AgentNotReadyEvent", {**agent, "acdGroup": "sales",
                                          "extensions": {"privateData": {"private": {f"{{{NS_AVAYA}}}ReasonCode": "9"}}}}),
                  ("AgentReadyEvent", {**agent, "acdGroup": "sales"}),
                  ("AgentWorkingAfterCallEvent", {**agent, "acdGroup": "sales"}),
                  ("AgentReadyEvent", agent),  # the end of after-call work: no news
                  ("AgentLoggedOffEvent", {**agent, "acdGroup": "sales"}))
    got = [(e["type"], e["agent"], e.get("reason"), e.get("duration")) for e in events]
    assert got == [("agent.logged_on", "A1001", None, None), ("agent.not_ready", "A1001", "Training", None),
                   ("agent.not_ready", "A1001", "9", None), ("agent.ready", "A1001", None, None),
                   ("agent.acw", "A1001", None, 30.0), ("agent.logged_off", "A1001", None, None)]


def test_bad_and_unknown_events_are_counted_and_lose_nothing_else():
    m = CstaMapper(stations=("1001",))
    events = feed(m, ("QueuedEvent", {"numberQueued": "1"}),  # no connection: cannot be mapped
                  ("PhaseOfTheMoonEvent", {}),
                  ("HeldEvent", {"heldConnection": connection("999", "1001")}),  # a call never seen
                  queued("40"))
    assert [e["type"] for e in events] == ["call.offered", "call.queued"]
    assert (m.unknown, m.orphans) == (2, 1)


def test_outbound_call_from_a_station():
    m = CstaMapper(stations=("1001",))
    events = feed(m, ("ServiceInitiatedEvent", {"initiatedConnection": connection("50", "1001"),
                                                "initiatingDevice": device("1001"), "cause": "makeCall"}),
                  ("OriginatedEvent", {"originatedConnection": connection("50", "1001"), "callingDevice": device("1001"),
                                       "calledDevice": device("+15551234567")}),
                  ("DeliveredEvent", {"connection": connection("50", "+15551234567"),
                                      "alertingDevice": device("+15551234567")}),
                  established("50", "+15551234567"),
                  ("FailedEvent", {"failedConnection": connection("50", "+15551234567"), "cause": "busy"}))
    got = [(e["type"], e["direction"], e["agent"], e["device"]) for e in events]
    assert got == [("call.offered", "outbound", "1001", "1001"), ("call.delivered", "outbound", "1001", "+15551234567"),
                   ("call.established", "outbound", "1001", "+15551234567"),
                   ("call.failed", "outbound", "1001", None)]

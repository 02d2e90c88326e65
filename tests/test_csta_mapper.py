"""CSTA messages -> normalized events, on bytes: correlation across transfers and
conferences, unknown elements and private data under `x`, bad events counted."""

from __future__ import annotations

from ctid.drivers.csta.mapper import CstaMapper
from ctid.drivers.csta.protocol import NS_AVAYA, FrameParser, connection, device, encode, timestamp


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


# -- recordings (ECMA-269 voice unit: RecordEvent / StopEvent) ----------------------------------


def at(t: float) -> dict:
    """The server's time stamp of an event (durations come from these)."""
    return {"extensions": {"security": {"timestamp": timestamp(t)}}}


def record(cid: str, message: str, t: float, dev: str = "+4420", name: str = "RecordEvent", **extra) -> tuple[str, dict]:
    return (name, {"connection": connection(cid, dev), "message": message, **extra, **at(t)})


def test_recording_started_and_stopped_with_the_call_fields_and_duration():
    m = CstaMapper(stations=("1001",))
    events = feed(m, queued("40"), record("40", "/rec/40-1.wav", 1000.0), established("40", "1001"),
                  record("40", "/rec/40-1.wav", 1042.25, name="StopEvent", length="42250"))
    started, stopped = (e for e in events if e["type"].startswith("recording."))
    assert (started["call_id"], started["path"], started["queue"], started["caller"]) == ("40", "/rec/40-1.wav",
                                                                                          "sales", "+4420")
    assert (stopped["call_id"], stopped["path"], stopped["duration"], stopped["agent"]) == ("40", "/rec/40-1.wav",
                                                                                            42.25, "1001")
    assert stopped["x"] == {"length": "42250"}  # ECMA's length: kept, its unit not assumed
    assert started["source"] == stopped["source"] == "csta" and not m.recordings.open


def test_a_recording_follows_its_call_across_a_transfer_and_ends_with_it():
    m = CstaMapper(stations=("1001",))
    events = feed(m, queued("50"), record("50", "/rec/50-1.wav", 2000.0), established("50", "1001"),
                  ("TransferredEvent", {"primaryOldCall": connection("50", "1001"),
                                        "transferringDevice": device("1001"), "transferredToDevice": device("vip"),
                                        "transferredConnections": {"connectionListItem": [
                                            {"newConnection": connection("51", "+4420"),
                                             "oldConnection": connection("50", "+4420")}]}}),
                  ("CallClearedEvent", {"clearedCall": {"callID": "51"}, "cause": "normalClearing", **at(2090.0)}))
    tail = [(e["type"], e["call_id"], e.get("duration")) for e in events[-2:]]
    assert tail == [("recording.stopped", "50", 90.0), ("call.cleared", "50", None)]  # stopped before the call ends
    assert not m.recordings.open and not m.calls


def test_a_second_recording_of_the_call_and_one_without_a_message_id():
    m = CstaMapper(stations=("1001",))
    events = feed(m, queued("60"), record("60", "/rec/60-1.wav", 10.0), record("60", "/rec/60-2.wav", 15.0),
                  ("RecordEvent", {"connection": connection("60", "1001"), **at(16.0)}),
                  record("60", "/rec/60-1.wav", 20.0, name="StopEvent"),
                  ("StopEvent", {"connection": connection("60", "1001"), **at(21.0)}),
                  ("CallClearedEvent", {"clearedCall": {"callID": "60"}, **at(30.0)}))
    got = [(e["type"], e.get("path"), e.get("duration")) for e in events if e["type"].startswith("recording.")]
    assert got == [("recording.started", "/rec/60-1.wav", None), ("recording.started", "/rec/60-2.wav", None),
                   ("recording.started", None, None), ("recording.stopped", "/rec/60-1.wav", 10.0),
                   ("recording.stopped", None, 5.0), ("recording.stopped", "/rec/60-2.wav", 15.0)]
    assert m.unknown == 0 and m.orphans == 0


def test_bad_recording_events_are_counted_and_logged_and_lose_nothing_else(caplog):
    m = CstaMapper(stations=("1001",))
    caplog.set_level("INFO", logger="ctid.driver.csta")
    events = feed(m, queued("70"), record("70", "/rec/70-1.wav", 10.0),
                  record("99", "/rec/99-1.wav", 11.0),  # a call ctid never saw
                  record("98", "/rec/98-1.wav", 11.5, name="StopEvent"),  # nor this one
                  record("70", "/rec/never.wav", 12.0, name="StopEvent"),  # a stop that was not started
                  ("RecordEvent", {"message": "/rec/no-connection.wav"}),  # a field it needs is missing
                  record("70", "/rec/70-1.wav", 13.0, name="StopEvent"))
    assert [e["type"] for e in events] == ["call.offered", "call.queued", "recording.started", "recording.stopped"]
    assert events[-1]["duration"] == 3.0
    assert m.orphans == 2 and m.unknown == 2
    logged = {r.getMessage() for r in caplog.records}
    assert {"recording of an unknown call", "recording stop of an unknown call",
            "stop of a recording that was not started", "cannot map CSTA event"} <= logged
    unknown = next(r for r in caplog.records if r.getMessage() == "recording of an unknown call")
    assert unknown.ctx["callID"] == "99" and unknown.ctx["message"] == "/rec/99-1.wav"


def test_a_consultation_legs_recording_is_counted_not_reported():
    m = CstaMapper(stations=("1001",))
    events = feed(m, queued("80"), established("80", "1001"),
                  ("ServiceInitiatedEvent", {"initiatedConnection": connection("81", "1001"),
                                             "initiatingDevice": device("1001"), "cause": "consultation"}),
                  record("81", "/rec/81-1.wav", 5.0, dev="1001"))
    assert not [e for e in events if e["type"].startswith("recording.")] and m.unknown == 1


def test_a_recording_of_a_call_lost_while_the_link_was_down_ends_at_resync():
    m = CstaMapper(stations=("1001",))
    feed(m, queued("90"), record("90", "/rec/90-1.wav", 10.0))
    events = m.resync({}, {}, 160.0)  # no server time: the duration is the arrival times'
    assert [(e["type"], e.get("duration")) for e in events[:2]] == [("recording.stopped", 60.0), ("call.cleared", None)]
    assert events[1]["disposition"] == "lost" and not m.recordings.open


def test_acw_length_and_agent_names_come_from_the_queue_tables():
    # as for the Asterisk driver: [[queue]] wrapuptime unless the driver's own `wrapup` names the group;
    # CSTA agent events carry no name: the members' names, unless the driver's `agent_names` says
    from ctid import config
    from ctid.drivers.csta import CstaDriver
    from ctid.metrics import Counters

    cfg = config.parse({"site": "hq", "driver": [{"kind": "csta", "wrapup": {"vip": 5}, "agent_names": {"1002": "Bob B."}}],
                        "queue": [{"name": "sales", "wrapuptime": 12, "members": [
                                      {"interface": "1001", "name": "Alice"}, {"interface": "PJSIP/1002", "name": "Bob"},
                                      {"interface": "PJSIP/1003"}]},
                                  {"name": "vip", "wrapuptime": 30}, {"name": "support"}]})
    driver = CstaDriver(cfg.drivers[0], lambda event: None, Counters())
    assert driver.mapper.agents.wrapup == {"sales": 12.0, "vip": 5.0}
    on = [(e["agent"], e["name"]) for e in feed(driver.mapper, *(
        ("AgentLoggedOnEvent", {"agentDevice": device(ext), "agentID": ext, "acdGroup": "sales"})
        for ext in ("1001", "1002", "1003")))]
    assert on == [("1001", "Alice"), ("1002", "Bob B."), ("1003", None)]

"""The CSTA wire on bytes alone: DMCC framing, hardened XML, request encoders, answers."""

from __future__ import annotations

import struct

import pytest

from ctid.drivers.csta import requests as rq
from ctid.drivers.csta.protocol import (EVENT_ID, NS_CSTA, NS_SESSION, CstaError, FrameParser, encode, parse)

DELIVERED = {"monitorCrossRefID": "7", "connection": {"callID": "1001", "deviceID": "1003"},
             "alertingDevice": {"deviceIdentifier": "1003"}, "callingDevice": {"deviceIdentifier": "+4420"},
             "calledDevice": {"deviceIdentifier": "sales"}, "cause": "distributed"}


def frame(body: bytes, invoke: bytes = b"9999", length: int | None = None, version: int = 0) -> bytes:
    return struct.pack(">HH4s", version, len(body) + 8 if length is None else length, invoke) + body


def xml(name: str, inner: str = "", ns: str = NS_CSTA) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?><{name} xmlns="{ns}">{inner}</{name}>'.encode()


def test_header_is_version_length_and_invoke_id():
    data = encode("DeliveredEvent", DELIVERED)
    version, length, invoke = struct.unpack(">HH4s", data[:8])
    assert (version, length, invoke) == (0, len(data), b"9999")
    assert data[8:].startswith(b'<?xml version="1.0" encoding="UTF-8"?><DeliveredEvent xmlns="' + NS_CSTA.encode())
    with pytest.raises(ValueError, match="4 digits"):
        encode("MakeCall", {}, "12")


def test_round_trip_split_anywhere():
    data = encode("DeliveredEvent", DELIVERED) + encode("MakeCallResponse", {"callingDevice": {"callID": "5"}}, "0042")
    for cut in range(1, len(data)):
        parser = FrameParser()
        messages = parser.feed(data[:cut]) + parser.feed(data[cut:])
        assert [(m.invoke_id, m.name) for m in messages] == [(EVENT_ID, "DeliveredEvent"), ("0042", "MakeCallResponse")]
        assert messages[0].body == DELIVERED and parser.errors == 0 and parser.pending == 0


def test_text_is_escaped_and_repeats_become_lists():
    data = encode("SnapshotDeviceResponse", {"x": {"item": [{"callID": "1"}, {"callID": "2"}]},
                                             "name": "Tom & <Jerry>"}, "0001")
    [message] = FrameParser().feed(data)
    assert message.body == {"x": {"item": [{"callID": "1"}, {"callID": "2"}]}, "name": "Tom & <Jerry>"}


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
                  b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
                  b'<DeliveredEvent xmlns="' + NS_CSTA.encode() + b'"><cause>&lol3;</cause></DeliveredEvent>')
EXTERNAL_ENTITY = (b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                   b'<DeliveredEvent xmlns="' + NS_CSTA.encode() + b'"><cause>&x;</cause></DeliveredEvent>')


@pytest.mark.parametrize("body, reason", [
    (BILLION_LAUGHS, "refused XML"),
    (EXTERNAL_ENTITY, "refused XML"),
    (xml("DeliveredEvent", ns="http://example.com/not-csta"), "wrong namespace"),
    (xml("DeliveredEvent", ns="http://www.ecma-international.org/standards/ecma-323/csta/ed2"), "wrong namespace"),
    (b"<DeliveredEvent><cause>normal</cause></DeliveredEvent>", "wrong namespace"),
    (xml("DeliveredEvent", "<cause>normal</cause>")[:-20], "malformed XML"),
    (b"not xml at all", "malformed XML"),
])
def test_bad_bodies_are_counted_and_lose_nothing_else(body, reason):
    good = encode("DeliveredEvent", DELIVERED)
    parser = FrameParser()
    messages = parser.feed(good + frame(body) + good)
    assert [m.name for m in messages] == ["DeliveredEvent", "DeliveredEvent"]
    assert parser.errors == 1 and parser.broken is None
    [(why, context)] = parser.take_errors()
    assert why.startswith(reason) and context == body[:120]


def test_the_entities_were_never_expanded():
    parser = FrameParser()
    assert parser.feed(frame(BILLION_LAUGHS)) == []
    assert "DTDForbidden" in parser.take_errors()[0][0]


def test_a_length_that_lies_long_swallows_the_next_frame_but_not_the_ones_before():
    good = encode("DeliveredEvent", DELIVERED)
    body = xml("QueuedEvent", "<numberQueued>1</numberQueued>")
    parser = FrameParser()
    lying = frame(body, length=len(body) + 8 + len(good))  # claims the next frame as its own
    messages = parser.feed(good + lying + good)
    assert [m.name for m in messages] == ["DeliveredEvent"]
    assert parser.errors == 1 and "malformed XML" in parser.take_errors()[0][0]


def test_a_length_that_lies_short_breaks_the_stream_after_the_good_frames():
    good = encode("DeliveredEvent", DELIVERED)
    body = xml("QueuedEvent", "<numberQueued>1</numberQueued>")
    parser = FrameParser()
    messages = parser.feed(good + frame(body, length=30) + good)
    assert [m.name for m in messages] == ["DeliveredEvent"]
    assert parser.broken is not None and parser.errors == 2  # the cut body, then a header made of XML
    assert parser.feed(good) == []  # nothing after a lost frame boundary is trusted


@pytest.mark.parametrize("header", [struct.pack(">HH4s", 1, 20, b"9999"), struct.pack(">HH4s", 0, 4, b"9999"),
                                    struct.pack(">HH4s", 0, 40, b"99x9")])
def test_a_header_that_cannot_be_one_breaks_the_stream(header):
    good = encode("DeliveredEvent", DELIVERED)
    parser = FrameParser()
    assert [m.name for m in parser.feed(good + header + b"x" * 40)] == ["DeliveredEvent"]
    assert parser.broken and "bad frame header" in parser.broken


def test_truncated_frame_waits_and_shows_as_pending():
    data = encode("DeliveredEvent", DELIVERED)
    parser = FrameParser()
    assert parser.feed(data[:-5]) == [] and parser.pending == len(data) - 5


# -- requests --------------------------------------------------------------------------------


def test_make_call_bytes():
    name, fields, ns = rq.make_call("1001", "+442071234567")
    assert encode(name, fields, "0007", ns)[8:] == (
        b'<?xml version="1.0" encoding="UTF-8"?><MakeCall xmlns="http://www.ecma-international.org/standards/'
        b'ecma-323/csta/ed3"><callingDevice>1001</callingDevice><calledDirectoryNumber>+442071234567'
        b'</calledDirectoryNumber></MakeCall>')


def test_session_request_carries_the_application_and_credentials():
    name, fields, ns = rq.start_session("ctid-hq", "cti", "s3cr&t", 120)
    [message] = FrameParser().feed(encode(name, fields, "0001", ns))
    assert message.namespace == NS_SESSION and message.name == "StartApplicationSession"
    info = message.body["applicationInfo"]
    assert info["applicationID"] == "ctid-hq"
    assert info["applicationSpecificInfo"]["SessionLoginInfo"]["password"] == "s3cr&t"
    assert message.body["requestedSessionDuration"] == "120"


@pytest.mark.parametrize("req, first", [
    (rq.answer_call("12", "1001"), {"callToBeAnswered": {"callID": "12", "deviceID": "1001"}}),
    (rq.hold_call("12", "1001"), {"callToBeHeld": {"callID": "12", "deviceID": "1001"}}),
    (rq.retrieve_call("12", "1001"), {"callToBeRetrieved": {"callID": "12", "deviceID": "1001"}}),
    (rq.single_step_transfer("12", "1001", "vip"), {"activeCall": {"callID": "12", "deviceID": "1001"},
                                                    "transferredTo": "vip"}),
    (rq.consultation_call("12", "1001", "2001"), {"existingCall": {"callID": "12", "deviceID": "1001"},
                                                  "consultedDevice": "2001"}),
    (rq.transfer_call("12", "13", "1001"), {"heldCall": {"callID": "12", "deviceID": "1001"},
                                            "activeCall": {"callID": "13", "deviceID": "1001"}}),
    (rq.conference_call("12", "13", "1001"), {"heldCall": {"callID": "12", "deviceID": "1001"},
                                              "activeCall": {"callID": "13", "deviceID": "1001"}}),
    (rq.clear_connection("12", "1001"), {"connectionToBeCleared": {"callID": "12", "deviceID": "1001"}}),
    (rq.set_agent_state("1001", "notReady", "1001", "sales", "3"),
     {"device": "1001", "requestedAgentState": "notReady", "agentID": "1001", "acdGroup": "sales",
      "extensions": {"privateData": {"private": {"ReasonCode": "3"}}}}),
])
def test_call_control_requests_decode_to_what_they_say(req, first):
    name, fields, ns = req
    [message] = FrameParser().feed(encode(name, fields, "0002", ns))
    assert message.name == name and message.body == first


def test_agent_state_must_be_known():
    with pytest.raises(ValueError, match="notReady"):
        rq.set_agent_state("1001", "lunch")


def test_negative_answers_raise_with_their_code():
    [error] = FrameParser().feed(encode("CSTAErrorCode", {"operation": "invalidCSTACallIdentifier"}, "0003"))
    with pytest.raises(CstaError) as info:
        rq.check_answer("HoldCall", error)
    assert (info.value.category, info.value.code) == ("operation", "invalidCSTACallIdentifier")
    [neg] = FrameParser().feed(encode("StartApplicationSessionNegResponse",
                                      {"errorCode": {"definitionError": "invalidApplicationInfo"}}, "0001", NS_SESSION))
    with pytest.raises(CstaError, match="definitionError error invalidApplicationInfo"):
        rq.check_answer("StartApplicationSession", neg)


def test_parse_keeps_private_data_by_local_name():
    root, body = parse(b'<a xmlns="urn:x"><b><c xmlns="urn:y">1</c><d/><d>2</d></b></a>')
    assert root == "urn:x}a" and body == {"b": {"c": "1", "d": ["", "2"]}}

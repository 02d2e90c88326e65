"""AMI frame parser: the pure-Python spec (PyFrameParser) and its compiled twin (ctid._fast).

The real transcripts live in `shared/ami` beside the repository; tests that need them skip
when they are missing. Tests of the compiled parser skip when the extension was not built
(set CTID_REQUIRE_COMPILED=1 to turn that into a failure, e.g. on a CI runner with a compiler).
CTID_HYPOTHESIS_EXAMPLES sets the number of examples of the property tests (default 400).
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctid.drivers.asterisk import protocol
from ctid.drivers.asterisk.protocol import KEEP_VARIABLES, MAX_FRAME, NOISE_EVENTS, PyFrameParser, encode_action

REPO = Path(__file__).resolve().parents[1]
AMI = REPO.parent / "shared" / "ami"

try:
    from ctid._fast.amiframes import FrameParser as CFrameParser
except ImportError as exc:  # no C compiler when the package was built
    CFrameParser = None
    _NOT_BUILT = f"the compiled parser ctid._fast.amiframes is not built ({exc})"
else:
    _NOT_BUILT = ""

#: property tests run this many examples (raise it for a long soak: CTID_HYPOTHESIS_EXAMPLES=20000)
EXAMPLES = int(os.environ.get("CTID_HYPOTHESIS_EXAMPLES", "400"))

needs_compiled = pytest.mark.skipif(CFrameParser is None, reason=_NOT_BUILT or "built")

PARSERS = [
    pytest.param(PyFrameParser, id="pure"),
    pytest.param(CFrameParser, id="compiled", marks=needs_compiled),
]


def _transcripts() -> list:
    raws = sorted(AMI.glob("*.raw")) if AMI.is_dir() else []
    if not raws:
        reason = f"no AMI transcripts in {AMI} (shared/ami must sit beside the repository)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-transcripts")]
    return [pytest.param(path, id=path.stem) for path in raws]


TRANSCRIPTS = _transcripts()


def expected_frames(raw: Path) -> int:
    analysis = raw.with_suffix(".analysis.txt")
    if not analysis.exists():
        pytest.skip(f"{analysis} is missing: no expected frame count")
    match = re.search(r"\bframes: (\d+)", analysis.read_text())
    assert match, f"no 'frames: N' in {analysis}"
    return int(match.group(1))


def state(parser) -> tuple:
    return parser.banner, parser.frames, parser.dropped, parser.errors


def frame(*lines: str | bytes) -> bytes:
    """One AMI frame: the lines, each ending in CRLF, then the empty line."""
    return b"".join((line.encode() if isinstance(line, str) else line) + b"\r\n" for line in lines) + b"\r\n"


def feed_chunks(parser, data: bytes, sizes) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    pos = 0
    for size in sizes:
        if pos >= len(data):
            break
        out += parser.feed(data[pos : pos + size])
        pos += size
    out += parser.feed(data[pos:])
    return out


def test_compiled_parser_is_selected():
    if CFrameParser is None:
        if os.environ.get("CTID_REQUIRE_COMPILED"):
            pytest.fail(f"CTID_REQUIRE_COMPILED is set but {_NOT_BUILT}")
        pytest.skip(_NOT_BUILT)
    assert protocol.COMPILED is True
    assert protocol.FrameParser is CFrameParser


@needs_compiled
def test_compiled_defaults_are_the_spec_defaults():
    from ctid._fast import amiframes

    assert amiframes._NOISE_EVENTS == NOISE_EVENTS
    assert amiframes._KEEP_VARIABLES == KEEP_VARIABLES
    assert amiframes._MAX_FRAME == MAX_FRAME
    stream = b"".join(frame(f"Event: {name}", "Variable: MIXMONITOR_FILENAME", "Value: x") for name in sorted(NOISE_EVENTS))
    stream += b"z" * (MAX_FRAME + 1) + b"\r\n\r\n" + frame("Event: Hangup")
    pure, fast = PyFrameParser(), CFrameParser()
    assert fast.feed(stream) == pure.feed(stream)
    assert state(fast) == state(pure) and fast.take_errors() == pure.take_errors()


# -- (1) the real transcripts --------------------------------------------------------------------


@pytest.mark.parametrize("raw", TRANSCRIPTS)
@pytest.mark.parametrize("cls", PARSERS)
def test_transcript_frame_counts(cls, raw):
    data = raw.read_bytes()
    parser = cls()
    out = parser.feed(data)
    assert parser.frames == expected_frames(raw)
    assert parser.errors == 0 and parser.take_errors() == []
    assert parser.banner is not None and parser.banner.startswith("Asterisk Call Manager/")
    assert parser.dropped + len(out) == parser.frames
    assert all("Event" in f or "Response" in f for f in out)
    # noise is dropped unparsed, except the VarSets carrying the recording's file name
    assert not any(f.get("Event") in NOISE_EVENTS - {"VarSet"} for f in out)
    kept_varsets = [f for f in out if f.get("Event") == "VarSet"]
    assert all(f["Variable"] in KEEP_VARIABLES for f in kept_varsets)
    assert len(kept_varsets) == len(re.findall(rb"Event: VarSet\r\n(?:[^\r]+\r\n)*?Variable: MIXMONITOR_FILENAME\r\n", data))
    assert parser.feed(b"") == []


@needs_compiled
@pytest.mark.parametrize("raw", TRANSCRIPTS)
def test_transcript_compiled_equals_pure(raw):
    data = raw.read_bytes()
    pure, fast = PyFrameParser(), CFrameParser()
    assert fast.feed(data) == pure.feed(data)
    assert state(fast) == state(pure)
    # and with nothing dropped: every frame of the transcript parsed both ways
    pure, fast = PyFrameParser(drop=()), CFrameParser(drop=())
    out = fast.feed(data)
    assert out == pure.feed(data)
    assert len(out) == pure.frames and state(fast) == state(pure)


# -- (2) split anywhere ----------------------------------------------------------------------------


@pytest.mark.parametrize("raw", TRANSCRIPTS)
@pytest.mark.parametrize("cls", PARSERS)
def test_split_at_every_offset(cls, raw):
    prefix = raw.read_bytes()[: 20 * 1024]
    whole = cls()
    expected = whole.feed(prefix)
    assert len(expected) > 10
    for cut in range(len(prefix) + 1):
        parser = cls()
        out = parser.feed(prefix[:cut])
        out += parser.feed(prefix[cut:])
        if out != expected or state(parser) != state(whole):
            pytest.fail(f"split at offset {cut} changes the result")


@pytest.mark.parametrize("raw", TRANSCRIPTS)
@pytest.mark.parametrize("cls", PARSERS)
def test_random_chunks(cls, raw):
    data = raw.read_bytes()
    whole = cls()
    expected = whole.feed(data)
    for seed in range(3):
        rng = random.Random(seed)
        sizes = [rng.choice((rng.randint(1, 16), rng.randint(17, 600), rng.randint(601, 65536))) for _ in range(len(data) // 256)]
        parser = cls()
        assert feed_chunks(parser, data, sizes) == expected, f"seed {seed}"
        assert state(parser) == state(whole)
        assert parser.take_errors() == []


@pytest.mark.parametrize("raw", TRANSCRIPTS)
@pytest.mark.parametrize("cls", PARSERS)
def test_recorded_reads(cls, raw):
    """The reads as the recording client got them (`.chunks.jsonl`)."""
    import json

    chunks = raw.with_suffix(".chunks.jsonl")
    if not chunks.exists():
        pytest.skip(f"{chunks} is missing")
    data = raw.read_bytes()
    parser = cls()
    out = []
    for line in chunks.read_text().splitlines():
        read = json.loads(line)
        out += parser.feed(data[read["offset"] : read["offset"] + read["len"]])
    assert out == cls().feed(data)
    assert parser.frames == expected_frames(raw) and parser.errors == 0


# -- (3) bad input ---------------------------------------------------------------------------------

GOOD = [
    frame("Event: Newchannel", "Channel: PJSIP/1001-00000001", "Uniqueid: 1.1"),
    frame("Response: Success", "ActionID: 7", "Message: Pong"),
    frame("Event: Hangup", "Channel: PJSIP/1001-00000001", "Cause: 16"),
]


@pytest.mark.parametrize("cls", PARSERS)
@pytest.mark.parametrize("chunk", [None, 1000, 65536], ids=["one-read", "1000", "64k"])
def test_oversized_line_then_good_frames(cls, chunk):
    garbage = b"x" * (MAX_FRAME + 4096)  # a 1 MB line without any terminator ...
    data = garbage + b"\r\n\r\n" + b"".join(GOOD)  # ... until an empty line ends the bad frame
    parser = cls()
    if chunk is None:
        out = parser.feed(data)
    else:
        out = feed_chunks(parser, data, [chunk] * (len(data) // chunk + 1))
    assert [f["Event"] if "Event" in f else f["Response"] for f in out] == ["Newchannel", "Success", "Hangup"]
    assert parser.errors == 1 and parser.frames == 1 + len(GOOD)
    [(reason, raw)] = parser.take_errors()
    assert reason == "oversized frame" and raw == b"x" * 120


@pytest.mark.parametrize("cls", PARSERS)
@pytest.mark.parametrize("split", [False, True])
def test_oversized_frame_swallows_up_to_the_next_empty_line(cls, split):
    """Without an empty line after the garbage, the first frame that follows belongs to it."""
    garbage = b"y" * (MAX_FRAME + 1)
    parser = cls()
    out = parser.feed(garbage) + parser.feed(b"".join(GOOD)) if split else parser.feed(garbage + b"".join(GOOD))
    assert [f.get("Event", f.get("Response")) for f in out] == ["Success", "Hangup"]
    assert parser.errors == 1 and parser.take_errors()[0][0] == "oversized frame"


@pytest.mark.parametrize("cls", PARSERS)
def test_small_max_frame(cls):
    parser = cls(max_frame=40)
    out = parser.feed(GOOD[0][:30])
    out += parser.feed(GOOD[0][30:] + GOOD[1])
    assert out == [] and parser.errors == 2  # both frames are longer than 40 bytes
    assert [r for r, _ in parser.take_errors()] == ["oversized frame", "oversized frame"]
    out = parser.feed(frame("Event: A"))
    assert out == [{"Event": "A"}]


@pytest.mark.parametrize("cls", PARSERS)
def test_binary_garbage(cls):
    rng = random.Random(7)
    garbage = bytes(rng.randrange(256) for _ in range(5000)) + bytes(range(256)) * 4
    parser = cls()
    out = parser.feed(garbage + b"\r\n\r\n" + b"".join(GOOD))
    assert out[-len(GOOD) :] == cls().feed(b"".join(GOOD))
    assert parser.errors >= 1
    assert {reason for reason, _ in parser.take_errors()} <= {"frame without Event or Response", "line without 'Key: '"}


@pytest.mark.parametrize("cls", PARSERS)
def test_invalid_utf8_is_replaced(cls):
    data = frame(b"Event: Newchannel", b"CallerIDName: Jos\xc3\xa9 N\xc3\xba\xc3\xb1ez", b"Bad: \xff\xfeok\xc3", "Name: 张伟")
    assert cls().feed(data) == [
        {"Event": "Newchannel", "CallerIDName": "José Núñez", "Bad": "\ufffd\ufffdok\ufffd", "Name": "张伟"}
    ]


@pytest.mark.parametrize("cls", PARSERS)
def test_lines_without_key(cls):
    parser = cls()
    data = frame("Event: Foo", "Broken line", "Key:value", "A:B: c", ":nokey", "Empty:")
    # one line without ': ' and every line of the frame is split at its first ':'
    assert parser.feed(data) == [{"Event": "Foo", "Key": "value", "A": "B: c", "Empty": ""}]
    assert parser.take_errors() == [("line without 'Key: '", b"Broken line"), ("line without 'Key: '", b":nokey")]
    assert parser.errors == 2
    # when every line has ': ', a key may hold a ':'
    assert parser.feed(frame("Event: Foo", "A:B: c", ": empty key")) == [{"Event": "Foo", "A:B": "c", "": "empty key"}]
    bad = frame(b"Event: Foo", b"\xff broken")
    assert parser.feed(bad) == [{"Event": "Foo"}]
    assert parser.take_errors() == [("line without 'Key: '", "\ufffd broken".encode())]


@pytest.mark.parametrize("cls", PARSERS)
def test_frame_without_event_or_response(cls):
    parser = cls()
    assert parser.feed(frame("Foo: bar", "Baz: 1") + GOOD[0]) == cls().feed(GOOD[0])
    assert parser.take_errors() == [("frame without Event or Response", b"Foo: bar\r\nBaz: 1")]
    # a stray empty line is an empty frame; a stray CRLF joins the next frame as an empty line
    out = parser.feed(b"\r\n\r\n" + b"\r\n" + frame("Event: B"))
    assert out == [{"Event": "B"}]
    assert parser.take_errors() == [("frame without Event or Response", b"")]
    assert parser.frames == 4 and parser.errors == 2


@pytest.mark.parametrize("cls", PARSERS)
def test_banner_split_across_reads(cls):
    parser = cls()
    out = []
    for part in (b"Asterisk Call", b" Manager/11.0", b".0\r", b"\nResponse: Success\r\n", b"\r\n"):
        out += parser.feed(part)
    assert parser.banner == "Asterisk Call Manager/11.0.0"
    assert out == [{"Response": "Success"}] and parser.frames == 1


@pytest.mark.parametrize("cls", PARSERS)
def test_noise_dropped_and_recording_varset_kept(cls):
    parser = cls()
    stream = (
        frame("Event: Newexten", "Channel: Local/1@x", "Application: MixMonitor")
        + frame("Event: VarSet", "Channel: Local/1@x", "Variable: MIXMONITOR_FILENAME", "Value: /var/spool/a.wav", "Uniqueid: 1")
        + frame("Event: VarSet", "Channel: Local/1@x", "Variable: OTHER", "Value: 1", "Uniqueid: 1")
        + frame("Event: MixMonitorStart", "Channel: Local/1@x")
    )
    out = parser.feed(stream)
    assert [f["Event"] for f in out] == ["VarSet", "MixMonitorStart"]
    assert out[0]["Value"] == "/var/spool/a.wav"
    assert (parser.frames, parser.dropped, parser.errors) == (4, 2, 0)
    # a parser that keeps nothing out, and one that drops more
    assert len(cls(drop=()).feed(stream)) == 4
    assert cls(drop={"VarSet", "MixMonitorStart"}, keep_variables=()).feed(stream) == [
        {"Event": "Newexten", "Channel": "Local/1@x", "Application": "MixMonitor"}
    ]


# -- (4) compiled == pure, for any stream ---------------------------------------------------------

NAMES = sorted(NOISE_EVENTS) + ["Newchannel", "Hangup", "QueueCallerJoin", "AgentConnect", "Newstate", "Event", "VarSetX", ""]
KEYS = ["Channel", "Uniqueid", "Linkedid", "Queue", "Value", "Variable", "Event", "Response", "ActionID", "A:B", "", "Ke y"]
text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12) | st.sampled_from(
    ["", " ", ": ", ":", "MIXMONITOR_FILENAME", "Success", "\u5f20\u4f1f", "a: b"]
)


@st.composite
def fields(draw) -> list[bytes]:
    keys = draw(st.lists(st.sampled_from(KEYS) | st.text("abcXYZ:", min_size=1, max_size=4), max_size=6))
    return [f"{k}: {draw(text)}".encode() for k in keys]


@st.composite
def event_frame(draw) -> bytes:
    head = [f"Event: {draw(st.sampled_from(NAMES))}".encode()]
    return frame(*head, *draw(fields()))


@st.composite
def varset_frame(draw) -> bytes:
    var = draw(st.sampled_from(["MIXMONITOR_FILENAME", "MIXMONITOR_FILENAME", "OTHER", "MIXMONITOR_FILENAMEX", "X"]))
    name = draw(st.sampled_from([b"VarSet", b"VarSetX", b"Newexten"]))
    lines = [b"Channel: Local/1@x", f"Variable: {var}".encode(), b"Value: v"]
    return frame(b"Event: " + name, *draw(st.permutations(lines)))


@st.composite
def response_frame(draw) -> bytes:
    return frame(f"Response: {draw(st.sampled_from(['Success', 'Error', 'Follows']))}".encode(), *draw(fields()))


raw_line = st.lists(st.sampled_from([b"a", b":", b" ", b": ", b"\r", b"\n", b"\r\n", b"\xff", b"\xc3", b"\xe5\xbc", b"Event: ", b"VarSet"]), max_size=12).map(b"".join)
garbage = st.binary(max_size=60) | raw_line | st.sampled_from([b"\r\n", b"\r\n\r\n", b"\r\n\r\n\r\n", b"Asterisk Call Manager/2.0\r\n"])
banner = st.sampled_from([b"", b"Asterisk Call Manager/11.0.0\r\n", b"Asterisk Call Manager/\xff\r\n", b"Asterisk Call Manager/9"])
piece = st.one_of(event_frame(), varset_frame(), response_frame(), garbage, raw_line.map(lambda b: b + b"\r\n\r\n"))


@needs_compiled
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    head=banner,
    pieces=st.lists(piece, max_size=25),
    cuts=st.lists(st.integers(0, 4000), max_size=12),
    max_frame=st.sampled_from([MAX_FRAME, 200, 64, 7, 3, 0]),
    drop=st.sampled_from([NOISE_EVENTS, frozenset(), NOISE_EVENTS | {"VarSetX", "Newchannel", ""}]),
    keep=st.sampled_from([KEEP_VARIABLES, frozenset(), frozenset({"MIXMONITOR_FILENAME", "X"})]),
    take_every=st.integers(1, 4),
)
def test_compiled_matches_pure(head, pieces, cuts, max_frame, drop, keep, take_every):
    data = head + b"".join(pieces)
    pure = PyFrameParser(drop=drop, keep_variables=keep, max_frame=max_frame)
    fast = CFrameParser(drop=drop, keep_variables=keep, max_frame=max_frame)
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        assert fast.feed(data[a:b]) == pure.feed(data[a:b])
        assert state(fast) == state(pure)
        if i % take_every == 0:
            assert fast.take_errors() == pure.take_errors()
    assert fast.take_errors() == pure.take_errors()
    assert fast.feed(b"") == pure.feed(b"")


@needs_compiled
@pytest.mark.parametrize("seed", range(4))
def test_compiled_matches_pure_random_streams(seed):
    """Many more (cheaper) random streams than the property test, with tiny reads."""
    rng = random.Random(seed)
    alphabet = [b"Event: ", b"Response: ", b"VarSet", b"VarSetX", b"Newchannel", b"\r\n", b"\r\n\r\n", b"\r", b"\n", b": ", b":",
                b"Variable: MIXMONITOR_FILENAME\r\n", b"Asterisk Call Manager/", b"x", b"\xff", b"\xc3\xa9", b"Key"]
    for _ in range(500):
        data = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        max_frame = rng.choice([MAX_FRAME, 50, 5, 0])
        drop = rng.choice([NOISE_EVENTS, NOISE_EVENTS | {"VarSetX", "Newchannel", ""}, ()])
        pure, fast = PyFrameParser(drop, max_frame=max_frame), CFrameParser(drop, max_frame=max_frame)
        pos = 0
        while pos < len(data):
            step = rng.randint(1, 9)
            assert fast.feed(data[pos : pos + step]) == pure.feed(data[pos : pos + step]), data
            pos += step
        assert state(fast) == state(pure) and fast.take_errors() == pure.take_errors(), data


@needs_compiled
@pytest.mark.parametrize("bad", [False, True], ids=["fast-path", "slow-path"])
def test_compiled_matches_pure_long_frames(bad):
    """Frames of more lines than the compiled parser's line table, fed whole and in small reads."""
    lines = [b"Event: Big"] + [b"K%d: v%d" % (i % 700, i) for i in range(1500)]
    if bad:
        lines.insert(1200, b"no separator")
    data = frame(*lines) * 2 + frame("Event: After")
    pure, fast = PyFrameParser(), CFrameParser()
    assert fast.feed(data) == pure.feed(data)
    assert state(fast) == state(pure) and fast.take_errors() == pure.take_errors()
    pure, fast = PyFrameParser(), CFrameParser()
    for i in range(0, len(data), 3):
        assert fast.feed(data[i : i + 3]) == pure.feed(data[i : i + 3])
    assert state(fast) == state(pure) and fast.take_errors() == pure.take_errors()


@needs_compiled
@pytest.mark.timeout(60)  # a guard, not a speed claim: linear is ~0.05 s, quadratic would be minutes
def test_compiled_small_reads_of_a_huge_frame_stay_linear():
    """1 MB of garbage in 3-byte reads: the compiled parser does not rescan what it has seen."""
    data = b"x" * (MAX_FRAME + 5000) + b"\r\n\r\n" + frame("Event: A")
    parser = CFrameParser()
    out = []
    for i in range(0, len(data), 3):
        out += parser.feed(data[i : i + 3])
    assert out == [{"Event": "A"}] and [r for r, _ in parser.take_errors()] == ["oversized frame"]


# -- (5) actions -----------------------------------------------------------------------------------

safe_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=20)
field_key = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12).filter(
    lambda k: k not in ("Action", "ActionID", "Response")
)


@pytest.mark.parametrize("cls", PARSERS)
@settings(max_examples=max(EXAMPLES // 3, 50), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    action=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=1, max_size=20),
    action_id=st.none() | safe_text,
    values=st.dictionaries(field_key, safe_text | st.integers() | st.none(), max_size=8),
)
def test_encode_action_round_trip(cls, action, action_id, values):
    # the parser returns frames that carry Event or Response: give the action a Response field
    data = encode_action(action, {"Response": "Success", **values}, action_id=action_id)
    assert data.endswith(b"\r\n\r\n") and data.count(b"\r\n\r\n") == 1
    expected = {"Action": action}
    if action_id is not None:
        expected["ActionID"] = action_id
    expected["Response"] = "Success"
    expected.update({k: str(v) for k, v in values.items() if v is not None})
    parser = cls(drop=())
    out = parser.feed(data)
    assert [list(f.items()) for f in out] == [list(expected.items())]
    assert parser.errors == 0


@pytest.mark.parametrize("cls", PARSERS)
def test_encode_action_details(cls):
    data = encode_action("Originate", {"Channel": "Local/100@agents", "Variable": ["A=1", "B=2"], "Timeout": 30000, "X": None}, "42")
    assert data == (
        b"Action: Originate\r\nActionID: 42\r\nChannel: Local/100@agents\r\n"
        b"Variable: A=1\r\nVariable: B=2\r\nTimeout: 30000\r\n\r\n"
    )
    with pytest.raises(ValueError):
        encode_action("Setvar", {"Value": "a\r\nAction: Hangup"})
    # an action alone has neither Event nor Response: the parser (PBX side of a frame) refuses it
    parser = cls()
    assert parser.feed(encode_action("Ping", action_id="1")) == []
    assert parser.take_errors() == [("frame without Event or Response", b"Action: Ping\r\nActionID: 1")]

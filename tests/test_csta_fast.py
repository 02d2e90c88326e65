"""CSTA frame parser: the pure-Python spec (PyFrameParser, py_parse) and its compiled twin
(ctid._fast.cstaxml, expat's callbacks in C). Same messages, counters, error reasons and
exceptions on the bench's call center, on the simulator's whole vocabulary (events,
requests, answers) and on thousands of mutated frames — DTDs, entities, deep nesting,
foreign encodings, lying headers included.

Tests of the compiled parser skip when the extension was not built (CTID_REQUIRE_COMPILED=1
turns that into a failure). CTID_HYPOTHESIS_EXAMPLES sets the property tests' examples (400).
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctid.drivers.csta import protocol
from ctid.drivers.csta import requests as rq
from ctid.drivers.csta.protocol import NS_AVAYA, NS_CSTA, NS_SESSION, PyFrameParser, encode, py_parse
from ctid.drivers.csta.simrender import CstaRenderer
from ctid.sim import CallCenter, SimConfig

try:
    from ctid._fast import cstaxml
except ImportError as exc:  # no C compiler or no expat.h when the package was built
    cstaxml = None
    _NOT_BUILT = f"the compiled CSTA parser ctid._fast.cstaxml is not built ({exc})"
else:
    _NOT_BUILT = ""

EXAMPLES = int(os.environ.get("CTID_HYPOTHESIS_EXAMPLES", "400"))
needs_compiled = pytest.mark.skipif(cstaxml is None, reason=_NOT_BUILT or "built")


def test_compiled_parser_is_selected():
    if cstaxml is None:
        if os.environ.get("CTID_REQUIRE_COMPILED"):
            pytest.fail(f"CTID_REQUIRE_COMPILED is set but {_NOT_BUILT}")
        pytest.skip(_NOT_BUILT)
    assert protocol.COMPILED is True
    assert protocol.FrameParser is cstaxml.FrameParser and protocol.parse is cstaxml.parse
    assert cstaxml.MAX_DEPTH == protocol.MAX_DEPTH  # repeated there: protocol imports it


def test_without_the_extension_the_pure_parser_serves():
    """What an install without expat.h (or without a compiler) runs: setup.py skips just that
    extension with a warning, and protocol.py falls back to the pure parser."""
    code = ("import sys; sys.modules['ctid._fast.cstaxml'] = None\n"
            "from ctid.drivers.csta import protocol as p\n"
            "assert not p.COMPILED and p.FrameParser is p.PyFrameParser and p.parse is p.py_parse\n"
            "[m] = p.FrameParser().feed(p.encode('DeliveredEvent', {'cause': 'newCall'}))\n"
            "assert (m.name, m.body) == ('DeliveredEvent', {'cause': 'newCall'})\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- the two, side by side -------------------------------------------------------------------------


def outcome(parse: Any, body: bytes) -> tuple[Any, ...]:
    """What parse makes of one body: its result, or the exception's class and text."""
    try:
        return ("ok", *parse(body))
    except Exception as exc:  # noqa: BLE001 - the exception *is* the outcome compared
        return ("raised", type(exc).__name__, str(exc))


def run(cls: Any, data: bytes, cuts: list[int]) -> tuple[Any, ...]:
    """Everything a parser shows after `data` is fed in pieces cut at `cuts`."""
    parser = cls()
    messages, pos = [], 0
    for cut in [*sorted(cuts), len(data)]:
        messages += parser.feed(data[pos:cut])
        pos = cut
    return messages, parser.frames, parser.errors, parser.broken, parser.pending, parser.take_errors()


def assert_same(data: bytes, cuts: list[int] | None = None) -> tuple[Any, ...]:
    pure = run(PyFrameParser, data, cuts or [])
    fast = run(cstaxml.FrameParser, data, cuts or [])
    assert fast == pure
    return pure


def frame(body: bytes, invoke: bytes = b"9999") -> bytes:
    return struct.pack(">HH4s", 0, (len(body) + 8) & 0xFFFF, invoke) + body


def call_center_stream(seconds: int) -> bytes:
    """The bench's call center (60 agents, ten times the arrival rates, its seed), rendered
    as the CSTA simulator sends it."""
    config = SimConfig.default(agents=60)
    for queue in config.queues:
        queue.rate *= 10
    model = CallCenter(config, seed=20261124)
    renderer = CstaRenderer(model, 1_795_342_000)
    model.sinks.append(renderer)
    chunks: list[bytes] = []
    for t in range(0, seconds, 10):
        model.advance(float(t))
        chunks.extend(encode(name, {"monitorCrossRefID": "1", **fields}) for _, name, fields in renderer.take())
    return b"".join(chunks)


@pytest.fixture(scope="module")
def stream() -> bytes:
    return call_center_stream(900)


@needs_compiled
def test_the_bench_call_center_reads_the_same(stream):
    messages, frames, errors, *_ = assert_same(stream, list(range(0, len(stream), 65_536)))
    assert frames == len(messages) > 5_000 and errors == 0
    assert {m.name for m in messages} >= {"DeliveredEvent", "EstablishedEvent", "ConnectionClearedEvent",
                                          "AgentNotReadyEvent", "HeldEvent", "TransferredEvent"}


@needs_compiled
def test_every_request_and_answer_reads_the_same():
    """The simulator's other messages: session and call-control requests, positive and
    negative answers, private data in the Avaya namespace."""
    answers = [
        rq.start_session("ctid-hq", "cti", "s3cr&t", 120), rq.make_call("1001", "+442071234567"),
        rq.answer_call("12", "1001"), rq.hold_call("12", "1001"), rq.retrieve_call("12", "1001"),
        rq.single_step_transfer("12", "1001", "vip"), rq.consultation_call("12", "1001", "2001"),
        rq.transfer_call("12", "13", "1001"), rq.conference_call("12", "13", "1001"),
        rq.clear_connection("12", "1001"), rq.set_agent_state("1001", "notReady", "1001", "sales", "3"),
        ("CSTAErrorCode", {"operation": "invalidCSTACallIdentifier"}, NS_CSTA),
        ("StartApplicationSessionNegResponse", {"errorCode": {"definitionError": "x"}}, NS_SESSION),
        ("MakeCallResponse", {"callingDevice": {"callID": "5", "deviceID": "1001"}}, NS_CSTA),
        ("DeliveredEvent", {"extensions": {"privateData": {"private": {f"{{{NS_AVAYA}}}CallerName": "Émile Zoë ✓"}}},
                            "cause": ["a", "b", "c"]}, NS_CSTA),
    ]
    data = b"".join(encode(name, fields, f"{n:04d}", ns) for n, (name, fields, ns) in enumerate(answers, 1))
    messages, *_ = assert_same(data, [3, 100, 101, len(data) // 2])
    assert len(messages) == len(answers)


# -- bad input: the same refusals, the same counted errors ----------------------------------------

GOOD = encode("DeliveredEvent", {"connection": {"callID": "1", "deviceID": "1003"}, "cause": "normal"})


def xml(inner: str, ns: str = NS_CSTA, decl: str = '<?xml version="1.0" encoding="UTF-8"?>') -> bytes:
    return f'{decl}<DeliveredEvent xmlns="{ns}">{inner}</DeliveredEvent>'.encode("latin-1", "replace")


BAD_BODIES = {
    "billion laughs": (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aa"><!ENTITY b "&a;&a;&a;&a;">]>'
                       + xml("<cause>&b;</cause>", decl="")),
    "external entity": b'<!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + xml("<cause>&x;</cause>", decl=""),
    "doctype only": b'<!DOCTYPE DeliveredEvent>' + xml("", decl=""),
    "undefined entity": xml("<cause>&nope;</cause>"),
    "too deep": xml("<a>" * 100 + "x" + "</a>" * 100),  # the root and 100 more
    "deep but allowed": xml("<a>" * 99 + "x" + "</a>" * 99),  # MAX_DEPTH exactly
    "unknown encoding": xml("<cause>x</cause>", decl='<?xml version="1.0" encoding="x-no-such"?>'),
    "multi-byte encoding": xml("<cause>x</cause>", decl='<?xml version="1.0" encoding="shift_jis"?>'),
    "8-bit codec": xml("<cause>caf\xe9</cause>", decl='<?xml version="1.0" encoding="cp1252"?>'),
    "latin-1": xml("<cause>caf\xe9</cause>", decl='<?xml version="1.0" encoding="ISO-8859-1"?>'),
    "bad utf-8": xml("<cause>\xff\xfe</cause>"),
    "wrong namespace": xml("<cause>x</cause>", ns="urn:other"),
    "brace in namespace": xml("<cause>x</cause>", ns=NS_CSTA + "}x"),
    "no namespace": b"<DeliveredEvent><cause>x</cause></DeliveredEvent>",
    "truncated": xml("<cause>normal</cause>")[:-9],
    "junk after": xml("") + b"<again/>",
    "empty": b"",
    "not xml": b"not xml at all",
    "mixed content": xml("<a>1<b>2</b>3</a><a/><a>x&amp;y<![CDATA[<z>]]><!-- c --><?pi ?>w</a>"),
    "leaf root": b'<DeliveredEvent xmlns="' + NS_CSTA.encode() + b'">text</DeliveredEvent>',
}


@needs_compiled
@pytest.mark.parametrize("body", list(BAD_BODIES.values()), ids=list(BAD_BODIES))
def test_bad_and_odd_bodies_end_the_same(body):
    assert outcome(cstaxml.parse, body) == outcome(py_parse, body)
    messages, frames, errors, broken, pending, reasons = assert_same(GOOD + frame(body) + GOOD)
    if not body:  # a frame of header alone cannot be one: the stream is lost after the first
        assert frames == 1 and broken
        return
    assert frames == 3 and broken is None and pending == 0
    assert messages[0].name == messages[-1].name == "DeliveredEvent"  # the neighbours are never lost
    assert len(messages) + errors == 3


@needs_compiled
def test_the_refusals_are_the_spec_refusals():
    refused = {name: outcome(cstaxml.parse, body) for name, body in BAD_BODIES.items()}
    assert refused["billion laughs"][:2] == refused["external entity"][:2] == ("raised", "DTDForbidden")
    assert refused["too deep"][:2] == ("raised", "TooDeep") and refused["deep but allowed"][0] == "ok"
    assert refused["unknown encoding"] == ("raised", "LookupError", "unknown encoding: x-no-such")
    assert refused["8-bit codec"][2]["cause"] == "café"
    assert refused["undefined entity"][:2] == ("raised", "ExpatError")


@needs_compiled
@pytest.mark.parametrize("header", [struct.pack(">HH4s", 1, 20, b"9999"), struct.pack(">HH4s", 0, 4, b"9999"),
                                    struct.pack(">HH4s", 0, 40, b"99x9"), struct.pack(">HH4s", 0, 8, b"0001")])
def test_broken_headers_end_the_same(header):
    _, _, _, broken, *_ = assert_same(GOOD + header + b"x" * 40 + GOOD, [9])
    assert broken and "bad frame header" in broken


# -- mutated frames --------------------------------------------------------------------------------

TOKENS = [b"<", b"</", b">", b"/>", b"&", b"&amp;", b"&#233;", b"&#x0;", b"&lol;", b"<!DOCTYPE x>",
          b'<!DOCTYPE x [<!ENTITY e "ee">]>', b"<!ENTITY", b'xmlns="urn:x"', b'xmlns:p="urn:p"', b"<p:q>", b"}",
          b'<?xml version="1.0" encoding="cp1252"?>', b'<?xml version="1.0" encoding="x-nope"?>',
          b'<?xml version="1.0" encoding="UTF-16"?>', b"<![CDATA[", b"]]>", b"<?pi x?>", b"<!-- c -->",
          b"\x00", b"\xff", b"\xc3", b"\xe2\x82\xac", b"<a>" * 60, b"</a>" * 60, b"<cause>x</cause>", b" ", b"\r\n"]
BASES = [GOOD, *(frame(body) for body in BAD_BODIES.values()),
         encode("StartApplicationSessionPosResponse", {"sessionID": "s1", "actualSessionDuration": "120"}, "0001",
                NS_SESSION)]


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One frame with a few random edits: its body, sometimes its header too."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op, pos = rng.randrange(6), rng.randint(8, max(8, len(out)))
        if op == 0 and pos < len(out):
            out[pos] = rng.randrange(256)
        elif op == 1:
            out[pos:pos] = rng.choice(TOKENS)
        elif op == 2:
            del out[pos:pos + rng.randint(1, 20)]
        elif op == 3:
            del out[rng.randint(9, max(9, len(out))):]
        elif op == 4:  # move a piece of the body elsewhere: tags out of order
            piece = out[pos:pos + rng.randint(1, 40)]
            del out[pos:pos + len(piece)]
            where = rng.randint(8, max(8, len(out)))
            out[where:where] = piece
        else:
            out[pos:pos] = out[8:rng.randint(8, len(out))]
    body = bytes(out[8:])
    head = struct.pack(">HH4s", 0, (len(body) + 8) & 0xFFFF, bytes(out[4:8]))
    if rng.random() < 0.01:  # a header that lies (length) or cannot be one
        head = struct.pack(">HH4s", rng.choice([0, 0, 1]), rng.randrange(0x10000), rng.choice([b"9999", b"00a1"]))
    return head + body


@needs_compiled
def test_twenty_thousand_mutated_frames():
    rng = random.Random(20261124)
    for n in range(2_000):  # streams of ten frames each, fed in random pieces
        data = b"".join(mutate(rng, rng.choice(BASES)) if rng.random() < 0.8 else GOOD for _ in range(10))
        cuts = [rng.randint(0, len(data)) for _ in range(rng.randint(0, 4))]
        assert_same(data, cuts)
        for body in (data[8:200], data[8:]):
            assert outcome(cstaxml.parse, body) == outcome(py_parse, body), f"stream #{n}"


@needs_compiled
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), picks=st.lists(st.integers(0, len(BASES) - 1), min_size=1, max_size=6),
       cuts=st.lists(st.integers(0, 4_000), max_size=5))
def test_mutated_streams_read_the_same(seed, picks, cuts):
    rng = random.Random(seed)
    data = b"".join(mutate(rng, BASES[i]) for i in picks)
    assert_same(data, [c for c in cuts if c <= len(data)])


@needs_compiled
@settings(max_examples=EXAMPLES, deadline=None)
@given(st.recursive(st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
                    lambda kids: st.dictionaries(st.sampled_from(["a", "b", "callID", "é", "x-y"]),
                                                 kids | st.lists(kids, min_size=2, max_size=3), max_size=4),
                    max_leaves=20))
def test_any_encoded_body_reads_the_same(fields):
    """encode() of any nesting of text, dicts and lists: both read the same thing back
    (text that XML cannot carry, control characters, must fail the same way too)."""
    try:
        data = encode("DeliveredEvent", fields if isinstance(fields, dict) else {"cause": fields})
    except ValueError:  # too large for one frame
        return
    assert_same(data)
    assert outcome(cstaxml.parse, data[8:]) == outcome(py_parse, data[8:])


@needs_compiled
def test_more_names_than_the_name_cache_holds():
    """Element names past the compiled reader's bounded name cache (slots get reused) still
    read as the spec reads them, in any namespace."""
    for ns in (NS_CSTA, NS_AVAYA, "urn:x"):
        inner = "".join(f'<n{i} xmlns="{ns}">{i}</n{i}><é{i % 7}>x</é{i % 7}>' for i in range(3000))
        body = f'<DeliveredEvent xmlns="{NS_CSTA}">{inner}</DeliveredEvent>'.encode()
        first = outcome(cstaxml.parse, body)
        assert first == outcome(py_parse, body) and first[0] == "ok" and len(first[2]) == 3007
        assert outcome(cstaxml.parse, body) == first  # now partly from the cache

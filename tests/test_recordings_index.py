"""The recording index: the compiled and the pure segment give the same pages, and both give
what a plain filter over the recordings gives (tests/recordings_support.oracle)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from recordings_support import oracle, rec
from ctid.recordings import COMPILED, ADMIN, Principal, RecordingIndex, parse_query
from ctid.recordings.index import CompiledSegment
from ctid.recordings.pyindex import PySegment
from ctid.recordings.query import encode_cursor

pytestmark = pytest.mark.skipif(not COMPILED, reason="ctid._fast.recindex was not built")

AGENTS = ["1001", "1002", "1003", None]
QUEUES = ["sales", "support", None]
NUMBERS = ["01615551234", "+441615551234", "1234", "99912340", "0034", "5", "anonymous", None, "+", "12a4",
           "1234567890123456789"]

recordings = st.lists(st.builds(
    dict,
    start=st.sampled_from([0.0, 10.0, 10.5, 20.0, 86400.0, 90000.0]) | st.floats(0, 100_000, allow_nan=False),
    duration=st.sampled_from([0.0, 59.9, 60.0, 61.0, 300.0]),
    agent=st.sampled_from(AGENTS), queue=st.sampled_from(QUEUES), team=st.sampled_from(["sales", "nights", None]),
    direction=st.sampled_from(["inbound", "outbound", "internal", "odd", None]),
    disposition=st.sampled_from(["answered", "abandoned", "transferred", "weird", None]),
    caller=st.sampled_from(NUMBERS), called=st.sampled_from(NUMBERS), voicemail=st.booleans(),
    tags=st.lists(st.sampled_from(["angry", "sale", "legal"]), max_size=2).map(tuple),
    qa_score=st.none() | st.sampled_from([0.0, 50.0, 99.5]),
), max_size=60)

VALUES = {
    "since": st.sampled_from([0.0, 10.0, 10.5, 50_000.0]), "until": st.sampled_from([10.5, 20.0, 90_000.0, 1e6]),
    "agents": st.lists(st.sampled_from(["1001", "1002", "9999"]), min_size=1, max_size=2),
    "queue": st.sampled_from(["sales", "support", "nope"]), "team": st.sampled_from(["sales", "nights"]),
    "caller": st.sampled_from(["1234", "*1234", "0161*", "+441615551234", "*34", "0*", "*0034", "*40"]),
    "called": st.sampled_from(["*1234", "5", "99*", "*0"]), "suffix": st.sampled_from(["1234", "34", "51234", "0"]),
    "min_duration": st.sampled_from([0.0, 60.0]), "max_duration": st.sampled_from([60.0, 400.0]),
    "direction": st.sampled_from(["inbound", "internal"]),
    "dispositions": st.sampled_from([["answered"], ["transferred", "abandoned"]]),
    "voicemail": st.booleans(), "tag": st.sampled_from(["angry", "legal", "never"]),
    "min_qa": st.sampled_from([0.0, 60.0]), "max_qa": st.sampled_from([50.0, 100.0]),
    "order": st.sampled_from(["newest", "oldest"]), "limit": st.integers(1, 25), "offset": st.integers(0, 5),
}


@st.composite
def queries(draw) -> dict:
    """A few filters at a time (many at once would almost never match anything)."""
    keys = draw(st.lists(st.sampled_from(sorted(VALUES)), max_size=4, unique=True))
    spec = {k: draw(VALUES[k]) for k in keys}
    for low, high in (("since", "until"), ("min_duration", "max_duration"), ("min_qa", "max_qa")):
        if low in spec and high in spec and spec[low] > spec[high]:
            spec[low], spec[high] = spec[high], spec[low]
    return spec


principals = st.sampled_from([ADMIN, Principal.parse("auditor"), Principal.parse("agent:1001"),
                              Principal.parse("supervisor:sales"), Principal.parse("supervisor:nights,sales")])


def build(rows: list[dict], segment, deleted: set[int], tail: int = 7) -> tuple[RecordingIndex, list]:
    index = RecordingIndex(segment, tail=tail)
    recs = [rec(i + 1, **row) for i, row in enumerate(rows)]
    for r in recs:
        index.add(r)
    for r in recs:
        if r.id in deleted:
            assert index.delete(r.start, r.id)
    return index, [r for r in recs if r.id not in deleted]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=recordings, spec=queries(), principal=principals, data=st.data())
def test_compiled_and_pure_agree_with_the_oracle(rows, spec, principal, data):
    deleted = set(data.draw(st.lists(st.integers(1, max(1, len(rows))), max_size=5))) if rows else set()
    fast, live = build(rows, CompiledSegment, deleted)
    pure, _ = build(rows, PySegment, deleted)
    query = parse_query(spec)
    want = oracle(live, principal, query)
    assert fast.search(principal, query).ids == want
    assert pure.search(principal, query).ids == want
    event("non-empty page" if want else "empty page")
    unlimited = parse_query({**spec, "limit": 10_000, "offset": 0})
    assert fast.count(principal, query) == pure.count(principal, query) == len(oracle(live, principal, unlimited))
    assert fast.count_by_queue(principal, query, 0.0, 3600.0, 30) == pure.count_by_queue(principal, query, 0.0, 3600.0, 30)
    assert len(fast) == len(pure) == len(live)


@settings(max_examples=60, deadline=None)
@given(rows=recordings, spec=queries(), principal=principals, limit=st.integers(1, 4))
def test_cursor_paging_walks_every_row_once(rows, spec, principal, limit):
    spec = {k: v for k, v in spec.items() if k not in ("limit", "offset")}
    index, live = build(rows, CompiledSegment, set())
    want = oracle(live, principal, parse_query({**spec, "limit": 10_000}))
    got, cursor = [], None
    for _ in range(200):
        page = index.search(principal, parse_query({**spec, "limit": limit, "cursor": cursor}))
        got.extend(page.ids)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert got == want


def test_segment_columns_roundtrip_and_memory():
    """Exported columns rebuild an equal segment; a recording costs under 100 bytes."""
    index = RecordingIndex(CompiledSegment, tail=100_000)
    for i in range(5000):
        index.add(rec(i + 1, start=float(5000 - i), agent=f"a{i % 50}", queue=f"q{i % 7}", caller=f"0161555{i:04d}",
                      called="8000", tags=("x",) if i % 3 == 0 else ()))
    index.add_columns(index._all()[0].columns())  # sealed copy of the unsorted tail
    whole = index.segments[-1]
    assert len(whole) == 5000 and whole.nbytes / 5000 < 100
    q = parse_query({"agent": "a7", "tag": "x", "order": "oldest"})
    plan = index.plan(ADMIN, q)
    assert whole.search(plan, 100) == PySegment(index._all()[-1].columns()).search(plan, 100)


def test_newest_first_ties_break_on_id_and_cursor_is_stable():
    index = RecordingIndex(tail=3)
    for i in range(1, 8):
        index.add(rec(i, start=100.0 if i % 2 else 200.0))
    page = index.search(ADMIN, parse_query({"limit": 3}))
    assert page.ids == [6, 4, 2] and page.next_cursor == encode_cursor(200.0, 2)
    rest = index.search(ADMIN, parse_query({"limit": 10, "cursor": page.next_cursor}))
    assert rest.ids == [7, 5, 3, 1] and rest.next_cursor is None
    assert index.search(ADMIN, parse_query({"order": "oldest", "limit": 2, "offset": 1})).ids == [3, 5]


def test_each_filter_on_hand_made_rows():
    rows = [
        rec(1, agent="1001", queue="sales", caller="01615551234", called="8000", duration=65, direction="inbound",
            disposition="answered", tags=("sale",), qa_score=90.0),
        rec(2, agent="1002", queue="support", caller="+447700900123", called="01615551234", duration=20,
            direction="outbound", disposition="abandoned", voicemail=True),
        rec(3, agent="1001", queue="support", caller="withheld", called="8001", duration=600, direction="internal",
            disposition="transferred", qa_score=40.0),
    ]
    index = RecordingIndex()
    for r in rows:
        index.add(r)

    def ids(**spec):
        return sorted(index.search(ADMIN, parse_query(spec)).ids)

    assert ids(since=1001.5, until=1003.0) == [2]
    assert ids(agent="1001") == [1, 3] and ids(agents=["1002", "1001"]) == [1, 2, 3]
    assert ids(queue="support") == [2, 3] and ids(team="nobody") == []
    assert ids(caller="01615551234") == [1] and ids(caller="0161*") == [1] and ids(caller="*1234") == [1]
    assert ids(caller="447700900123") == [2] and ids(caller="+447700900123") == [2]
    assert ids(called="*1234") == [2] and ids(suffix="1234") == [1, 2] and ids(suffix="123") == [2]
    assert ids(min_duration=60) == [1, 3] and ids(max_duration=65) == [1, 2] and ids(min_duration=65, max_duration=65) == [1]
    assert ids(direction="outbound") == [2] and ids(disposition=["transferred", "abandoned"]) == [2, 3]
    assert ids(voicemail=True) == [2] and ids(voicemail=False) == [1, 3]
    assert ids(tag="sale") == [1] and ids(tag="unknown") == []
    assert ids(min_qa=50) == [1] and ids(max_qa=50) == [3]
    assert index.count_by_queue(ADMIN, parse_query({}), 1000.0, 2.0, 2) == {("sales", 0): 1, ("support", 1): 2}
    # bucket k is [1000 + k, 1001 + k): 1003 falls after the third bucket
    assert index.count_by_queue(ADMIN, parse_query({}), 1000.0, 1.0, 3) == {("sales", 1): 1, ("support", 2): 1}


@pytest.fixture(scope="module")
def big_pair():
    """3,000 recordings with many equal starts: segments of many directory blocks."""
    import random

    rnd = random.Random(3)
    recs = [rec(i + 1, start=float(rnd.randrange(500)), duration=float(rnd.randrange(120)),
                agent=rnd.choice(AGENTS), caller=rnd.choice(NUMBERS)) for i in range(3000)]
    pair = []
    for segment in (CompiledSegment, PySegment):
        index = RecordingIndex(segment, tail=10_000)
        for r in recs:
            index.add(r)
        index.add_columns(index._all()[-1].columns())  # one sealed segment of all 3,000
        index._tail = type(index._tail)()
        index._tail_segment = None
        pair.append(index)
    return pair, recs


@settings(max_examples=150, deadline=None)
@given(since=st.integers(-1, 501), span=st.integers(0, 502), order=st.sampled_from(["newest", "oldest"]),
       agent=st.sampled_from([None, "1001"]), cursor=st.none() | st.tuples(st.integers(0, 500), st.integers(0, 3001)))
def test_time_ranges_over_many_directory_blocks(big_pair, since, span, order, agent, cursor):
    (fast, pure), recs = big_pair
    spec = {"since": float(since), "until": float(since + span), "order": order, "limit": 50, "agent": agent,
            "cursor": encode_cursor(float(cursor[0]), cursor[1]) if cursor else None}
    query = parse_query(spec)
    want = oracle(recs, ADMIN, query)
    assert fast.search(ADMIN, query).ids == want == pure.search(ADMIN, query).ids
    assert fast.count(ADMIN, query) == pure.count(ADMIN, query)


# -- the one-agent fast path (compiled `Segment.search_agent`) ----------------------------------

# durations on, just below and just above the postings' duration-code edges (2 min, 10 min,
# 49 min), fractional and negative ones, and ones past the last edge (read from the row)
EDGE_DURATIONS = [-1.0, 0.0, 0.4, 1.0, 59.5, 60.0, 119.99, 120.0, 122.5, 125.0, 599.999, 600.0, 630.0, 660.0,
                  2939.5, 2940.0, 5000.0, 1e9]
EDGE_BOUNDS = [0.0, 0.5, 60.0, 60.25, 120.0, 122.5, 124.0, 600.0, 615.0, 2939.9, 2940.0, 4000.0, 1e12]


def _no_plan(principal, query):  # a fast-path search must never build a Plan
    raise AssertionError("the fast path built a Plan")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.builds(dict, start=st.floats(0, 1000, allow_nan=False),
                               duration=st.sampled_from(EDGE_DURATIONS) | st.floats(-5, 4000, allow_nan=False),
                               agent=st.sampled_from(["1001", "1001", "1002", None])), max_size=80),
       bounds=st.lists(st.sampled_from(EDGE_BOUNDS) | st.floats(0, 3000, allow_nan=False), min_size=2, max_size=2),
       which=st.sampled_from(["min", "max", "both", "none"]), since=st.none() | st.floats(0, 1000),
       order=st.sampled_from(["newest", "oldest"]), limit=st.integers(1, 30), bulk=st.booleans(),
       as_agent=st.booleans(), data=st.data())
def test_agent_fast_path_agrees_with_the_pure_plan_path(rows, bounds, which, since, order, limit, bulk, as_agent, data):
    """One agent (by filter or by the agent principal), a time and a duration range: the compiled
    fast path, whose duration filter reads the postings' 1-byte codes, gives the pure Plan path's
    page, on one sealed segment (bulk) or several plus a tail, with deleted rows."""
    deleted = set(data.draw(st.lists(st.integers(1, max(1, len(rows))), max_size=8))) if rows else set()
    fast, recs = build(rows, CompiledSegment, set(), tail=1_000 if bulk else 5)
    if bulk and recs:  # one sealed segment, as after a rebuild from the database
        fast.add_columns(fast._all()[-1].columns())
        fast._tail, fast._tail_segment = type(fast._tail)(), None
    for r in recs:  # deleted after sealing: the postings' codes must send the search to the row
        if r.id in deleted:
            assert fast.delete(r.start, r.id)
    pure, live = build(rows, PySegment, deleted)
    lo, hi = sorted(bounds)
    spec: dict = {"order": order, "limit": limit, "since": since}
    if which in ("min", "both"):
        spec["min_duration"] = lo
    if which in ("max", "both"):
        spec["max_duration"] = hi
    principal = Principal.parse("agent:1001") if as_agent else ADMIN
    if not as_agent:
        spec["agent"] = "1001"
    query = parse_query(spec)
    fast.plan = _no_plan
    page = fast.search(principal, query)
    want = oracle(live, principal, query)
    assert page.ids == want == pure.search(principal, query).ids
    everything = oracle(live, principal, parse_query({**spec, "limit": 10_000}))
    assert (page.next_cursor is not None) == (len(everything) > limit)
    if page.next_cursor is not None:  # the cursor continues where the page ended
        assert page.keys[-1][1] == want[-1]
        rest = pure.search(principal, parse_query({**spec, "limit": 10_000, "cursor": page.next_cursor})).ids
        assert want + rest == everything

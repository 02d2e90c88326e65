"""Query parsing: every field, and a clear error naming the field for what it refuses."""

from __future__ import annotations

import pytest

from ctid.recordings.query import EXACT, PREFIX, SUFFIX, NumberMatch, QueryError, encode_cursor, parse_query


def test_fields_parse():
    q = parse_query({"since": 1, "until": 2.5, "agent": "1001", "queues": ["a", "b"], "caller": "+44161*",
                     "called": "*1234", "suffix": "0123", "min_duration": 60, "max_duration": 600,
                     "direction": "inbound", "disposition": "answered", "voicemail": False, "tag": "legal",
                     "min_qa": 10, "max_qa": 90, "order": "oldest", "limit": 5, "offset": 2,
                     "cursor": encode_cursor(1.5, 7), "team": None})
    assert q.agents == ("1001",) and q.queues == ("a", "b") and q.teams == ()
    assert q.caller == NumberMatch(PREFIX, "44161") and q.called == NumberMatch(SUFFIX, "1234")
    assert parse_query({"caller": "0161"}).caller == NumberMatch(EXACT, "0161")
    assert (q.since, q.until, q.cursor, q.limit, q.offset, q.order) == (1.0, 2.5, (1.5, 7), 5, 2, "oldest")


@pytest.mark.parametrize("spec, field", [
    ({"agnet": "1001"}, "agnet"),
    ({"since": 10, "until": 5}, "since"),
    ({"min_duration": 60, "max_duration": 10}, "min_duration"),
    ({"min_qa": 9, "max_qa": 1}, "min_qa"),
    ({"min_duration": -1}, "min_duration"),
    ({"since": "yesterday"}, "since"),
    ({"since": float("nan")}, "since"),
    ({"limit": 0}, "limit"), ({"limit": 10_001}, "limit"), ({"limit": True}, "limit"),
    ({"offset": -1}, "offset"),
    ({"order": "random"}, "order"),
    ({"direction": "sideways"}, "direction"),
    ({"agent": ""}, "agent"), ({"agents": []}, "agents"), ({"agents": [1001]}, "agents"),
    ({"agent": "1", "agents": ["2"]}, "agent"),
    ({"voicemail": "yes"}, "voicemail"),
    ({"cursor": "abc"}, "cursor"), ({"cursor": "inf:3"}, "cursor"),
    ({"caller": 1234}, "caller"), ({"suffix": "12a"}, "suffix"),
    ({"caller": "1" * 19}, "caller"),
])
def test_bad_queries_name_the_field(spec, field):
    with pytest.raises(QueryError) as err:
        parse_query(spec)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")


def test_query_made_directly_refuses_unknown_fields_and_reversed_ranges():
    """The Python API (`Query(...)`, what the fast path is timed with) refuses what parse_query does
    not get to see: an unknown field, a reversed range."""
    from ctid.recordings.query import Query

    with pytest.raises(TypeError, match="no field 'agnet'"):
        Query(agnet=("1001",))
    for low, high in (("since", "until"), ("min_duration", "max_duration"), ("min_qa", "max_qa")):
        with pytest.raises(QueryError) as err:
            Query(**{low: 10.0, high: 5.0})
        assert err.value.field == low and "reversed" in str(err.value)
    q = Query(since=5.0, until=5.0, min_duration=60.0, max_qa=None, min_qa=3.0)  # equal bounds, None: fine
    assert (q.since, q.until, q.min_duration, q.max_duration, q.limit) == (5.0, 5.0, 60.0, None, 100)

"""Every query runs as a principal, and no filter widens what the principal sees."""

from __future__ import annotations

import pytest

from recordings_support import rec
from ctid.recordings import ADMIN, Principal, QueryError, RecordingIndex, parse_query


@pytest.fixture(scope="module")
def index() -> RecordingIndex:
    ix = RecordingIndex(tail=4)
    rows = [
        rec(1, agent="1001", team="sales", queue="sales", caller="01615551234"),
        rec(2, agent="1001", team="sales", queue="sales", voicemail=True, disposition="voicemail"),
        rec(3, agent="1002", team="sales", queue="sales", caller="01615559999"),
        rec(4, agent="2001", team="support", queue="support", caller="01615551234"),
        rec(5, agent=None, team=None, queue=None, caller="01615551234"),
    ]
    for r in rows:
        ix.add(r)
    return ix


def ids(index: RecordingIndex, role: str, **spec) -> list[int]:
    return sorted(index.search(Principal.parse(role), parse_query(spec)).ids)


def test_agent_sees_only_its_own_calls_and_voicemails(index):
    assert ids(index, "agent:1001") == [1, 2]
    assert ids(index, "agent:1001", voicemail=True) == [2]
    assert index.count(Principal.parse("agent:1001"), parse_query({})) == 2


@pytest.mark.parametrize("spec", [
    {}, {"agent": "1002"}, {"agents": ["1001", "1002", "2001"]}, {"team": "support"}, {"queue": "support"},
    {"caller": "0161*"}, {"suffix": "1234"}, {"since": 0.0, "until": 1e12}, {"min_duration": 0},
])
def test_no_filter_widens_an_agent(index, spec):
    got = ids(index, "agent:1001", **spec)
    assert set(got) <= {1, 2}


def test_other_agents_in_the_filter_give_nothing(index):
    assert ids(index, "agent:1001", agent="1002") == []
    assert ids(index, "agent:1001", agents=["1002", "1001"]) == [1, 2]


def test_supervisor_sees_its_teams(index):
    assert ids(index, "supervisor:sales") == [1, 2, 3]
    assert ids(index, "supervisor:sales", team="support") == []
    assert ids(index, "supervisor:sales", agent="2001") == []
    assert ids(index, "supervisor:sales,support") == [1, 2, 3, 4]
    assert ids(index, "supervisor:support", suffix="1234") == [4]


def test_auditor_admin_and_crm_see_all(index):
    for role in ("auditor", "admin", "crm"):
        assert ids(index, role) == [1, 2, 3, 4, 5]
    assert index.count_by_queue(Principal.parse("agent:2001"), parse_query({}), 0, 1e6, 1) == {("support", 0): 1}


@pytest.mark.parametrize("number", ["*", "**", "0161*1234", "%", "01_61", "*12*", "", "+"])
def test_wildcard_numbers_are_refused(number):
    for field in ("caller", "called"):
        with pytest.raises(QueryError) as err:
            parse_query({field: number})
        assert err.value.field == field
    with pytest.raises(QueryError):
        parse_query({"suffix": number})


@pytest.mark.parametrize("role", ["agent", "agent:", "supervisor", "root", "admin:x", "auditor:1", 7, "agent:1,2"])
def test_bad_principals_are_refused(role):
    with pytest.raises(QueryError) as err:
        Principal.parse(role)
    assert err.value.field == "principal"


def test_the_index_has_no_query_without_a_principal(index):
    with pytest.raises(TypeError):
        index.search(parse_query({}))  # type: ignore[call-arg]
    assert ids(index, "admin") == sorted(index.search(ADMIN, parse_query({})).ids)

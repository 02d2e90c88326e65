"""The ACD matcher: the pure-Python spec (PyMatcher) and its compiled twin (ctid._fast.matcher).

Every rule test runs on both. The property test drives both with random operation sequences
and requires the same decisions, explanations, errors and final indexes. Tests of the compiled
matcher skip when the extension was not built (CTID_REQUIRE_COMPILED=1 makes that a failure).
CTID_HYPOTHESIS_EXAMPLES scales the property test (default 400 -> 1,000 sequences here).
"""

from __future__ import annotations

import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ctid.acd as acd
from ctid.acd import MatchError, PyMatcher, Step, requirement_at
from ctid.acd.model import STATES, STRATEGIES

try:
    from ctid._fast.matcher import Matcher as CMatcher
except ImportError as exc:  # no C compiler when the package was built
    CMatcher = None
    _NOT_BUILT = f"the compiled matcher ctid._fast.matcher is not built ({exc})"
else:
    _NOT_BUILT = ""

EXAMPLES = int(os.environ.get("CTID_HYPOTHESIS_EXAMPLES", "400")) * 5 // 2  # 34 s at x5 here, 53-99 s under load
needs_compiled = pytest.mark.skipif(CMatcher is None, reason=_NOT_BUILT or "built")
IMPLS = [pytest.param(PyMatcher, id="pure"), pytest.param(CMatcher, id="compiled", marks=needs_compiled)]


def test_compiled_matcher_is_selected():
    if CMatcher is None:
        if os.environ.get("CTID_REQUIRE_COMPILED"):
            pytest.fail(f"CTID_REQUIRE_COMPILED is set but {_NOT_BUILT}")
        pytest.skip(_NOT_BUILT)
    assert acd.COMPILED is True and acd.Matcher is CMatcher


def center(cls, strategy="longest_idle", **queue):
    """One queue `q` and agents a1..a4 (registered in that order), all logged out."""
    m = cls()
    m.add_queue("q", strategy, **queue)
    m.add_agent("a1", {"en": 5}, {"q": 0})
    m.add_agent("a2", {"en": 9, "fr": 4}, {"q": 0})
    m.add_agent("a3", {"en": 7, "fr": 8}, {"q": 0})
    m.add_agent("a4", {"fr": 10}, {"q": 0})
    return m


def ready(m, *agents, at=0.0):
    for i, agent in enumerate(agents):
        assert m.agent_ready(agent, at + i) is None


# -- agent selection: strategies, tiers, skills ----------------------------------------


@pytest.mark.parametrize("cls", IMPLS)
def test_longest_idle_and_requirement(cls):
    m = center(cls)
    ready(m, "a3", "a1", "a2")  # a3 idle longest
    assert m.offer("c1", "q", {"en": 6}, 0, 10.0) == "a3"
    assert m.explain() == {"op": "offer", "winner": "a3", "considered": 1, "queue": "q", "tier": 0,
                           "rule": "longest_idle", "step": 0}
    assert m.offer("c2", "q", {"en": 6}, 0, 10.0) == "a2"  # a1 (en 5) does not qualify
    assert m.explain()["considered"] == 2
    assert m.offer("c3", "q", {"en": 6}, 0, 10.0) is None  # waits
    assert m.waiting_calls("q") == ["c3"] and m.agent_state("a2") == ("busy", None, "c2")


@pytest.mark.parametrize("cls", IMPLS)
def test_ties_break_by_registration_order(cls):
    m = center(cls)
    for agent in ("a4", "a2", "a1"):
        m.agent_ready(agent, 5.0)  # same idle time
    assert [m.offer(f"c{i}", "q", {}, 0, 6.0) for i in range(3)] == ["a1", "a2", "a4"]


@pytest.mark.parametrize("cls", IMPLS)
def test_round_robin_memory(cls):
    m = center(cls, "round_robin")
    ready(m, "a4", "a3", "a2", "a1")
    picks = []
    for i in range(6):
        agent = m.offer(f"c{i}", "q", {}, 0, 10.0 + i)
        picks.append(agent)
        m.call_ended(agent, 10.5 + i, acw=False)
        m.agent_ready(agent, 10.5 + i)
    assert picks == ["a1", "a2", "a3", "a4", "a1", "a2"]  # stable order, after the last chosen
    assert m.offer("x", "q", {"fr": 5}, 0, 20.0) == "a3"  # next after a2 that qualifies
    assert m.offer("y", "q", {"fr": 5}, 0, 20.0) == "a4"


@pytest.mark.parametrize("cls", IMPLS)
def test_fewest_calls_and_least_occupied(cls):
    m = center(cls, "fewest_calls")
    ready(m, "a1", "a2", "a3")
    m.set_stats("a1", calls_today=7)
    m.set_stats("a2", calls_today=3)
    m.set_stats("a3", calls_today=3)
    assert m.offer("c1", "q", {}, 0, 9.0) == "a2"  # 3 calls, idle longer than a3
    assert m.offer("c2", "q", {}, 0, 9.0) == "a3"
    m2 = center(cls, "least_occupied")
    ready(m2, "a1", "a2", "a3")
    m2.set_stats("a1", occupancy=0.9)
    m2.set_stats("a2", occupancy=0.4)
    m2.set_stats("a3", occupancy=0.2)
    assert m2.offer("c1", "q", {"en": 6}, 0, 9.0) == "a3"
    assert m2.explain()["rule"] == "least_occupied"


@pytest.mark.parametrize("cls", IMPLS)
def test_best_skill_sums_required_levels(cls):
    m = center(cls, "best_skill")
    ready(m, "a1", "a2", "a3", "a4")
    assert m.offer("c1", "q", {"en": 1, "fr": 1}, 0, 9.0) == "a3"  # 7+8 beats 9+4
    assert m.explain()["considered"] == 4  # the whole tier is read
    assert m.offer("c2", "q", {"en": 5}, 0, 9.0) == "a2"  # 9 beats 5
    assert m.offer("c3", "q", {}, 0, 9.0) == "a1"  # no requirement: all score 0, longest idle


@pytest.mark.parametrize("cls", IMPLS)
def test_lowest_penalty_tier_with_a_qualifying_agent(cls):
    m = cls()
    m.add_queue("q")
    m.add_agent("senior", {"en": 9}, {"q": 2})
    m.add_agent("junior", {"en": 3}, {"q": 0})
    m.add_agent("mid", {"en": 6}, {"q": 1})
    ready(m, "senior", "mid", "junior")
    assert m.ready_agents("q") == [(0, "junior"), (1, "mid"), (2, "senior")]
    assert m.offer("c1", "q", {"en": 2}, 0, 5.0) == "junior"
    assert m.offer("c2", "q", {"en": 5}, 0, 5.0) == "mid"  # tier 0 has nobody qualifying
    assert m.explain() == {"op": "offer", "winner": "mid", "considered": 1, "queue": "q", "tier": 1,
                           "rule": "longest_idle", "step": 0}


# -- call selection: priority, wait x weight -------------------------------------------


@pytest.mark.parametrize("cls", IMPLS)
def test_agent_ready_priority_then_weighted_wait(cls):
    m = cls()
    m.add_queue("slow", weight=1.0)
    m.add_queue("fast", weight=3.0)
    m.add_agent("a", {"en": 5}, {"slow": 0, "fast": 0})
    assert m.offer("old", "slow", {}, 0, 0.0) is None
    assert m.offer("new", "fast", {}, 0, 6.0) is None
    assert m.offer("skilled", "slow", {"en": 8}, 5, 7.0) is None  # high priority, a can't take it
    assert m.agent_ready("a", 10.0) == "new"  # 4 s x 3 = 12 beats 10 s x 1
    assert m.explain() == {"op": "agent_ready", "winner": "new", "considered": 3, "queue": "fast", "tier": 0,
                           "rule": "priority_wait", "step": 0}
    m.call_ended("a", 11.0, acw=False)
    assert m.offer("vip", "slow", {}, 2, 11.0) is None
    assert m.agent_ready("a", 12.0) == "vip"  # priority first
    m.call_ended("a", 13.0, acw=False)
    assert m.agent_ready("a", 14.0) == "old"
    assert m.waiting_calls("slow") == ["skilled"]


# -- escalation ---------------------------------------------------------------------------


STEPS = (Step(10, relax=2), Step(20, drop=("fr",), add={"de": 1}), Step(30, overflow="backup"))


def test_requirement_at_is_cumulative():
    base = {"en": 8, "fr": 2}
    assert requirement_at(base, STEPS, 100.0, 105.0) == ({"en": 8, "fr": 2}, (), 0)
    assert requirement_at(base, STEPS, 100.0, 110.0) == ({"en": 6, "fr": 1}, (), 1)
    assert requirement_at(base, STEPS, 100.0, 125.0) == ({"en": 6, "de": 1}, (), 2)
    assert requirement_at(base, STEPS, 100.0, 130.0) == ({"en": 6, "de": 1}, ("backup",), 3)


@pytest.mark.parametrize("cls", IMPLS)
def test_escalation_relaxes_and_overflows(cls):
    m = cls()
    for skill in ("de", "fr"):
        m.add_skill(skill)
    m.add_queue("backup")
    m.add_queue("q", steps=STEPS)
    m.add_agent("en6", {"en": 6, "fr": 1}, {"q": 0})
    m.add_agent("en6de", {"en": 6, "de": 3}, {"q": 0})
    m.add_agent("spare", {"en": 1, "de": 1}, {"backup": 0})
    assert m.agent_ready("en6", 0.0) is None
    assert m.offer("c1", "q", {"en": 8, "fr": 2}, 0, 100.0) is None
    assert m.requirement("c1", 112.0) == {"en": 6, "fr": 1}
    assert m.tick(109.0) == []
    assert m.tick(111.0) == [("c1", "en6")]  # matched when the step applied, at 110
    assert m.explain()["step"] == 1 and m.explain()["op"] == "tick"
    assert m.offer("c2", "q", {"en": 8, "fr": 2}, 0, 200.0) is None
    assert m.agent_ready("en6de", 215.0) is None  # step 1 applies, but it lacks fr
    assert m.agent_ready("spare", 216.0) is None  # backup: not open to c2 before 230
    assert m.waiting_calls("backup") == ["c2"]
    assert m.tick(240.0) == [("c2", "en6de")]  # at 220: fr dropped, de 1 added
    assert m.offer("c3", "q", {"en": 3}, 0, 300.0) is None  # q's agents are busy
    assert m.tick(331.0) == [("c3", "spare")]  # overflow at 330 to backup's agents (en 1, de 1 by then)
    assert m.explain()["queue"] == "backup"


# -- after-call work -----------------------------------------------------------------------


@pytest.mark.parametrize("cls", IMPLS)
def test_acw_then_auto_ready_or_stay_not_ready(cls):
    m = center(cls, wrapup=30.0)
    ready(m, "a1", "a2")
    assert m.offer("c1", "q", {}, 0, 10.0) == "a1"
    assert m.offer("c2", "q", {}, 0, 10.0) == "a2"
    assert m.call_ended("a1", 20.0) is None
    assert m.agent_state("a1") == ("acw", None, None)
    assert m.call_ended("a2", 20.0, acw=False) is None
    assert m.agent_state("a2") == ("not_ready", None, None)
    assert m.offer("c3", "q", {}, 0, 30.0) is None
    assert m.tick(49.0) == []
    assert m.tick(50.0) == [("c3", "a1")]
    assert m.call_ended("a1", 60.0) is None
    m.set_state("a1", "not_ready", 61.0, reason="lunch")  # cancels the pending ACW end
    assert m.tick(1000.0) == [] and m.agent_state("a1") == ("not_ready", "lunch", None)
    assert m.agent_state("a2") == ("not_ready", None, None)


@pytest.mark.parametrize("cls", IMPLS)
def test_zero_wrapup_is_ready_at_once(cls):
    m = center(cls)
    ready(m, "a1")
    assert m.offer("c1", "q", {}, 0, 1.0) == "a1"
    assert m.offer("c2", "q", {}, 0, 2.0) is None
    assert m.call_ended("a1", 3.0) == "c2"


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", IMPLS)
def test_errors_have_codes_and_change_nothing(cls):
    m = center(cls)
    ready(m, "a1")

    def code(fn, *args, **kw):
        with pytest.raises(MatchError) as info:
            fn(*args, **kw)
        return info.value.code

    assert code(m.add_queue, "q") == "duplicate_queue"
    assert code(m.add_queue, "r", "random") == "unknown_strategy"
    assert code(m.add_queue, "r", weight=0) == "bad_value"
    assert code(m.add_queue, "r", steps=(Step(5), Step(1))) == "bad_value"
    assert code(m.add_queue, "r", steps=(Step(5, overflow="nowhere"),)) == "unknown_queue"
    assert code(m.add_queue, "r", steps=(Step(5, drop=("klingon",)),)) == "unknown_skill"
    assert code(m.add_agent, "a1", {}, {}) == "duplicate_agent"
    assert code(m.add_agent, "a9", {"en": 11}, {}) == "bad_value"
    assert code(m.add_agent, "a9", {"en": 1}, {"nowhere": 0}) == "unknown_queue"
    assert code(m.add_agent, "a9", {"xx": 1}, {"q": -1}) == "bad_value"
    assert code(m.offer, "c", "q", {"klingon": 1}, 0, 1.0) == "unknown_skill"
    assert code(m.offer, "c", "nowhere", {}, 0, 1.0) == "unknown_queue"
    assert code(m.offer, "c", "q", {"en": 0}, 0, 1.0) == "bad_value"
    assert code(m.offer, "c", "q", {}, 10**12, 1.0) == "bad_value"
    assert code(m.offer, "c", "q", {}, 0, math.nan) == "bad_value"
    assert code(m.agent_ready, "a1", 2.0) == "bad_transition"  # already ready
    assert code(m.agent_ready, "zz", 2.0) == "unknown_agent"
    assert code(m.set_state, "a1", "dancing", 2.0) == "unknown_state"
    assert code(m.set_state, "a1", "acw", 2.0) == "bad_transition"
    assert code(m.set_state, "a2", "busy", 2.0) == "bad_transition"  # logged out
    assert code(m.call_ended, "a1", 2.0) == "bad_transition"  # not busy
    assert code(m.remove_call, "nope") == "unknown_call"
    assert code(m.set_stats, "a1", occupancy=math.inf) == "bad_value"
    assert m.offer("c", "q", {}, 0, 3.0) == "a1"
    assert code(m.offer, "c", "q", {}, 0, 3.0) == "duplicate_call"  # still with a1
    assert code(m.remove_call, "c") == "bad_transition"
    assert code(m.set_state, "a1", "logged_out", 4.0) == "bad_transition"  # busy
    assert m.ready_agents("q") == [] and m.waiting_calls("q") == []
    assert m.call_ended("a1", 5.0) is None and m.offer("c", "q", {}, 0, 6.0) == "a1"  # id free again


# -- the twins agree: random operation sequences ---------------------------------------


AGENTS = [f"a{i}" for i in range(6)] + ["ghost"]
QUEUES = ["q0", "q1", "q2", "nowhere"]
SKILLS = ["s0", "s1", "s2", "s3"]
CALLS = [f"c{i}" for i in range(8)]
levels = st.integers(1, 10)


@st.composite
def setups(draw):
    queues = []
    for i in range(3):
        steps, after = [], 0.0
        for _ in range(draw(st.integers(0, 3))):
            after += draw(st.sampled_from([0.0, 1.0, 2.5, 4.0]))
            overflow = draw(st.sampled_from([None] + QUEUES[:i]))
            steps.append(Step(after, draw(st.integers(0, 3)), tuple(draw(st.sets(st.sampled_from(SKILLS), max_size=2))),
                              draw(st.dictionaries(st.sampled_from(SKILLS), levels, max_size=1)), overflow))
        queues.append((f"q{i}", draw(st.sampled_from(STRATEGIES)), draw(st.sampled_from([1.0, 0.5, 3.0])),
                       draw(st.sampled_from([0.0, 0.0, 1.5, 4.0])), tuple(steps)))
    agents = [(f"a{i}", draw(st.dictionaries(st.sampled_from(SKILLS), levels, max_size=3)),
               draw(st.dictionaries(st.sampled_from(QUEUES[:3]), st.integers(0, 2), min_size=1, max_size=3)))
              for i in range(6)]
    return queues, agents


ops = st.one_of(
    st.tuples(st.just("offer"), st.sampled_from(CALLS), st.sampled_from(QUEUES),
              st.dictionaries(st.sampled_from(SKILLS + ["zz"]), st.integers(0, 10), max_size=2), st.integers(-1, 3)),
    st.tuples(st.just("agent_ready"), st.sampled_from(AGENTS)),
    st.tuples(st.just("set_state"), st.sampled_from(AGENTS), st.sampled_from(STATES + ("bogus",)), st.sampled_from([None, "break"])),
    st.tuples(st.just("call_ended"), st.sampled_from(AGENTS), st.booleans()),
    st.tuples(st.just("remove_call"), st.sampled_from(CALLS)),
    st.tuples(st.just("tick")),
    st.tuples(st.just("set_stats"), st.sampled_from(AGENTS), st.one_of(st.none(), st.integers(-1, 5)),
              st.one_of(st.none(), st.sampled_from([0.0, 0.5, 0.25, -1.0]))),
)
steps_in_time = st.lists(st.tuples(ops, st.sampled_from([0.0, 0.0, 0.5, 1.0, 3.0])), max_size=60)


def run(cls, setup, script):
    queues, agents = setup
    m = cls()
    for skill in SKILLS:
        m.add_skill(skill)
    for name, strategy, weight, wrapup, steps in queues:
        m.add_queue(name, strategy, weight, wrapup, steps)
    for agent, skills, memberships in agents:
        m.add_agent(agent, skills, memberships)
    trace, now = [], 0.0
    for op, dt in script:
        now += dt
        try:
            result = apply(m, op, now)
        except MatchError as exc:
            result = ("error", exc.code)
        trace.append((op[0], result, m.explain()))
    final = ([(q, m.ready_agents(q), m.waiting_calls(q)) for q in QUEUES[:3]],
             [m.agent_state(a) for a in AGENTS[:6]],
             {c: m.requirement(c, now) for c in CALLS if _known(m, c)})
    return trace, final


def apply(m, op: tuple, now: float):
    name = op[0]
    if name == "offer":
        return m.offer(op[1], op[2], op[3], op[4], now)
    if name == "agent_ready":
        return m.agent_ready(op[1], now)
    if name == "set_state":
        return m.set_state(op[1], op[2], now, op[3])
    if name == "call_ended":
        return m.call_ended(op[1], now, op[2])
    if name == "remove_call":
        return m.remove_call(op[1])
    if name == "tick":
        return m.tick(now)
    return m.set_stats(op[1], calls_today=op[2], occupancy=op[3])


def _known(m, call) -> bool:
    try:
        m.requirement(call, 0.0)
    except MatchError:
        return False
    return True


@needs_compiled
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setups(), steps_in_time)
def test_compiled_equals_pure(setup, script):
    assert run(CMatcher, setup, script) == run(PyMatcher, setup, script)


@pytest.mark.parametrize("cls", IMPLS)
def test_deterministic(cls):
    setup = ([("q0", "round_robin", 1.0, 1.5, (Step(1.0, 1),)), ("q1", "best_skill", 3.0, 0.0, ()),
              ("q2", "fewest_calls", 0.5, 4.0, (Step(2.5, overflow="q0"),))],
             [(f"a{i}", {"s0": 1 + i, "s1": 10 - i}, {"q0": i % 2, "q1": 0, "q2": 1}) for i in range(6)])
    script = [(("offer", f"c{i}", QUEUES[i % 3], {"s0": 1 + i % 4}, i % 3), 0.5) for i in range(8)]
    script += [(("agent_ready", a), 0.5) for a in AGENTS[:6]] + [(("tick",), 3.0)]
    script += [(("call_ended", a, True), 0.5) for a in AGENTS[:6]] + [(("tick",), 10.0)]
    first = run(cls, setup, script)
    assert first == run(cls, setup, script)
    assert any(result not in (None, []) for _, result, _ in first[0])  # decisions were made

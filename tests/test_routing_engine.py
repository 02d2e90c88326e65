"""The routing engine (ctid/acd/engine.py) on rules read from TOML the way a site writes them:
strategies through the engine, escalation, max wait and fallbacks, VIP and blacklist, ACW,
the plugin veto, bad input (error published and counted, call to its fallback), determinism."""

from __future__ import annotations

import tomllib

import pytest

from ctid.acd import PyMatcher
from ctid.acd.decision import RouteRequest
from ctid.acd.engine import RoutingEngine
from ctid.acd.rules import parse_routing
from ctid.metrics import Counters

RULES = """
[routing]
skills = ["english", "french", "billing"]
blacklist = ["+15550000666"]
reject = "announcement:not-welcome"
fallback = "voicemail:general"

[routing.vip."+442079460000"]
boost = 100

[routing.vip."+442079460001"]
queue = "gold"

[[routing.queue]]
name = "support"
skills = { english = 5 }
max_wait = 60
fallback = "queue:sales"

[[routing.queue]]
name = "sales"
strategy = "fewest_calls"
wrapup = 30
max_wait = 120
fallback = "callback"
steps = [ { after = 10, relax = 5 }, { after = 20, overflow = "support" } ]

[[routing.queue]]
name = "gold"

[[routing.agent]]
id = "1001"
device = "PJSIP/1001"
skills = { english = 9, french = 3 }
queues = { sales = 0, support = 0, gold = 0 }

[[routing.agent]]
id = "1002"
device = "PJSIP/1002"
skills = { english = 6, billing = 7 }
queues = { sales = 1, support = 0 }
"""


class Harness:
    """An engine with its published events and an agent-state table standing in for State."""

    def __init__(self, text: str = RULES, matcher_cls=None, hook=None) -> None:
        errors: list[str] = []
        self.rules = parse_routing(tomllib.loads(text)["routing"], errors)
        assert errors == []
        self.events: list[dict] = []
        self.later: list = []
        self.states: dict[str, str] = {}
        self.counters = Counters()
        kwargs = {"matcher_cls": matcher_cls} if matcher_cls else {}
        self.engine = RoutingEngine(self.rules, self.events.append, self.counters, route_hook=hook,
                                    agent_state=self.states.get, **kwargs)
        self.engine.listen(self.later.append)

    def agent(self, agent: str, state: str, ts: float) -> None:
        self.states[agent] = state
        etype = {"ready": "agent.ready", "not_ready": "agent.not_ready", "logged_off": "agent.logged_off"}[state]
        self.engine.observe({"type": etype, "agent": agent, "ts": ts})

    def call(self, call_id: str, queue: str, ts: float, caller: str | None = None, **kw):
        return self.engine.route(RouteRequest(call_id, queue, caller, **kw), now=ts)

    def cleared(self, call_id: str, agent: str | None, ts: float) -> None:
        self.engine.observe({"type": "call.cleared", "call_id": call_id, "agent": agent, "ts": ts})

    def of(self, etype: str) -> list[dict]:
        return [e for e in self.events if e["type"] == etype]


def test_a_ready_agent_is_chosen_and_the_decision_is_explained():
    h = Harness()
    h.agent("1002", "ready", 1.0)
    h.agent("1001", "ready", 2.0)
    d = h.call("c1", "support", 5.0, caller="+12025550100")
    # Both in tier 0 of support, both qualify: longest idle wins (1002 ready since 1.0).
    assert (d.action, d.agent, d.device, d.queue) == ("agent", "1002", "PJSIP/1002", "support")
    selected = h.of("route.selected")[0]
    assert selected["strategy"] == "longest_idle" and selected["tier"] == 0 and selected["step"] == 0
    assert selected["considered"] == 1 and "longest_idle" in selected["reason"]
    assert h.of("route.request")[0]["caller"] == "+12025550100"
    assert h.counters.get("routing.requests") == 1 and h.counters.get("routing.selected") == 1


def test_fewest_calls_and_tiers_through_the_engine():
    h = Harness()
    h.agent("1001", "ready", 1.0)
    h.agent("1002", "ready", 2.0)
    # sales: 1001 is tier 0, 1002 tier 1 -> 1001 first even though both qualify.
    assert h.call("s1", "sales", 3.0).agent == "1001"
    assert h.call("s2", "sales", 3.5).agent == "1002"
    assert h.of("route.selected")[1]["tier"] == 1


def test_a_waiting_call_goes_to_the_agent_who_becomes_ready_and_the_route_point_hears_it():
    h = Harness()
    assert h.call("c1", "support", 1.0).action == "wait"
    assert h.of("route.queued")[0]["call_id"] == "c1"
    h.agent("1001", "ready", 4.0)
    assert [(d.call_id, d.agent, d.wait) for d in h.later] == [("c1", "1001", 3.0)]
    assert h.of("route.selected")[0]["direction"] == "agent_ready"


def test_escalation_relaxes_then_overflows_and_max_wait_falls_back():
    h = Harness()
    h.agent("1002", "ready", 0.0)  # english 6: not enough for french 8 ...
    assert h.call("f1", "sales", 1.0, skills={"french": 8}).action == "wait"
    h.engine.tick(10.9)
    assert h.later == []
    h.engine.tick(11.0)  # ... step 1 relaxes 8 -> 3: still no french at all for 1002
    assert h.later == []
    h.agent("1001", "ready", 12.0)  # french 3 qualifies after the relax step
    assert [(d.call_id, d.agent) for d in h.later] == [("f1", "1001")]
    assert h.of("route.selected")[-1]["step"] == 1
    # A call nobody can take: after max_wait (120 s) it goes to sales' fallback, callback.
    h.cleared("f1", "1001", 13.0)
    assert h.call("f2", "sales", 20.0, skills={"french": 10}).action == "wait"  # relaxed: 5, nobody
    h.engine.tick(139.0)
    assert h.of("route.fallback") == []
    h.engine.tick(140.0)
    last = h.later[-1]
    assert (last.call_id, last.action, last.target, last.reason) == ("f2", "fallback", "callback", "max_wait")
    assert h.counters.get("routing.max_wait") == 1


def test_max_wait_into_a_fallback_queue_and_its_own_max_wait_to_the_last_resort():
    h = Harness()
    assert h.call("c1", "support", 0.0, skills={"billing": 9}).action == "wait"
    h.engine.tick(60.0)  # support -> queue:sales, asked with sales' own requirement (none)
    assert [e["target"] for e in h.of("route.fallback")] == ["queue:sales"]
    h.agent("1002", "ready", 61.0)
    assert (h.later[-1].call_id, h.later[-1].agent, h.later[-1].queue) == ("c1", "1002", "sales")


def test_vip_boost_jumps_the_line_and_vip_queue_goes_to_the_team():
    h = Harness()
    h.call("n1", "support", 1.0, caller="+12025550100")
    h.call("v1", "support", 2.0, caller="+442079460000")
    h.agent("1002", "ready", 3.0)
    assert h.later[-1].call_id == "v1"  # priority 100 beats a longer wait
    h.engine.observe({"type": "call.abandoned", "call_id": "n1", "ts": 3.5})
    d = h.call("v2", "support", 4.0, caller="+442079460001")
    assert d.action == "wait" and d.queue == "gold"
    h.agent("1001", "ready", 5.0)
    assert (h.later[-1].call_id, h.later[-1].queue) == ("v2", "gold")
    assert h.counters.get("routing.vip") == 2


def test_blacklisted_caller_is_rejected_counted_and_loses_nothing_else():
    h = Harness()
    h.agent("1001", "ready", 0.0)
    d = h.call("b1", "support", 1.0, caller="+15550000666")
    assert (d.action, d.target) == ("reject", "announcement:not-welcome")
    assert h.counters.get("routing.rejected") == 1 and h.of("route.rejected")[0]["caller"] == "+15550000666"
    assert h.call("ok", "support", 2.0, caller="+12025550100").agent == "1001"


def test_after_call_work_then_ready_or_not_ready_if_the_agent_asked():
    h = Harness()
    h.agent("1001", "ready", 0.0)
    assert h.call("s1", "sales", 1.0).agent == "1001"
    h.cleared("s1", "1001", 10.0)  # sales: 30 s wrap-up
    assert h.engine.matcher.agent_state("1001")[0] == "acw"
    assert h.call("s2", "sales", 11.0, skills={"french": 1}).action == "wait"
    h.engine.tick(39.9)
    assert h.later == []
    h.engine.tick(40.0)
    assert [(d.call_id, d.agent) for d in h.later] == [("s2", "1001")]
    h.agent("1001", "not_ready", 41.0)  # asked for while busy: no ACW, stays not ready
    h.cleared("s2", "1001", 50.0)
    assert h.engine.matcher.agent_state("1001")[0] == "not_ready"


def test_least_occupied_picks_the_smallest_share_of_time_on_calls_not_the_longest_idle():
    h = Harness("""
[routing]
[[routing.queue]]
name = "q"
strategy = "least_occupied"
[[routing.agent]]
id = "1001"
device = "PJSIP/1001"
queues = { q = 0 }
[[routing.agent]]
id = "1002"
device = "PJSIP/1002"
queues = { q = 0 }
""")
    h.agent("1001", "ready", 0.0)
    h.agent("1002", "ready", 0.0)
    assert h.call("c1", "q", 1.0).agent == "1001"  # both 0 %: registration order
    h.cleared("c1", "1001", 60.0)  # 59 s of 60 on calls
    assert h.call("c2", "q", 65.0).agent == "1002"  # 0 %
    h.cleared("c2", "1002", 70.0)  # 5 s of 70
    # 1001 has been idle longer (since 60, not 70), but 1002 is far less occupied.
    assert h.call("c3", "q", 80.0).agent == "1002"
    assert h.of("route.selected")[-1]["strategy"] == "least_occupied"


def test_calls_the_pbx_connects_outside_ctid_make_the_agent_busy_until_they_clear():
    h = Harness()
    h.agent("1001", "ready", 0.0)
    h.engine.observe({"type": "call.established", "call_id": "direct", "agent": "1001", "ts": 1.0})
    assert h.call("c1", "support", 2.0, skills={"french": 1}).action == "wait"
    h.cleared("direct", "1001", 5.0)
    assert [(d.call_id, d.agent) for d in h.later] == [("c1", "1001")]


def test_a_call_lost_on_its_way_to_the_agent_gives_the_agent_back():
    h = Harness()
    h.agent("1001", "ready", 0.0)
    assert h.call("c1", "support", 1.0).agent == "1001"
    assert h.engine.leave("c1", 2.0)  # the caller hung up before the route point could connect
    assert h.engine.matcher.agent_state("1001") == ("ready", None, None)
    assert h.call("c2", "support", 3.0).agent == "1001"
    assert not h.engine.leave("nobody", 4.0)


def test_an_agent_in_two_states_is_an_error_and_the_routed_call_is_kept():
    h = Harness()
    h.agent("1001", "ready", 0.0)
    assert h.call("c1", "support", 1.0).agent == "1001"
    # The PBX says 1001 answered another call while ctid has c1 on its way to 1001.
    h.engine.observe({"type": "call.established", "call_id": "other", "agent": "1001", "ts": 2.0})
    err = h.of("route.error")[-1]
    assert err["code"] == "bad_transition" and err["agent"] == "1001" and "other" in err["detail"]
    assert h.counters.get("routing.errors.bad_transition") == 1
    assert h.engine.matcher.agent_state("1001") == ("busy", None, "c1")
    h.cleared("c1", "1001", 3.0)  # and c1 still frees the agent when it clears
    assert h.engine.matcher.agent_state("1001")[0] == "ready"


def test_an_abandoned_waiting_call_leaves_the_queue():
    h = Harness()
    h.call("c1", "support", 1.0)
    h.engine.observe({"type": "call.abandoned", "call_id": "c1", "queue": "support", "ts": 2.0})
    h.agent("1001", "ready", 3.0)
    assert h.later == [] and h.counters.get("routing.abandoned") == 1


@pytest.mark.parametrize("queue,kw,code,target", [
    ("nowhere", {}, "unknown_queue", "voicemail:general"),  # no queue: the routing-wide fallback
    ("sales", {"skills": {"klingon": 3}}, "unknown_skill", "callback"),  # the queue's own fallback
    ("sales", {"skills": {"english": 11}}, "bad_value", "callback"),
])
def test_bad_requests_are_errors_published_counted_and_the_call_goes_to_its_fallback(queue, kw, code, target):
    h = Harness()
    h.agent("1001", "ready", 0.0)
    d = h.call("x1", queue, 1.0, **kw)
    assert (d.action, d.target) == ("fallback", target)
    assert code in d.reason
    err = h.of("route.error")[0]
    assert err["code"] == code and err["call_id"] == "x1" and err["detail"]
    assert h.counters.get(f"routing.errors.{code}") == 1
    assert h.call("x2", "support", 2.0).agent == "1001"  # nothing else lost


def test_a_second_request_for_a_call_is_an_error_and_the_call_is_not_stuck():
    h = Harness()
    h.call("c1", "support", 1.0)
    d = h.call("c1", "support", 2.0)
    # support's fallback is queue:sales, where it waits again (and sales' max wait still applies).
    assert d.action == "wait" and d.queue == "sales"
    assert h.of("route.error")[0]["code"] == "already_routed"
    h.agent("1002", "ready", 3.0)
    assert [(x.call_id, x.queue) for x in h.later] == [("c1", "sales")]
    d = h.call("c1", "support", 4.0)  # with an agent now: the last resort, the agent keeps it
    assert (d.action, d.target) == ("fallback", "voicemail:general")
    assert h.engine.matcher.agent_state("1002") == ("busy", None, "c1")


def test_a_plugin_veto_sends_the_call_to_its_fallback_and_frees_the_agent():
    def hook(request, decision):
        return {"veto": True, "reason": "no"} if request["caller"] == "+4900" else decision

    h = Harness(hook=hook)
    h.agent("1001", "ready", 0.0)
    d = h.call("c1", "sales", 1.0, caller="+4900")
    assert (d.action, d.target, d.reason) == ("fallback", "callback", "vetoed: no")
    assert h.counters.get("routing.vetoes") == 1
    assert h.call("c2", "sales", 2.0).agent == "1001"


def test_config_errors_name_their_key_path():
    bad = """
    skills = ["english"]
    fallback = "queue:sales"
    [[queue]]
    name = "a"
    strategy = "random"
    fallback = "queue:nope"
    steps = [ { after = 5, overflow = "b" } ]
    [[queue]]
    name = "b"
    steps = [ { after = 5, overflow = "a" } ]
    [[agent]]
    id = "1"
    device = "SIP/1"
    skills = { klingon = 3, english = 12 }
    queues = { c = 0 }
    """
    errors: list[str] = []
    parse_routing(tomllib.loads(bad), errors)
    text = "\n".join(errors)
    for expected in ("routing.fallback: the default fallback must not be a queue",
                     "routing.queue[0].strategy: 'random'", "routing.queue[0].fallback: queue 'nope' does not exist",
                     "routing.agent[0].skills.klingon: unknown skill", "routing.agent[0].skills.english: level",
                     "routing.agent[0].queues.c: unknown queue"):
        assert expected in text
    errors = []
    parse_routing(tomllib.loads('[[queue]]\nname = "a"\nsteps = [{after = 1, overflow = "b"}]\n'
                                '[[queue]]\nname = "b"\nsteps = [{after = 1, overflow = "a"}]\n'), errors)
    assert errors == ["routing: bad_value: overflow steps go round in a circle through queue 'a'"]


def script(h: Harness) -> list[tuple]:
    """A fixed sequence of everything: the decisions must not depend on anything else."""
    out = []
    for i, (agent, t) in enumerate([("1001", 0.0), ("1002", 0.5)]):
        h.agent(agent, "ready", t)
    for i in range(12):
        queue = ("support", "sales", "gold")[i % 3]
        d = h.call(f"c{i}", queue, 1.0 + i, caller=("+442079460000" if i % 4 == 0 else None))
        out.append((d.call_id, d.action, d.agent, d.queue))
        if d.agent:
            h.cleared(d.call_id, d.agent, 1.5 + i)
        h.engine.tick(2.0 + i * 7)
    return out + [(d.call_id, d.action, d.agent, d.queue, d.target) for d in h.later]


def test_same_events_same_decisions_compiled_and_pure():
    a, b, c = script(Harness()), script(Harness()), script(Harness(matcher_cls=PyMatcher))
    assert a == b == c
    assert {x[1] for x in a} >= {"agent", "wait"}

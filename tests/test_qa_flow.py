"""QA on the hand-built hour of tests/reporting_support.py: sampling, evaluations, versions,
acknowledge/dispute, calibration and reports, on a real SQLite file.

Candidates for sampling (answered by an agent, CDR intact): c1 (a1, sales, talk 100, caller 111),
c2 (a2, sales, 200, one transfer), c5 (a3, vip, 300, caller 111 again), c6 (a3, vip, 60),
c9 (a1, outbound, 50) and t1 (a2, sales, 5 s, tagged complaint). c12-c14 are bad rows: never picked.
"""

from __future__ import annotations

import pytest

from ctid_plugins.qa import calibration, evaluations
from ctid_plugins.qa.config import Options
from ctid_plugins.qa.evaluations import EvaluationError, NotFound
from ctid_plugins.qa.reports import average_by_agent
from ctid_plugins.qa.service import QaService
from qa_support import CARD, qa_options
from reporting_support import HOUR, NOW, T0, calls, cdr, database

CANDIDATES = {"c1", "c2", "c5", "c6", "c9", "t1"}


def qa_db(tmp_path, **extra):
    url, engine = database(tmp_path, calls() + [cdr("t1", 3000, queue="sales", agent="a2", caller="999", wait=2, talk=5,
                                                    x={"tags": ["complaint"]})])
    engine.dispose()
    return QaService.open(url, Options.parse(qa_options(**extra)))


def rule(kind, n, **kw):
    key = {"random": "per_agent", "stratified": "per_queue"}.get(kind, "count")
    return {"kind": kind, key: n, **kw}


def picks(qa, evaluator="eve", since=T0, until=T0 + HOUR):
    return [p.call_id for p in qa.sample(evaluator, since, until)]


@pytest.mark.parametrize("rules, extra, expect", [
    ([rule("longest", 1)], {}, {"c5"}),  # talk 300
    ([rule("shortest", 1)], {}, {"t1"}),  # talk 5
    ([rule("transfers", 5)], {}, {"c2"}),
    ([rule("tagged", 5, tag="complaint")], {}, {"t1"}),
    ([rule("abandoned_after_answer", 5, within=10)], {}, {"t1"}),  # the caller left 5 s after the answer
    ([rule("longest", 6)], {}, CANDIDATES),  # every candidate, none of the bad rows
])
def test_targeted_rules(tmp_path, rules, extra, expect):
    qa = qa_db(tmp_path, rules=rules, **extra)
    assert set(picks(qa)) == expect


def test_random_per_agent_stratified_repeat_callers_and_new_agents(tmp_path):
    qa = qa_db(tmp_path, rules=[rule("random", 1)])
    got = qa.sample("eve", T0, T0 + HOUR)
    assert sorted(p.agent for p in got) == ["a1", "a2", "a3"]  # one per agent
    qa = qa_db(tmp_path / "b", rules=[rule("random", 1)], new_agents=["a3"], new_agent_factor=2)
    assert sorted(p.agent for p in qa.sample("eve", T0, T0 + HOUR)) == ["a1", "a2", "a3", "a3"]  # a3 twice as much
    qa = qa_db(tmp_path / "c", rules=[rule("stratified", 1)])
    assert len(picks(qa)) == 3  # sales, vip and the outbound call without a queue
    qa = qa_db(tmp_path / "d", rules=[rule("repeat_callers", 5)])
    assert set(picks(qa)) == {"c1", "c5"}  # caller 111


def test_runs_are_reproducible_and_never_repeat_a_call_for_an_evaluator(tmp_path):
    rules = [rule("random", 1), rule("longest", 2)]
    qa = qa_db(tmp_path, rules=rules)
    first = picks(qa)
    assert len(first) == len(set(first)) == 5  # 3 random + 2 longest, no call twice in a run
    assert picks(qa) == first  # the same run again: the same calls
    assert picks(qa_db(tmp_path / "other", rules=rules)) == first  # same seed, same data: same picks
    # a later run over the same calls (another period) gives eve only the one call she never had
    again = picks(qa, since=T0 - 60)
    assert set(again) == CANDIDATES - set(first)
    assert picks(qa, "quinn")  # another evaluator may get the same calls


def test_evaluate_acknowledge_dispute(tmp_path):
    qa = qa_db(tmp_path)
    row = qa.evaluate("eve", {"greet": "fail", "verify": "pass", "solve": "pass", "upsell": "pass"}, call_id="c1",
                      comments={"greet": "no company name"})
    assert (row["agent"], row["score"], row["recording"], row["status"]) == ("a1", 90.0, "/rec/c1.wav", "submitted")
    with pytest.raises(NotFound, match="recording '/rec/nope.wav' is not in the cdr table"):
        qa.evaluate("eve", {"greet": "pass", "verify": "pass", "solve": "pass", "upsell": "pass"}, recording="/rec/nope.wav")
    with pytest.raises(NotFound, match="call 'c3' has no recording"):  # the abandoned call
        qa.evaluate("eve", {"greet": "pass", "verify": "pass", "solve": "pass", "upsell": "pass"}, call_id="c3")
    with pytest.raises(EvaluationError, match="comments on unknown item"):
        qa.evaluate("eve", {"greet": "pass", "verify": "pass", "solve": "pass", "upsell": "pass"}, call_id="c1",
                    comments={"tone": "x"})
    with pytest.raises(EvaluationError, match="of agent 'a1', not 'a2'"):
        qa.respond(row["id"], "a2", "acknowledge")
    with pytest.raises(EvaluationError, match="needs a reason"):
        qa.respond(row["id"], "a1", "dispute", "  ")
    assert qa.respond(row["id"], "a1", "dispute", "I did say it")["status"] == "disputed"
    with pytest.raises(EvaluationError, match="already disputed"):
        qa.respond(row["id"], "a1", "acknowledge")
    assert [e["id"] for e in qa.evaluations_of("a1")] == [row["id"]] and qa.evaluations_of("a3") == []


def test_a_changed_card_is_a_new_version_and_old_evaluations_keep_theirs(tmp_path):
    qa = qa_db(tmp_path)
    v1 = qa.versions["default"]
    old = qa.evaluate("eve", {"greet": "pass", "verify": "pass", "solve": "pass", "upsell": "fail"}, call_id="c1")
    assert evaluations.sync_scorecards(qa.engine, qa.options.scorecards) == {"default": v1}  # unchanged: same version
    changed = {"sections": [{"name": "All", "items": [{"id": "greet", "text": "Greets", "weight": 50},
                                                     {"id": "close", "text": "Closes", "weight": 50}]}]}
    qa2 = QaService.open(str(qa.engine.url), Options.parse(qa_options(scorecards={"default": changed})))
    assert qa2.versions["default"] != v1
    assert evaluations.card_of(qa2.engine, qa2.versions["default"])[1] == 2
    assert evaluations.get(qa2.engine, old["id"])["scorecard_id"] == v1
    card, version = evaluations.card_of(qa2.engine, v1)
    assert version == 1 and [i.id for i in card.items] == ["greet", "verify", "solve", "upsell"]
    new = qa2.evaluate("eve", {"greet": "pass", "close": "fail"}, call_id="c5")
    assert new["score"] == 50.0 and new["scorecard_id"] == qa2.versions["default"]


def test_calibration_spread(tmp_path):
    qa = qa_db(tmp_path)
    answers = {  # three evaluators score c2 in session cal1
        "eve": {"greet": "pass", "verify": "pass", "solve": 1, "upsell": "na"},  # 80/80 applicable = 100
        "quinn": {"greet": "pass", "verify": "pass", "solve": 0.5, "upsell": "pass"},  # 10+30+20+20 = 80
        "rita": {"greet": "fail", "verify": "pass", "solve": 1, "upsell": "pass"},  # 30+40+20 = 90
    }
    for who, a in answers.items():
        qa.evaluate(who, a, call_id="c2", calibration="cal1")
    s = qa.calibration("cal1")
    items = {i["item"]: i for i in s["items"]}
    assert items["greet"]["range"] == 1.0 and items["greet"]["stdev"] == pytest.approx(0.4714, abs=1e-4)
    assert items["solve"]["range"] == 0.5 and not items["solve"]["agree"]
    assert items["verify"]["agree"] and items["verify"]["range"] == 0
    assert items["upsell"]["values"] == {"eve": None, "quinn": 1.0, "rita": 1.0} and not items["upsell"]["agree"]
    # mean of 100, 80, 90 = 90: eve +10, quinn -10, rita 0
    assert {e["evaluator"]: e["mean_deviation"] for e in s["evaluators"]} == {"eve": 10.0, "quinn": -10.0, "rita": 0.0}
    with pytest.raises(NotFound):
        calibration.spread(qa.engine, "nosuch")


def test_reports(tmp_path):
    qa = qa_db(tmp_path, teams={"north": ["a1", "a2"], "south": ["a3"]})
    full = {"greet": "pass", "verify": "pass", "solve": "pass", "upsell": "pass"}
    qa.evaluate("eve", {**full, "greet": "fail"}, call_id="c1")  # a1: 90
    qa.evaluate("eve", full, call_id="c5")  # a3: 100
    qa.evaluate("quinn", {**full, "verify": "fail"}, call_id="c6")  # a3: critical failed, 0
    qa.evaluate("rita", full, call_id="c2", calibration="cal")  # calibration: not in the reports
    r = qa.report(T0, T0 + HOUR, "agent")
    assert [(g["agent"], g["evaluations"], g["average"], g["critical_failures"]) for g in r["groups"]] == [
        ("a1", 1, 90.0, 0), ("a3", 2, 50.0, 1)]
    assert [(g["team"], g["average"]) for g in qa.report(T0, T0 + HOUR, "team")["groups"]] == [("north", 90.0), ("south", 50.0)]
    assert [(g["week"], g["evaluations"]) for g in qa.report(T0, T0 + HOUR, "week")["groups"]] == [("2026-W45", 3)]
    fails = {i["item"]: (i["failed"], i["applicable"]) for i in r["items"]}
    assert fails == {"greet": (1, 3), "verify": (1, 3), "solve": (0, 3), "upsell": (0, 3)}
    assert average_by_agent(qa.engine, T0, T0 + HOUR) == {"a1": 90.0, "a3": 50.0}
    assert qa.report(T0 + 86400, T0 + 2 * 86400)["groups"] == []
    with pytest.raises(ValueError, match="unknown grouping"):
        qa.report(T0, T0 + HOUR, "colour")

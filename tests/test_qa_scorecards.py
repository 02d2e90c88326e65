"""Scorecards: weights, critical items, N/A, partial credit, bad cards and answers, versions."""

from __future__ import annotations

import copy

import pytest

from ctid_plugins.qa.config import Options, check
from ctid_plugins.qa.scorecard import ScorecardError, parse
from qa_support import CARD, qa_options

card = parse("default", CARD)
ALL_PASS = {"greet": "pass", "verify": "pass", "solve": "pass", "upsell": "pass"}


def test_scores():
    assert card.score(ALL_PASS) == (100.0, False)
    # greet failed: 90 of 100
    assert card.score({**ALL_PASS, "greet": "fail"}) == (90.0, False)
    # upsell N/A: 10+30+40 = 80 applicable, all passed -> 100; with greet failed: 70/80 = 87.5
    assert card.score({**ALL_PASS, "upsell": "na"}) == (100.0, False)
    assert card.score({**ALL_PASS, "upsell": "na", "greet": "fail"}) == (87.5, False)
    # solve half done: 10 + 30 + 20 + 0.5 * 40 = 80
    assert card.score({**ALL_PASS, "solve": 0.5}) == (80.0, False)
    # the critical item failed: the whole score is 0, whatever else passed
    assert card.score({**ALL_PASS, "verify": "fail"}) == (0.0, True)
    assert card.score({"greet": "na", "verify": "na", "solve": "na", "upsell": "na"}) == (None, False)


def test_bad_answers_name_every_item():
    with pytest.raises(ScorecardError) as err:
        card.score({"greet": "maybe", "verify": 0.5, "solve": "pass", "extra": "pass"})
    assert str(err.value) == ("greet: expected pass, fail, na or a fraction 0-1, got 'maybe'; "
                              "verify: expected pass, fail, na, got 0.5; upsell: no answer; "
                              "extra: not an item of scorecard 'default'")
    strict = copy.deepcopy(CARD)
    strict["sections"][0]["items"][0]["na"] = False
    with pytest.raises(ScorecardError, match="greet: may not be N/A"):
        parse("strict", strict).score({**ALL_PASS, "greet": "na"})


def test_weights_must_sum_to_100_and_ids_be_unique():
    bad = copy.deepcopy(CARD)
    bad["sections"][1]["items"][1]["weight"] = 15
    bad["sections"][1]["items"].append({"id": "greet", "text": "again", "weight": 5})
    with pytest.raises(ScorecardError) as err:
        parse("default", bad)
    assert "item id 'greet' is used twice" in str(err.value) and "the weights sum to 100, expected 100" not in str(err.value)
    bad["sections"][1]["items"].pop()
    with pytest.raises(ScorecardError, match="the weights sum to 95, expected 100"):
        parse("default", bad)


def test_config_check():
    assert check(qa_options(rules=[{"kind": "random", "per_agent": 2}])) == []
    bad = copy.deepcopy(CARD)
    bad["sections"][0]["items"][0]["weight"] = 0
    errors = check({"scorecards": {"default": bad}, "rules": [{"kind": "random"}, {"kind": "tagged", "count": 1},
                                                             {"kind": "psychic", "count": 1}], "seed": -1, "extra": 1})
    assert errors == [
        "seed: expected an integer >= 0, got -1",
        "rules[0].per_agent: expected a number of calls >= 1, got None",
        "rules[1].tag: a tagged rule needs the tag to look for",
        "rules[2].kind: expected one of random, stratified, longest, shortest, abandoned_after_answer, transfers, "
        "repeat_callers, tagged, got 'psychic'",
        "scorecards.default.sections[0].items[0].weight: expected a number > 0, got 0",
        "scorecards.default: the weights sum to 90, expected 100",  # the other three
        "extra: unknown key",
    ]
    assert Options.parse(qa_options(rules=[{"kind": "longest", "count": 3}])).rules[0].n == 3

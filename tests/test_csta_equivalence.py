"""The acceptance test of the normalized model: one seeded call center, told once in AMI
by the Asterisk simulator and once in CSTA XML by the CSTA simulator, read back by each
driver, makes the same story — same calls in the same order with the same events, queues,
agents, callers, transfers, abandons and recordings (MixMonitor / ECMA-269 voice unit); same
agent pauses; waits, rings, talk times and recording durations alike."""

from __future__ import annotations

from collections import Counter

import pytest

from csta_support import asterisk_events, csta_run, story

TOLERANCE = 1.0  # seconds: AMI gives whole seconds (HoldTime), CSTA time stamps milliseconds


@pytest.mark.parametrize("seed", [7, 2024])
def test_same_story_through_both_wires(seed):
    ami = story(asterisk_events(seed, 3600))
    csta_events, mapper = csta_run(seed, 3600)
    csta = story(csta_events)

    assert len(ami["calls"]) > 250
    assert len(csta["calls"]) == len(ami["calls"])
    for n, (a, c) in enumerate(zip(ami["calls"], csta["calls"])):
        assert c == a, f"call #{n} differs"
    assert csta["agents"] == ami["agents"]
    assert sum(1 for call in csta["timing"] for key, _ in call if key == "talk") > 200
    assert sum(1 for call in csta["timing"] for key, _ in call if key == "recording") > 250
    for a, c in zip(ami["timing"], csta["timing"]):
        assert [k for k, _ in c] == [k for k, _ in a]
        assert all(abs(x - y) <= TOLERANCE for (_, x), (_, y) in zip(a, c))

    # The figures a supervisor reads off both are the same.
    kinds = Counter(event[0] for call in csta["calls"] for event in call)
    assert kinds["call.transferred"] > 0 and kinds["call.abandoned"] > 0 and kinds["call.held"] > 0
    assert kinds["recording.started"] > 250 and kinds["recording.stopped"] > 250
    assert len(mapper.calls) == sum(1 for call in csta["calls"] if call[-1][0] != "call.cleared")

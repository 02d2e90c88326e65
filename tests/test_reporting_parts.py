"""The reporting plugin's small parts: its config check, queue.stats from a snapshot, the bucket split."""

from __future__ import annotations

import pytest

from ctid_plugins.reporting.agent_time import split
from ctid_plugins.reporting.config import Options, check
from ctid_plugins.reporting.realtime import agents_by_queue, queue_stats


def test_config_check_reports_every_problem_with_its_key():
    assert check({}) == []
    assert check({"timezone": "Europe/Paris", "teams": {"n": ["1001"]}, "wallboard": "127.0.0.1:8085"}) == []
    errors = check({"timezone": "Mars/Olympus", "short_abandon": -1, "service_levels": {"vip": 0},
                    "teams": {"n": ["1001"], "s": ["1001"]}, "wallboard": "nowhere", "colour": 1})
    assert errors == [
        "timezone: unknown time zone 'Mars/Olympus'",
        "short_abandon: expected seconds from 0 to 600, got -1",
        "service_levels.vip: expected seconds from 1 to 3600, got 0",
        "teams.s: agent '1001' is already in team 'n'",
        "wallboard: expected 'host:port' (or '' for none), got 'nowhere'",
        "colour: unknown key",
    ]
    assert check({"wallboard": "127.0.0.1:1", "stats_interval": 0}) == [
        "wallboard: needs stats_interval > 0 (the board shows the queue.stats events)"]


def test_options_merge_queue_tables_and_overrides():
    o = Options.parse({"service_levels": {"vip": 10}, "teams": {"north": ["1001", 1002]}}, {"vip": 15, "sales": 30, "x": 0})
    assert o.threshold("vip") == 10 and o.threshold("sales") == 30 and o.threshold("x") == 20 and o.threshold(None) == 20
    assert o.teams == {"1001": "north", "1002": "north"}


def test_queue_stats_from_a_snapshot():
    snapshot = {
        "queues": [{"queue": "sales", "waiting": 2, "longest_wait": 31.5}],
        "agents": [
            {"agent": "1", "state": "busy", "queues": {"sales": False, "vip": False}},
            {"agent": "2", "state": "ready", "queues": {"sales": True}},  # paused in sales: not ready there
            {"agent": "3", "state": "acw", "queues": {"sales": False}},
            {"agent": "4", "state": "logged_off", "queues": {"sales": False}},  # not counted
        ],
    }
    assert agents_by_queue(snapshot["agents"]) == {
        "sales": {"ready": 0, "busy": 1, "acw": 1, "not_ready": 1}, "vip": {"ready": 0, "busy": 1, "acw": 0, "not_ready": 0}}
    today = {"sales": {"offered": 10, "answered": 8, "abandoned": 1, "service_level": 0.75, "asa": 12.0}}
    events = queue_stats(snapshot, today, 100.0, queues=["billing"])
    assert [e["queue"] for e in events] == ["billing", "sales", "vip"]  # configured, live, agents' queues
    sales = events[1]
    assert sales == {"type": "queue.stats", "ts": 100.0, "queue": "sales", "waiting": 2, "longest_wait": 31.5,
                     "agents": {"ready": 0, "busy": 1, "acw": 1, "not_ready": 1}, "offered": 10, "answered": 8,
                     "abandoned": 1, "service_level": 0.75, "asa": 12.0}
    assert events[0]["service_level"] is None and events[0]["offered"] == 0  # no calls yet: n/a, not 0 %


@pytest.mark.parametrize("start, end, pieces", [
    (0, 900, [(0, 900)]), (850, 1000, [(0, 50), (1, 100)]), (100, 100, []), (1800, 3700, [(2, 900), (3, 900), (4, 100)]),
])
def test_split_at_quarter_hours(start, end, pieces):
    assert list(split(start, end)) == pieces

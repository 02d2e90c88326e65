"""The example plugin's own tests: its hooks called directly, as a plugin author would test."""

from collections import Counter
from types import SimpleNamespace

from ctid_callcount import CallCount


def ctx(**options):
    seen = Counter()
    return SimpleNamespace(options=options, count=lambda what, n=1: seen.update({what: n}), seen=seen)


def test_counts_per_queue_and_disposition():
    plugin, c = CallCount(), ctx(min_talk=5)
    plugin.ctid_startup(c)
    for queue, disposition, talk in [("sales", "answered", 30), ("sales", "answered", 2), ("sales", "abandoned", 0),
                                     ("support", "answered", 60)]:
        plugin.ctid_event({"type": "call.cleared", "queue": queue, "disposition": disposition, "talk": talk}, c)
    get = plugin.ctid_request_ops(c)["callcount.get"]
    assert get({}) == {"sales/abandoned": 1, "sales/answered": 1, "support/answered": 1}
    assert get({"queue": "support"}) == {"support/answered": 1}
    assert c.seen["short_calls"] == 1


def test_config_check():
    plugin = CallCount()
    assert plugin.ctid_config_check({"min_talk": 3}) is None
    assert plugin.ctid_config_check({"min_talk": "x"}) == ["min_talk: expected a number of seconds >= 0, got 'x'"]

"""Real Asterisk transcripts replayed over TCP through the whole daemon, read back from the bus.

Expected numbers come from shared/ami (README, *.analysis.txt, *.per-call.txt),
which were checked there against Asterisk's own queue_log.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from helpers import AMI, Subscriber, site_config, transcript, wait_for
from ctid.daemon import Daemon
from ctid.drivers.asterisk.replay import ReplayServer
from ctid.store.query import cdrs

AGENTS = {"1001": "Alice", "1002": "Bob", "1003": "Carol", "1004": "Dave", "1005": "Eve", "1006": "Frank", "1007": "Gina"}


async def replay(tmp_path, name: str, speed: float | None = None):
    server = ReplayServer(transcript(name), speed=speed)
    server.go.clear()
    _, port = await server.start()
    daemon = Daemon(site_config(tmp_path, port, resync_timeout=0.3))
    sub = Subscriber(daemon.config.bus.pub)
    await daemon.start()
    try:
        await wait_for(lambda: daemon.counters.get("bus.subscribe") > 0)
        server.go.set()
        await wait_for(lambda: server.sent.is_set(), timeout=200)
        await sub.drain(quiet=1.0, daemon=daemon)
        await daemon.stop()
        return [e for _, e in sub.events], daemon
    finally:
        sub.close()
        await daemon.stop()
        await server.close()


def per_call(name: str) -> dict[str, dict]:
    """call_id (the handset's Uniqueid = Linkedid) -> the recorded outcome of that call."""
    calls = {}
    for line in (AMI / f"{name}.per-call.txt").read_text(encoding="utf-8").splitlines():
        m = re.search(r"handset_uid=(\S+)", line)
        if not m:
            continue
        calls[m.group(1)] = {
            "ref": line.split()[0],
            "waits": [int(w) for w in re.findall(r"connect:[^(]+\(hold (\d+)s\)", line)],
            "talk": sum(int(t) for t in re.findall(r"talk (\d+)s", line)),
        }
    return calls


def by_type(events, type_):
    return [e for e in events if e["type"] == type_]


async def test_mixed_day_counts(tmp_path):
    events, daemon = await replay(tmp_path, "c-mixed-day")
    answered = Counter((e["queue"], AGENTS[e["agent"]]) for e in by_type(events, "call.established"))
    assert answered == {
        ("sales", "Alice"): 8, ("sales", "Bob"): 4, ("sales", "Carol"): 3, ("sales", "Eve"): 3,
        ("support", "Carol"): 6, ("support", "Dave"): 5, ("vip", "Frank"): 3, ("vip", "Gina"): 4,
    }
    assert Counter(e["queue"] for e in by_type(events, "call.queued")) == {"sales": 18, "support": 15, "vip": 8}
    # 5 QueueCallerAbandon in the stream: 4 callers gave up, 1 queue timeout (not an abandon).
    assert Counter(e["queue"] for e in by_type(events, "call.abandoned")) == {"support": 3, "vip": 1}
    diverted = Counter((e["queue"], e["cause"]) for e in by_type(events, "call.diverted"))
    assert diverted == {("support", "timeout"): 1, ("vip", "no_answer"): 1}
    cleared = by_type(events, "call.cleared")
    assert len(cleared) == 40
    assert Counter(e["disposition"] for e in cleared) == {"answered": 35, "abandoned": 4, "timeout": 1}
    transfers = {(e["kind"], AGENTS[e["agent"]], e["target"]) for e in by_type(events, "call.transferred")}
    assert transfers == {("blind", "Alice", "2000"), ("attended", "Frank", "2001")}
    assert len(by_type(events, "call.held")) == 3 and len(by_type(events, "call.retrieved")) == 3
    # The blind-transferred caller is one call through two queues.
    c04 = [e for e in by_type(events, "call.established") if e["call_id"] == "1795342289.12"]
    assert [(e["queue"], AGENTS[e["agent"]]) for e in c04] == [("sales", "Alice"), ("support", "Dave")]

    # Waits are the PBX's own HoldTime, call by call.
    expected = per_call("c-mixed-day")
    for call_id, info in expected.items():
        waits = [e["wait"] for e in by_type(events, "call.established") if e["call_id"] == call_id]
        assert waits == info["waits"], info["ref"]

    # Names in UTF-8, withheld numbers and nameless callers.
    offered = by_type(events, "call.offered")
    assert len(offered) == 40
    names = {e["caller_name"] for e in offered}
    assert {"José Núñez", "张伟"} <= names
    withheld = [e for e in offered if e.get("x", {}).get("withheld")]
    assert len(withheld) == 6 and all(e["caller"] is None for e in withheld)
    assert all(e["direction"] == "inbound" for e in offered)

    recordings = by_type(events, "recording.started")
    assert len(recordings) == 41
    assert all(e["path"].startswith("/var/spool/asterisk/monitor/") and e["path"].endswith(".wav") for e in recordings)
    assert len(by_type(events, "recording.stopped")) == 41

    # Pauses with reasons: Bob Training, Gina Lunch, Dave Coaching, Carol Meeting.
    reasons = {(AGENTS[e["agent"]], e["reason"]) for e in by_type(events, "agent.not_ready")}
    assert reasons == {("Bob", "Training"), ("Gina", "Lunch"), ("Dave", "Coaching"), ("Carol", "Meeting")}
    assert {AGENTS[e["agent"]] for e in by_type(events, "agent.logged_off")} == {"Eve"}

    # Envelope: every event, seq without gaps.
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    for e in events:
        assert e["v"] == 1 and e["site"] == "hq" and e["source"] == "asterisk" and isinstance(e["ts"], float)
    assert daemon.counters.get("driver.asterisk.parse_errors") == 0

    # One CDR per finished call in the database, with the same dispositions.
    rows = cdrs(daemon.config.database.url)
    assert len(rows) == 40
    assert Counter(r["disposition"] for r in rows) == {"answered": 35, "abandoned": 4, "timeout": 1}


async def test_busy_queue_counts(tmp_path):
    events, daemon = await replay(tmp_path, "a-busy-queue")
    answered = Counter((e["queue"], AGENTS[e["agent"]]) for e in by_type(events, "call.established"))
    assert answered == {
        ("sales", "Alice"): 5, ("sales", "Bob"): 4, ("sales", "Carol"): 11,
        ("support", "Carol"): 1, ("support", "Dave"): 5, ("support", "Eve"): 4,
    }
    # Asterisk's QueueParams says support Completed 9: it forgets the call Eve was on when removed.
    cleared = by_type(events, "call.cleared")
    assert Counter((e["queue"], e["disposition"]) for e in cleared) == {("sales", "answered"): 20, ("support", "answered"): 10}
    no_answer = [e for e in by_type(events, "call.diverted") if e["cause"] == "no_answer"]
    assert [AGENTS[e["agent"]] for e in no_answer] == ["Alice"] * 3
    a07 = [e for e in by_type(events, "call.established") if e["call_id"] == "1795339672.20"]
    assert [(AGENTS[e["agent"]], e["wait"]) for e in a07] == [("Carol", 52.0)]
    assert not by_type(events, "call.abandoned")


async def test_mixed_day_paced_durations(tmp_path):
    """Replayed at 8x the recorded pace: talk + hold per call matches Asterisk's TalkTime."""
    speed = 8.0
    events, _ = await replay(tmp_path, "c-mixed-day", speed=speed)
    expected = per_call("c-mixed-day")
    checked = 0
    for e in by_type(events, "call.cleared"):
        info = expected[e["call_id"]]
        if e["disposition"] != "answered" or info["ref"][3:] in ("bx", "ax"):
            continue  # transferred calls go on past the agent's TalkTime
        measured = (e["talk"] + e["hold"]) * speed
        assert abs(measured - info["talk"]) <= 2.0, (info["ref"], measured, info["talk"])
        checked += 1
    assert checked == 33
    held = {expected[e["call_id"]]["ref"] for e in by_type(events, "call.cleared") if e["hold"] > 0}
    assert {"C19ho", "C32ho"} <= held

"""`ctid routing replay`: recorded calls through the routing engine under other staffing, on a
hand-built period whose figures can be worked out by hand, and the command on a real SQLite
store of CDRs (bad periods and bad rules are clear errors)."""

from __future__ import annotations

import json

from sqlalchemy import insert

from ctid.acd.replay import actual, replay
from ctid.acd.rules import parse_routing
from ctid.cli import main
from ctid.store.engine import make_engine
from ctid.store.models import CDR, metadata

T0 = 1_790_000_000.0


def cdr(call_id: str, t: float, talk: float | None, wait: float, queue: str = "sales", agent: str | None = "1001"):
    answered = talk is not None
    return dict(site="hq", call_id=call_id, caller="+12025550100", queue=queue, agent=agent if answered else None,
                direction="inbound", t_offered=T0 + t, t_queued=T0 + t, t_answered=T0 + t + wait if answered else None,
                wait=wait, talk=talk or 0.0, hold=0.0, disposition="answered" if answered else "abandoned")


# Recorded: four sales calls; in reality one agent answered three and the fourth caller gave up
# after 10 s.
DAY = [cdr("c1", 0, 30, 0), cdr("c2", 10, 30, 20), cdr("c3", 20, 30, 40), cdr("c4", 25, None, 10)]


def rules(agents: int, **queue):
    errors: list[str] = []
    r = parse_routing({"queue": [{"name": "sales", **queue}],
                       "agent": [{"id": str(1001 + i), "device": f"PJSIP/{1001 + i}", "queues": {"sales": 0}}
                                 for i in range(agents)]}, errors)
    assert errors == []
    return r


def test_one_agent_replays_what_happened_and_three_do_better():
    one = replay(DAY, rules(1)).total
    # c1 at once; c2 when c1 ends (t=30, waited 20: within 20 s); c3 at t=60 (40); c4 hangs up at 35.
    assert (one.offered, one.answered, one.in_sl, one.abandoned) == (4, 3, 2, 1)
    assert one.wait_answered == 60.0 and one.handled == 90.0
    was, staffed = actual(DAY)
    assert staffed == 1 and (was.total.answered, was.total.in_sl, was.total.abandoned) == (3, 2, 1)
    three = replay(DAY, rules(3)).total
    # c1, c2, c3 at once; c4 waits until c1 ends at t=30 (5 s, before its caller's 10 s).
    assert (three.answered, three.in_sl, three.abandoned, three.wait_answered) == (4, 4, 0, 5.0)
    assert three.row(3, 100.0)["occupancy"] == 120.0 / 300.0 and three.row(3, 100.0)["sl"] == 1.0


def test_rules_change_the_outcome_wrapup_and_max_wait_and_the_replay_is_deterministic():
    slow = replay(DAY, rules(1, wrapup=15, max_wait=25, fallback="voicemail:sales")).total
    # c1's wrap-up runs to t=45: c2 (max wait 25) goes to voicemail at t=35, c4 hangs up at 35,
    # and c3 is taken at 45, after exactly its 25 s (the wrap-up's end comes before the max wait).
    assert (slow.answered, slow.elsewhere, slow.abandoned, slow.wait_answered) == (2, 1, 1, 25.0)
    again = replay(DAY, rules(1, wrapup=15, max_wait=25, fallback="voicemail:sales")).total
    assert again == slow
    # Calls of a queue the rules do not have go to the fallback, counted, not lost.
    other = replay([*DAY, cdr("x1", 5, 10, 0, queue="billing")], rules(3))
    assert other.queues["billing"].elsewhere == 1 and other.total.offered == 5


def test_replay_command_on_the_store(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/cdr.db"
    engine = make_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(CDR), DAY + [cdr("late", 5000, 30, 0)])  # outside the period
    engine.dispose()
    (tmp_path / "new.toml").write_text(
        '[routing]\n[[routing.queue]]\nname = "sales"\n'
        + "".join(f'[[routing.agent]]\nid = "{a}"\ndevice = "PJSIP/{a}"\nqueues = {{ sales = 0 }}\n'
                  for a in ("1001", "1002", "1003")))
    period = f"{T0:.0f}..{T0 + 100:.0f}"
    assert main(["routing", "replay", "--cdr", period, "--rules", str(tmp_path / "new.toml"), "--db", url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["calls"] == 4 and report["agents"] == {"actual": 1, "replay": 3}
    sales = report["queues"]["sales"]
    assert sales["actual"]["sl"] == 0.5 and sales["replay"]["sl"] == 1.0
    assert sales["actual"]["abandon_rate"] == 0.25 and sales["replay"]["abandon_rate"] == 0.0
    assert sales["actual"]["occupancy"] == 0.9 and sales["replay"]["occupancy"] == 0.4
    assert main(["routing", "replay", "--cdr", "1970-01-01T00:00.." + "1970-01-01T00:01", "--rules",
                 str(tmp_path / "new.toml"), "--db", url]) == 0
    assert "actual -> replay" in capsys.readouterr().out
    # Bad input: a clear message, exit code 2.
    assert main(["routing", "replay", "--cdr", "yesterday", "--rules", str(tmp_path / "new.toml"), "--db", url]) == 2
    assert "expected FROM..TO" in capsys.readouterr().err
    (tmp_path / "bad.toml").write_text('[routing]\n[[routing.queue]]\nname = "sales"\nstrategy = "random"\n')
    assert main(["routing", "replay", "--cdr", period, "--rules", str(tmp_path / "bad.toml"), "--db", url]) == 2
    assert "routing.queue[0].strategy: 'random'" in capsys.readouterr().err

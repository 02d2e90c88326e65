"""The interval rollup gives the same report as the raw CDRs, and stays right as CDRs arrive.

Differential: every KPI, exclusion and disposition of `build(use_rollup=False)` (raw rows) and
`build()` (rollup, plus raw rows at the period's edges and after the horizon), for every
combination of the dimensions the rollup serves, on the hand-built hour and on a random
slice of simulated days. Then the incremental cases: a late import into an old interval, a
repeat call that un-resolves an earlier one (FCR), after-call work landing on a stored CDR,
an option change (automatic rebuild), and a database the report may not write to.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
from dataclasses import replace

import pytest
from sqlalchemy import insert, select, update

from ctid.store.engine import make_engine
from ctid.store.models import CDR
from ctid_plugins.reporting import rollup
from ctid_plugins.reporting.report import build
from reporting_support import HOUR, NOW, OPTIONS, T0, calls, cdr, database

SERVED = (("queue", "direction", "site", "customer_type"), ("agent", "team", "site"))  # the two rollup tables
TIMES = (None, "interval", "day", "week", "month")


def groupings():
    """Every grouping the rollups serve: each subset of a table's dimensions, with or without a time."""
    seen = set()
    for dims in SERVED:
        for n in range(len(dims) + 1):
            for cols in itertools.combinations(dims, n):
                for t in TIMES:
                    by = (*cols, t) if t else cols
                    if by not in seen:
                        seen.add(by)
                        yield by


def same(engine, since, until, by, options=OPTIONS, now=NOW, **kw):
    """Assert the raw and the rollup report agree on every figure; the rollup one's source."""
    raw = build(engine, since, until, by, options, now=now, use_rollup=False, **kw)
    rolled = build(engine, since, until, by, options, now=now, **kw)
    assert raw.meta["source"] == "raw"
    assert [r.labels for r in rolled.rows] == [r.labels for r in raw.rows], by
    for got, want in zip([*rolled.rows, rolled.total], [*raw.rows, raw.total]):
        assert got.kpis.keys() == want.kpis.keys()
        figures = [(f"kpi {k}", got.kpis[k], v) for k, v in want.kpis.items()]
        figures += [(f"measure {m}", got.measures.get(m, 0), want.measures.get(m, 0)) for m in rollup.MEASURES]
        for name, value, expected in figures:
            if expected is None:  # n/a (a zero denominator) either way
                assert value is None, (by, got.labels, name)
            else:  # sums of partial sums: equal up to float rounding (counts are exact integers)
                assert value == pytest.approx(expected, rel=1e-9, abs=1e-9), (by, got.labels, name)
        assert got.not_ready == want.not_ready
    assert rolled.exclusions == raw.exclusions and rolled.dispositions == raw.dispositions
    assert rolled.footnotes == raw.footnotes
    return rolled


@pytest.fixture()
def hour(tmp_path):
    _, engine = database(tmp_path)
    yield engine
    engine.dispose()


def test_hand_built_hour_every_grouping(hour):
    for by in groupings():
        report = same(hour, T0, T0 + HOUR, by)
        assert report.meta["source"] == "rollup", by  # a whole hour of whole buckets
    # the exclusions counted in the rollup are the hand-built ones (tests/test_reporting_kpis.py)
    assert report.exclusions == {"clock_skew": 1, "missing_end": 1, "negative_duration": 1}


def test_period_edges_and_the_current_bucket_are_read_raw(hour):
    # 09:05-09:55: partial buckets at both ends, rolled ones between
    assert same(hour, T0 + 300, T0 + HOUR - 300, ["queue", "interval"]).meta["source"] == "rollup+raw"
    # reported "now" at 09:40: buckets from 09:30 are not rolled yet; calls after now are clock skew
    for by in (["queue"], ["direction", "interval"]):
        assert same(hour, T0, T0 + HOUR, by, now=T0 + 2400).meta["source"] == "rollup+raw"
    # a now before the period: nothing is rolled there, all raw
    assert same(hour, T0, T0 + HOUR, ["queue"], now=T0 - 600).meta["source"] == "raw"
    # filters by queue and site are served too
    same(hour, T0, T0 + HOUR, ["interval"], queues=["vip"])
    same(hour, T0, T0 + HOUR, ["queue"], sites=["hq"])


def simulated(days: int, per_day: int, seed: int, start: float) -> list[dict]:
    """Random CDRs over `days`: two sites, VIP and normal customers, inbound, outbound, IVR and
    unknown directions, every disposition, repeat callers, and 1 % bad rows of each kind."""
    rnd = random.Random(seed)
    rows = []
    for i in range(days * per_day):
        offset = rnd.randrange(days) * 86400 + 7 * 3600 + rnd.random() * 13 * 3600 - (start - T0)
        queue = rnd.choice(["sales", "vip", "support", None])
        direction = rnd.choice(["inbound"] * 6 + ["outbound", None])
        answered = rnd.random() < 0.8
        agent = rnd.choice(["a1", "a2", "a3", "a4"]) if answered and (queue or direction == "outbound") else None
        kw = dict(queue=queue if direction != "outbound" else None, agent=agent, direction=direction,
                  caller=f"+44{rnd.randrange(400):04d}" if rnd.random() < 0.95 else None,
                  disposition="answered" if answered else rnd.choice(["abandoned", "abandoned", "timeout", "unanswered"]),
                  wait=round(rnd.expovariate(1 / 20), 1), talk=round(rnd.expovariate(1 / 180), 1),
                  hold=rnd.choice([0.0, 0.0, 15.5]), acw=rnd.choice([None, 10.0, 30.0]), transfers=rnd.choice([0, 0, 1]),
                  site=rnd.choice(["hq", "east"]),
                  x=rnd.choice([None, {"customer_type": "vip"}, {"customer_type": "normal"}, {"other": 1}]))
        bad = rnd.random()
        if bad < 0.01:
            kw["ended"] = False
        elif bad < 0.02:
            kw["wait"] = None
        elif bad < 0.03:
            kw["talk"] = -1.0
        elif bad < 0.04:
            kw["t_answered"] = T0 + offset - 10
        rows.append(cdr(f"s{seed}-{i}", offset, **kw))
    return rows


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    """Four simulated days from Sunday 2026-11-01 (so a week and a month boundary are crossed
    in Europe/London and New York too), 800 calls a day."""
    start = T0 - 86400 - 9 * HOUR
    _, engine = database(tmp_path_factory.mktemp("rollup"), simulated(4, 800, 7, start), [])
    yield engine, start
    engine.dispose()


@pytest.mark.parametrize("zone", ["UTC", "Europe/London", "America/New_York", "Asia/Kolkata"])
def test_simulated_days_every_grouping(days, zone):
    engine, start = days
    options = replace(OPTIONS, timezone=zone)
    now = start + 5 * 86400
    for by in groupings():
        same(engine, start - 86400, start + 4 * 86400, by, options, now=now)
    # the agent rollup has no queue: an agent grouping filtered by queue reads the raw rows
    assert same(engine, start, start + 86400, ["agent", "interval"], options, now=now,
                queues=["sales"]).meta["source"] == "raw"
    assert same(engine, start, start + 86400, ["team"], options, now=now).meta["source"] == "rollup"
    # a period cut mid-bucket, one day, one queue
    same(engine, start + 86400 + 7 * 60, start + 2 * 86400 - 7 * 60, ["queue", "interval"], options, now=now,
         queues=["support"])


def _reports_agree(engine, now, by=("queue", "interval")):
    return same(engine, T0 - 86400, T0 + 2 * 86400, list(by), now=now)


def test_late_import_into_an_old_interval(tmp_path):
    _, engine = database(tmp_path)
    _reports_agree(engine, NOW)
    # a CDR imported late (a site's backlog) into 09:15-09:30, long rolled
    with engine.begin() as conn:
        conn.execute(insert(CDR), [cdr("late", 1000, queue="sales", agent="a2", caller="999", wait=3, talk=40)])
    report = _reports_agree(engine, NOW + 60)
    assert report.total.kpis["answered"] == 6  # c1 c2 c5 c6, c16 (10:01) and the late one


@pytest.mark.parametrize("caller_index", [False, True])
def test_repeat_call_unresolves_an_earlier_one(tmp_path, caller_index):
    # c6 (caller 555, 09:16:40, vip) is resolved until its caller calls again within the hour
    rows = [r for r in calls() if r["call_id"] != "c16"]
    _, engine = database(tmp_path, rows)
    if caller_index:  # the screen pop's index: the rollup looks repeats up by caller
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE INDEX ix_cdr_caller_t_offered ON cdr (caller, t_offered)")
    before = _reports_agree(engine, T0 + 3 * HOUR)
    with engine.begin() as conn:
        conn.execute(insert(CDR), [cdr("c16", HOUR + 100, queue="vip", agent="a3", caller="555", wait=5, talk=30)])
    _reports_agree(engine, T0 + 3 * HOUR + 60)
    after = same(engine, T0, T0 + HOUR, [], now=T0 + 3 * HOUR + 120)
    # eligible in 09:00-10:00 c1 c2 c5 c6: before, c1 (repeated by c5) is the only unresolved
    # one; after, c6 too (its bucket, rolled long before c16 was written, was rolled again)
    assert before.total.kpis["fcr"] == pytest.approx(3 / 4)
    assert after.total.kpis["fcr"] == pytest.approx(2 / 4)


def test_after_call_work_landing_on_a_stored_cdr(tmp_path):
    _, engine = database(tmp_path)
    _reports_agree(engine, T0 + 2 * HOUR)  # the rollup as the daemon keeps it
    # a long call offered at 09:05 ends at 11:30 and is written then; the report at 11:31 rolls
    # it (its bucket is long before the horizon)
    with engine.begin() as conn:
        conn.execute(insert(CDR), [cdr("long", 300, queue="sales", agent="a1", caller="424", wait=5, talk=2.5 * HOUR - 305)])
    _reports_agree(engine, T0 + 2.5 * HOUR + 60)
    # its after-call work is written a minute later onto the stored row (ctid/store/dml.py does this)
    with engine.begin() as conn:
        conn.execute(update(CDR).where(CDR.c.call_id == "long").values(acw=45.0))
    report = _reports_agree(engine, T0 + 2.5 * HOUR + 120)
    assert report.total.measures["acw"] == pytest.approx(30 + 10 + 20 + 45)  # c1 c2 c6 and the long call


def test_change_older_than_settle_needs_a_rebuild(tmp_path):
    _, engine = database(tmp_path)
    build(engine, T0, T0 + HOUR, ["queue"], OPTIONS, now=NOW)
    with engine.begin() as conn:
        conn.execute(update(CDR).where(CDR.c.call_id == "c1").values(acw=99.0))
    later = NOW + 2 * OPTIONS.rollup_settle  # c1 was written and its interval offered long ago
    stale = build(engine, T0, T0 + HOUR, [], OPTIONS, now=later)
    raw = build(engine, T0, T0 + HOUR, [], OPTIONS, now=later, use_rollup=False)
    assert stale.total.measures["acw"] == pytest.approx(60)  # the documented limit: 30 + 10 + 20
    assert raw.total.measures["acw"] == pytest.approx(129)
    run = rollup.refresh(engine, OPTIONS, later, rebuild=True)
    assert run.rebuilt
    assert build(engine, T0, T0 + HOUR, [], OPTIONS, now=later).total.measures["acw"] == pytest.approx(129)


def test_option_change_rebuilds(hour):
    first = rollup.refresh(hour, OPTIONS, NOW)
    assert first.rebuilt and first.buckets > 0
    again = rollup.refresh(hour, OPTIONS, NOW + 30)
    assert not again.rebuilt
    # sales goes to a 30 s threshold: c2 (25 s) is now in the service level
    options = replace(OPTIONS, service_levels={"vip": 15, "sales": 30})
    assert rollup.served(hour, options, NOW) is None  # the rollup no longer answers for these options
    report = same(hour, T0, T0 + HOUR, [], options)
    assert report.total.kpis["service_level"] == pytest.approx(3 / 6)
    assert rollup.refresh(hour, options, NOW + 60).rebuilt is False  # the report rebuilt it already
    for changed in (replace(OPTIONS, short_abandon=2), replace(OPTIONS, fcr_window=7200), replace(OPTIONS, service_level=30)):
        assert rollup.fingerprint(changed) != rollup.fingerprint(OPTIONS)
    assert rollup.fingerprint(replace(OPTIONS, timezone="Asia/Tokyo", teams={})) == rollup.fingerprint(OPTIONS)


def test_read_only_database_falls_back_to_raw(tmp_path):
    url, engine = database(tmp_path)
    engine.dispose()
    path = url.removeprefix("sqlite:///")
    ro = make_engine("sqlite://", creator=lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True))
    try:
        report = build(ro, T0, T0 + HOUR, ["queue"], OPTIONS, now=NOW)
        assert report.meta["source"] == "raw"
        assert report.total.kpis["answered"] == 4  # every figure still there (tests/test_reporting_kpis.py)
    finally:
        ro.dispose()
    with sqlite3.connect(path) as conn:  # and nothing was written
        assert not conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'cdr_rollup%'").fetchall()


def test_rollup_rows_are_few(days):
    engine, start = days
    rollup.refresh(engine, OPTIONS, start + 5 * 86400)
    with engine.connect() as conn:
        rolled = conn.execute(select(rollup.ROLLUP.c.id)).all()
        calls = conn.execute(select(CDR.c.id)).all()
    assert 0 < len(rolled) < len(calls)


def test_cli_rollup_and_rebuild(tmp_path, capsys):
    import json

    from ctid.cli import main

    url, engine = database(tmp_path)
    engine.dispose()
    path = tmp_path / "ctid.toml"
    path.write_text(f'site = "hq"\n[database]\nurl = "{url}"\n[[driver]]\nkind = "asterisk"\n'
                    '[plugins]\nenabled = ["reporting"]\n[plugins.reporting]\nfcr_window = 3600\n')
    runs = []
    for extra in ([], [], ["--rebuild"]):
        assert main(["report", "rollup", "-c", str(path), "--json", *extra]) == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert [r["rebuilt"] for r in runs] == [True, False, True]
    assert runs[0]["buckets"] > 0 and runs[0]["watermark"] == len(calls())
    assert main(["report", "rollup", "--database", url]) == 0
    assert "rollup rebuilt" in capsys.readouterr().out  # default options: another fingerprint
    # misuse: a clear message, exit code 2
    assert main(["report", "-c", str(path), "--rebuild", "--from", "2026-11-02", "--to", "2026-11-03"]) == 2
    assert "--rebuild goes with `ctid report rollup`" in capsys.readouterr().err
    assert main(["report", "-c", str(path), "--by", "queue"]) == 2
    assert "--from and --to are required" in capsys.readouterr().err


def test_a_rebuild_goes_a_few_buckets_per_transaction(hour, monkeypatch):
    monkeypatch.setattr(rollup, "CHUNK", 2)
    run = rollup.refresh(hour, OPTIONS, NOW, rebuild=True)
    assert run.rebuilt and run.horizon == int(NOW // 900)
    with hour.connect() as conn:
        # the reset; 09:00-09:30, 09:30-10:00, 10:00-10:30 (c16); then no CDR until after NOW
        # (c15, two days on): one step to the horizon
        assert conn.execute(select(rollup.STATE.c.runs)).scalar() == 1 + 4
    for by in (["queue", "interval"], ["agent"], []):
        assert same(hour, T0, T0 + HOUR, by).meta["source"] == "rollup"


def test_a_cdr_from_1970_costs_no_transaction_per_day(tmp_path):
    # a site whose clock said 1970: the rollup jumps the 56 empty years instead of a day at a time
    rows = [*calls(), cdr("epoch", 1000 - T0, queue="sales", agent="a1", caller="1", wait=2, talk=10)]
    _, engine = database(tmp_path, rows)
    run = rollup.refresh(engine, OPTIONS, NOW)
    assert run.rebuilt and run.horizon == int(NOW // 900)
    with engine.connect() as conn:
        assert conn.execute(select(rollup.STATE.c.runs)).scalar() < 10
    same(engine, 0, NOW, ["queue", "day"])
    same(engine, 0, 86400, ["agent"])

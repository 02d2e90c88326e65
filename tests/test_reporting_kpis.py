"""Every KPI of docs/kpis.md on the hand-built hour of tests/reporting_support.py.

The calls of 09:00-10:00 (offset from 09:00 in s, wait/talk/hold/acw in s):

    c1  sales  a1  in   caller 111  +0     answered wait 10  talk 100 hold 20 acw 30
    c2  sales  a2  in   caller 222  +60    answered wait 25  talk 200         acw 10  1 transfer  (VIP)
    c3  sales      in   caller 333  +120   abandoned wait 40
    c4  sales      in   caller 444  +180   abandoned wait 3   (short: under 5 s)
    c5  vip    a3  in   caller 111  +600   answered wait 12  talk 300 hold 60 acw -   (repeats c1)
    c6  vip    a3  in   caller 555  +1000  answered wait 18  talk 60          acw 20  (VIP)
    c7  vip        in   caller 666  +2000  abandoned wait 30
    c8  (IVR)      in   caller 777  +2100  answered, no queue, no agent: completed in the IVR
    c9         a1  out              +2200  answered wait 5 talk 50 acw 0
    c10        a1  out              +2300  unanswered
    c11 sales      in   caller 888  +2400  timeout wait 60
    c12 missing end, c13 answered before offered (clock skew), c14 talk -5: excluded
    c15 caller 222 two days later (outside the FCR window), c16 caller 555 at 10:01:40 (repeats c6)

Service level thresholds: sales 20 s, vip 15 s. Short abandons: under 5 s. FCR window: 1 h.
"""

from __future__ import annotations

import pytest

from ctid_plugins.reporting.aggregate import ReportError
from ctid_plugins.reporting.report import build
from reporting_support import HOUR, NOW, OPTIONS, T0, cdr, database


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    _, engine = database(tmp_path_factory.mktemp("kpis"))
    yield engine
    engine.dispose()


def by(engine, *dims, **kw):
    report = build(engine, T0, T0 + HOUR, dims, OPTIONS, now=NOW, **kw)
    return report, {r.labels: r.kpis for r in report.rows}


def test_every_call_kpi_of_the_hour(engine):
    report, _ = by(engine)
    k = report.total.kpis
    # offered (PBX): inbound calls c1-c8, c11 = 9 (c9, c10 are outbound)
    assert k["offered"] == 9
    # offered to the ACD: queued inbound c1-c7, c11 = 8, minus the short abandon c4 = 7
    assert k["acd_offered"] == 7
    assert k["ivr_completed"] == 1  # c8
    assert k["answered"] == 4  # c1 c2 c5 c6 (queued, answered by an agent)
    assert k["abandoned"] == 2  # c3 c7 (c4 is short)
    assert k["short_abandoned"] == 1  # c4
    assert k["abandon_rate"] == pytest.approx(2 / 7)  # abandoned / ACD offered
    assert k["avg_abandon_time"] == pytest.approx(35.0)  # (40 + 30) / 2
    # in SL: c1 (10 <= 20), c5 (12 <= 15); not: c2 (25 > 20), c6 (18 > 15 on vip)
    assert k["service_level"] == pytest.approx(2 / 6)  # 2 / (4 answered + 2 abandoned); c11 timeout is not in it
    assert k["over_threshold"] == 2  # c2 c6
    assert k["asa"] == pytest.approx(16.25)  # (10 + 25 + 12 + 18) / 4
    assert k["handled"] == 4
    assert k["avg_talk"] == pytest.approx(165.0)  # (100 + 200 + 300 + 60) / 4
    assert k["avg_hold"] == pytest.approx(20.0)  # (20 + 0 + 60 + 0) / 4
    assert k["avg_acw"] == pytest.approx(15.0)  # (30 + 10 + 0 + 20) / 4: no acw recorded is none done
    assert k["aht"] == pytest.approx(200.0)  # (660 + 80 + 60) / 4
    assert k["answer_rate"] == pytest.approx(5 / 9)  # (4 by agents + 1 in the IVR) / 9 offered
    # FCR: c1 is repeated by c5 (600 s later), c6 by c16 (2700 s later, after the period);
    # c2 (its repeat c15 is two days later) and c5 are resolved: 2 / 4
    assert k["fcr"] == pytest.approx(0.5)
    assert k["transfers"] == 1 and k["transfer_rate"] == pytest.approx(0.25)  # c2 of 4 handled
    assert k["outbound_attempts"] == 2 and k["outbound_connects"] == 1  # c9 c10, c9 answered


def test_agent_time_kpis(engine):
    report, rows = by(engine, "agent")
    # a1: logged in before 09:00 until 09:50 = 3000 s, lunch 09:20-09:25 = 300 s; handles c1 (150) and c9 (50)
    a1 = rows[("a1",)]
    assert a1["logged_in"] == pytest.approx(3000 / 3600)
    assert a1["not_ready"] == pytest.approx(300 / 3600)
    assert a1["occupancy"] == pytest.approx(200 / 2700)  # handle / (logged in - not ready)
    assert a1["utilization"] == pytest.approx(200 / 3000)  # handle / logged in
    assert a1["calls_per_hour"] == pytest.approx(2 / (3000 / 3600))  # c1, c9
    # a3: 09:05 to the end (in sales after leaving vip) = 3300 s, training from 09:50 = 600 s; c5 360 + c6 80
    a3 = rows[("a3",)]
    assert a3["logged_in"] == pytest.approx(3300 / 3600)
    assert a3["occupancy"] == pytest.approx(440 / 2700)
    assert a3["utilization"] == pytest.approx(440 / 3300)
    # a2 answered c2 but has no agent_state rows: no logged-in time, so no occupancy (n/a, not 0 or infinite)
    assert rows[("a2",)]["occupancy"] is None and rows[("a2",)]["answered"] == 1
    nr = {r.labels: r.not_ready for r in report.rows}
    assert nr[("a1",)] == pytest.approx({"lunch": 300 / 3600})
    assert nr[("a3",)] == pytest.approx({"training": 600 / 3600})
    t = report.total.kpis
    assert t["logged_in"] == pytest.approx(6300 / 3600) and t["not_ready"] == pytest.approx(900 / 3600)
    assert t["occupancy"] == pytest.approx(850 / 5400)  # 150+210+360+80+50 over (6300 - 900)
    assert t["calls_per_hour"] == pytest.approx(5 / 1.75)  # c1 c2 c5 c6 c9 over 1.75 h


def test_by_queue_and_interval(engine):
    _, rows = by(engine, "queue", "interval")
    assert set(rows) == {("sales", "2026-11-02 09:00"), ("sales", "2026-11-02 09:30"), ("vip", "2026-11-02 09:00"),
                         ("vip", "2026-11-02 09:30"), ("(none)", "2026-11-02 09:30")}
    sales = rows[("sales", "2026-11-02 09:00")]  # c1 c2 c3 c4
    assert (sales["answered"], sales["abandoned"], sales["acd_offered"]) == (2, 1, 3)
    assert sales["service_level"] == pytest.approx(1 / 3) and sales["asa"] == pytest.approx(17.5)
    late = rows[("sales", "2026-11-02 09:30")]  # c11 timed out: offered, not answered, not abandoned
    assert late["acd_offered"] == 1 and late["service_level"] is None and late["abandon_rate"] == 0
    vip = rows[("vip", "2026-11-02 09:00")]  # c5 in 15 s, c6 not
    assert vip["service_level"] == pytest.approx(0.5)
    assert rows[("vip", "2026-11-02 09:30")]["abandon_rate"] == 1.0  # c7
    _, hourly = by(engine, "queue", "interval", interval=60)
    assert hourly[("sales", "2026-11-02 09:00")]["acd_offered"] == 4


def test_team_customer_type_direction_site(engine):
    _, teams = by(engine, "team")
    assert teams[("north",)]["handled"] == 2 and teams[("south",)]["handled"] == 2  # c1 c2 / c5 c6
    assert teams[("north",)]["outbound_attempts"] == 2
    _, types = by(engine, "customer_type")
    assert types[("vip",)]["answered"] == 2 and types[("unknown",)]["offered"] == 7  # c2 c6 tagged
    _, dirs = by(engine, "direction")
    assert dirs[("outbound",)]["outbound_connects"] == 1 and dirs[("inbound",)]["offered"] == 9
    _, sites = by(engine, "site")
    assert sites[("hq",)]["offered"] == 9


def test_bad_rows_are_excluded_and_footnoted(engine):
    report, _ = by(engine)
    assert report.exclusions == {"clock_skew": 1, "missing_end": 1, "negative_duration": 1}
    notes = "\n".join(report.footnotes)
    assert "1 CDR(s) excluded from every figure" in notes and "[clock_skew]" in notes
    assert "[negative_duration]" in notes and "[missing_end]" in notes
    assert "1 short abandon(s)" in notes
    # the excluded calls did not leak into any figure: c12-c14 were answered by a2 in sales
    assert report.total.kpis["answered"] == 4
    assert report.dispositions == {"abandoned": 3, "answered": 6, "timeout": 1, "unanswered": 1}


def test_calls_in_the_future_are_clock_skew(tmp_path):
    _, engine = database(tmp_path, [cdr("f1", 0, queue="sales", agent="a1", wait=1, talk=10)], [])
    report = build(engine, T0, T0 + HOUR, [], OPTIONS, now=T0 - 600)  # a site clock ten minutes ahead
    assert report.exclusions == {"clock_skew": 1} and report.total.kpis["offered"] == 0


def test_empty_period_gives_na_rates_not_zero(engine):
    report = build(engine, T0 + 10 * 86400, T0 + 11 * 86400, ["queue"], OPTIONS, now=NOW)
    assert report.rows == []
    assert report.total.kpis["offered"] == 0 and report.total.kpis["service_level"] is None
    assert report.footnotes[0].startswith("No calls in the period")


def test_unknown_queue_filter_is_an_error(engine):
    with pytest.raises(ReportError, match="unknown queue.*nosuch"):
        build(engine, T0, T0 + HOUR, [], OPTIONS, now=NOW, queues=["nosuch"])
    # a configured queue without calls yet is fine; a known one filters
    _, rows = by(engine, "queue", queues=["vip"], known=["billing"])
    assert set(rows) == {("vip",)}
    assert build(engine, T0, T0 + HOUR, [], OPTIONS, now=NOW, queues=["billing"], known=["billing"]).rows == []


@pytest.mark.parametrize("dims, message", [(["colour"], "unknown dimension"), (["day", "week"], "one time dimension"),
                                           (["queue", "queue"], "named twice")])
def test_bad_dimensions(engine, dims, message):
    with pytest.raises(ReportError, match=message):
        build(engine, T0, T0 + HOUR, dims, OPTIONS, now=NOW)


def test_local_days_weeks_months(tmp_path):
    from dataclasses import replace

    # d1 23:30 UTC Sunday 1 Nov = 00:30 Monday 2 Nov in Paris (UTC+1): another day and ISO week there;
    # d2 22:30 UTC 1 Nov = 23:30 1 Nov in Paris; d3 23:30 UTC Saturday 31 Oct = 00:30 1 Nov in Paris
    rows = [cdr("d1", -9.5 * HOUR, queue="sales", agent="a1", wait=1, talk=10),
            cdr("d2", -10.5 * HOUR, queue="sales", agent="a1", wait=1, talk=10),
            cdr("d3", -33.5 * HOUR, queue="sales", agent="a1", wait=1, talk=10)]
    _, engine = database(tmp_path, rows, [])
    expected = {
        ("Europe/Paris", "day"): {("2026-11-01",): 2, ("2026-11-02",): 1},
        ("Europe/Paris", "week"): {("2026-W44",): 2, ("2026-W45",): 1},
        ("Europe/Paris", "month"): {("2026-11",): 3},
        ("UTC", "day"): {("2026-10-31",): 1, ("2026-11-01",): 2},
        ("UTC", "week"): {("2026-W44",): 3},
        ("UTC", "month"): {("2026-10",): 1, ("2026-11",): 2},
    }
    for (zone, dim), answered in expected.items():
        report = build(engine, T0 - 2 * 86400, T0, [dim], replace(OPTIONS, timezone=zone), now=NOW)
        assert {r.labels: r.kpis["answered"] for r in report.rows} == answered, (zone, dim)


def test_schedule_adherence(engine, tmp_path):
    from ctid_plugins.reporting.schedule import ScheduleError, load
    from zoneinfo import ZoneInfo

    path = tmp_path / "schedule.csv"
    path.write_text("agent,start,end\na1,2026-11-02 09:00,2026-11-02 09:30\na1,2026-11-02 09:15,2026-11-02 09:45\n"
                    "a3,2026-11-02 09:00,2026-11-02 10:00\na2,2026-11-02 09:00,2026-11-02 09:30\n")
    shifts = load(path, ZoneInfo("UTC"))
    assert shifts["a1"] == [(T0, T0 + 2700)]  # the two overlapping shifts merged: 09:00-09:45
    report, rows = by(engine, "agent", schedule=shifts)
    # a1: scheduled 09:00-09:45 = 2700 s, logged in all of it but lunch 09:20-09:25: 2400 / 2700
    assert rows[("a1",)]["adherence"] == pytest.approx(2400 / 2700)
    # a3: scheduled 09:00-10:00 = 3600 s; logged in from 09:05, training from 09:50: 2700 / 3600
    assert rows[("a3",)]["adherence"] == pytest.approx(0.75)
    # a2: scheduled 09:00-09:30, never logged in: 0 %, not n/a
    assert rows[("a2",)]["adherence"] == 0.0
    assert report.total.kpis["adherence"] == pytest.approx(5100 / 8100)
    without, _ = by(engine, "agent")
    assert without.total.kpis["adherence"] is None and any("adherence is n/a" in n for n in without.footnotes)
    path.write_text("agent,start,end\na1,2026-11-02 10:00,2026-11-02 09:00\n")
    with pytest.raises(ScheduleError, match="schedule.csv:2: a shift needs an agent and an end after its start"):
        load(path, ZoneInfo("UTC"))


def test_fcr_is_the_same_with_the_caller_index(tmp_path):
    # with ix_cdr_caller_t_offered (the screen pop makes it) FCR is looked up call by call
    # instead of by a window function: the same answers, group by group
    from sqlalchemy import text

    from ctid_plugins.reporting.aggregate import has_caller_index

    _, engine = database(tmp_path)
    before = {r.labels: r.kpis["fcr"] for r in build(engine, T0, T0 + HOUR, ["queue", "interval"], OPTIONS, now=NOW).rows}
    with engine.begin() as conn:
        conn.execute(text("CREATE INDEX ix_cdr_caller_t_offered ON cdr (caller, t_offered)"))
    with engine.connect() as conn:
        assert has_caller_index(conn)  # the other path is taken
    report = build(engine, T0, T0 + HOUR, ["queue", "interval"], OPTIONS, now=NOW)
    assert {r.labels: r.kpis["fcr"] for r in report.rows} == before
    assert report.total.kpis["fcr"] == pytest.approx(0.5)
    engine.dispose()

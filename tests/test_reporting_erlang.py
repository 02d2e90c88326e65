"""Erlang C against published values and an independent formula; `ctid staffing`."""

from __future__ import annotations

import json
import math

import pytest

from ctid.cli import main
from ctid_plugins.reporting.erlang import StaffingError, erlang_c, level, parse_target, staff


def erlang_c_direct(n: int, a: float) -> float:
    """The textbook closed form, P(wait) = (A^N/N! * N/(N-A)) / (sum_{k<N} A^k/k! + A^N/N! * N/(N-A)),
    written independently of the module's Erlang B recursion."""
    top = a**n / math.factorial(n) * n / (n - a)
    return top / (sum(a**k / math.factorial(k) for k in range(n)) + top)


@pytest.mark.parametrize("n, a, p_wait", [
    # M/M/3 at 2 erlangs: P(wait) = 4/9 exactly (the classic worked example of queueing texts:
    # A^3/3! * 3/(3-2) = 4, sum_{k<3} 2^k/k! = 5, 4/(5+4))
    (3, 2.0, 4 / 9),
    # Erlang C table, 10 erlangs (e.g. 200 calls/h x 180 s), as printed in call-centre staffing tables
    (11, 10.0, 0.6821), (12, 10.0, 0.4494), (13, 10.0, 0.2853), (14, 10.0, 0.1741),
    # 1 erlang, 2 agents: P(wait) = (1/2 * 2) / (1 + 1 + 1) = 1/3
    (2, 1.0, 1 / 3),
])
def test_p_wait_matches_published_values(n, a, p_wait):
    assert erlang_c(n, a) == pytest.approx(p_wait, abs=5e-5)
    assert erlang_c(n, a) == pytest.approx(erlang_c_direct(n, a), rel=1e-12)


def test_the_worked_example_10_erlangs_80_20():
    # The widely reproduced worked example: 100 calls per 30 minutes (200/h), AHT 3 min, 80 % in 20 s.
    # 13 agents give 79.6 % (just short), 14 agents 88.8 %: 14 are needed; ASA 7.8 s, occupancy 71.4 %.
    s = staff(200, 180, 0.8, 20)
    assert s.load == pytest.approx(10.0) and s.agents == 14
    by_n = {lv.agents: lv for lv in s.levels}
    assert by_n[13].service_level == pytest.approx(0.7956, abs=5e-4)
    assert by_n[14].service_level == pytest.approx(0.8885, abs=5e-4)
    assert by_n[14].asa == pytest.approx(7.8, abs=0.05) and by_n[14].occupancy == pytest.approx(10 / 14)
    # 30 % shrinkage: 14 / 0.7 = 20 scheduled
    assert staff(200, 180, 0.8, 20, shrinkage=0.3).scheduled == 20


def test_large_centers_do_not_overflow():
    s = staff(36000, 300, 0.9, 10)  # 3000 erlangs: A**N / N! would overflow a float
    assert 3000 < s.agents < 3200 and s.levels[0].p_wait <= 1.0
    assert level(3000, 3000.0, 300, 10).service_level == 0.0  # overloaded: never reaches a target


@pytest.mark.parametrize("args", [(360, 0, 0.8, 20), (360, 240, 1.0, 20), (360, 240, 0.8, 20, 1.0), (-1, 240, 0.8, 20)])
def test_bad_inputs_are_errors(args):
    with pytest.raises(StaffingError):
        staff(*args)
    with pytest.raises(StaffingError, match="PERCENT/SECONDS"):
        parse_target("80")


def test_staffing_json(capsys):
    # 360 calls/h x 240 s = 24 erlangs; 28 agents give 76.1 %, 29 give 84.0 %
    assert main(["staffing", "--calls-per-hour", "360", "--aht", "240", "--sl", "80/20", "--shrinkage", "30", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["agents"] == 29 and out["load"] == 24.0 and out["scheduled"] == 42  # ceil(29 / 0.7)
    assert main(["staffing", "--calls-per-hour", "360", "--aht", "240"]) == 0
    assert "agents needed: 29" in capsys.readouterr().out
    assert main(["staffing", "--calls-per-hour", "360", "--aht", "240", "--sl", "100/20"]) == 2
    assert "between 0 and 100" in capsys.readouterr().err


def test_forecast_csv(tmp_path, capsys):
    path = tmp_path / "forecast.csv"
    path.write_text("interval,calls,aht\n09:00,100,180\n09:30,180,\n10:00,0,\n")
    assert main(["staffing", "--forecast", str(path), "--aht", "240", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["intervals"]
    # 100 calls per 30 min = 200/h at 180 s: 14 agents (above); 180 per 30 min = 360/h at 240 s: 29; none: 0
    assert [(r["interval"], r["agents"]) for r in rows] == [("09:00", 14), ("09:30", 29), ("10:00", 0)]
    path.write_text("interval,calls\n09:00,many\n")
    assert main(["staffing", "--forecast", str(path), "--aht", "240"]) == 2
    assert "forecast.csv:2" in capsys.readouterr().err

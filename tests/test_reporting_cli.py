"""`ctid report`: the config's database and options, every output format, bad input as exit code 2."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ctid.cli import main
from reporting_support import database


@pytest.fixture()
def site(tmp_path):
    url, engine = database(tmp_path)
    engine.dispose()
    path = tmp_path / "ctid.toml"
    path.write_text(f'''site = "hq"
[database]
url = "{url}"
[[driver]]
kind = "asterisk"
[[queue]]
name = "vip"
servicelevel = 15
[[queue]]
name = "billing"
[plugins]
enabled = ["reporting"]
[plugins.reporting]
short_abandon = 5
fcr_window = 3600
teams = {{ north = ["a1", "a2"], south = ["a3"] }}
''')
    return path, url


PERIOD = ["--from", "2026-11-02 09:00", "--to", "2026-11-02 10:00"]


def test_report_formats(site, capsys):
    path, url = site
    assert main(["report", "-c", str(path), *PERIOD, "--by", "queue,interval", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    vip = next(r for r in rows if r["queue"] == "vip" and r["interval"] == "2026-11-02 09:00")
    assert float(vip["service_level"]) == 0.5  # the [[queue]] servicelevel 15 s: c5 in, c6 (18 s) out
    assert rows[-1]["queue"] == "total" and rows[-1]["offered"] == "9"

    assert main(["report", "-c", str(path), *PERIOD, "--by", "team", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {r["team"]: r["handled"] for r in out["rows"]} == {"(none)": 0, "north": 2, "south": 2}
    assert out["exclusions"] == {"clock_skew": 1, "missing_end": 1, "negative_duration": 1}

    assert main(["report", "--database", url, *PERIOD, "--by", "queue"]) == 0
    text = capsys.readouterr().out
    assert "33.3%" in text and "[missing_end]" in text  # SL of the hour; footnotes under the table


def test_report_bad_input(site, tmp_path, capsys):
    path, url = site
    assert main(["report", "-c", str(path), *PERIOD, "--queue", "nosuch"]) == 2
    assert "unknown queue(s) nosuch" in capsys.readouterr().err
    assert main(["report", "-c", str(path), *PERIOD, "--queue", "billing"]) == 0  # configured, no calls yet
    capsys.readouterr()
    assert main(["report", "-c", str(path), "--from", "yesterday", "--to", "2026-11-02"]) == 2
    assert "'yesterday' is not a date" in capsys.readouterr().err
    assert main(["report", "-c", str(path), *PERIOD, "--by", "colour"]) == 2
    assert "unknown dimension 'colour'" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text(path.read_text().replace("short_abandon = 5", "short_abandon = -1\ntimezone = \"Mars/Olympus\""))
    assert main(["report", "-c", str(bad), *PERIOD]) == 2
    err = capsys.readouterr().err
    assert "plugins.reporting.short_abandon" in err and "plugins.reporting.timezone: unknown time zone" in err


def test_report_with_a_schedule(site, tmp_path, capsys):
    path, _ = site
    shifts = tmp_path / "shifts.csv"
    shifts.write_text("agent,start,end\na3,2026-11-02 09:00,2026-11-02 10:00\n")
    assert main(["report", "-c", str(path), *PERIOD, "--by", "agent", "--schedule", str(shifts), "--json"]) == 0
    rows = {r["agent"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["a3"]["adherence"] == 0.75  # logged in 09:05-10:00, training from 09:50 (tests/test_reporting_kpis.py)
    shifts.write_text("agent,begin\n")
    assert main(["report", "-c", str(path), *PERIOD, "--schedule", str(shifts)]) == 2
    assert "expected a header with agent,start,end" in capsys.readouterr().err

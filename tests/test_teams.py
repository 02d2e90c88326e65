"""`[[team]]`: the site's teams, checked with key paths, and the one lookup the reports and the
recordings (events, archive scan, CLI search) use. Bus access by team: tests/test_security.py;
recordings by team in a running daemon: tests/test_recordings_teams.py."""

from __future__ import annotations

import json
import tomllib

import pytest

from recordings_support import cleared, event
from reporting_support import database
from test_config import REPO
from test_recordings_files import write_wav
from ctid import config
from ctid.cli import main
from ctid.recordings.feed import RecordingFeed
from ctid.teams import Teams

SITE = {"site": "hq", "driver": [{"kind": "asterisk"}]}
TEAMS = [{"name": "north", "agents": ["1001", "1003"], "queues": ["sales", "vip"]},
         {"name": "south", "agents": ["1002", 1004]}]


def test_teams_parse_into_one_lookup():
    cfg = config.parse({**SITE, "team": TEAMS})
    assert [(t.name, t.agents, t.queues) for t in cfg.teams] == [
        ("north", ("1001", "1003"), ("sales", "vip")), ("south", ("1002", "1004"), ())]
    assert (cfg.team_of("1003"), cfg.team_of("1004"), cfg.team_of("1009"), cfg.team_of(None)) == ("north", "south", None, None)
    assert cfg.site_teams.get("north").queues == ("sales", "vip") and cfg.site_teams.get("sales") is None
    assert config.parse(SITE).site_teams.agent_team == {}  # a site without teams


def test_every_team_error_is_reported_with_its_key_path():
    broken = [
        {"name": "north", "agents": ["1001", "1001"], "colour": "red"},
        {"name": "north", "agents": "1002", "queues": ["sales", 7.5]},
        {"agents": ["1001", ""]},
        {"name": "a b"},
        "east",
    ]
    with pytest.raises(config.ConfigError) as info:
        config.parse({**SITE, "team": broken}, "site.toml")
    assert info.value.errors == [
        "team[0].colour: unknown key",
        "team[0].agents[1]: '1001' is listed twice",
        "team[1].name: duplicate team 'north'",
        "team[1].agents: expected list, got str '1002'",
        "team[1].queues[1]: expected a non-empty string, got float 7.5",
        "team[2].name: required key is missing",
        "team[2].agents[1]: expected a non-empty string, got str ''",
        "team[2].agents: agent '1001' is already in team 'north'",
        "team[3].name: 'a b' may only hold letters, digits, '_' and '-'",
        "team[4]: expected a table",
    ]
    with pytest.raises(config.ConfigError) as info:
        config.parse({**SITE, "team": {"name": "north"}})
    assert info.value.errors == ["team: expected an array of tables ([[team]])"]


def test_a_broken_team_stops_the_daemon_before_it_starts(tmp_path, capsys):
    path = tmp_path / "site.toml"
    path.write_text('site = "hq"\n[[driver]]\nkind = "asterisk"\n'
                    '[[team]]\nname = "north"\nagents = ["1001"]\n[[team]]\nname = "south"\nagents = ["1001"]\n')
    assert main(["run", "-c", str(path)]) == 2
    assert "team[1].agents: agent '1001' is already in team 'north'" in capsys.readouterr().err


def test_the_annotated_examples_teams_are_valid():
    # config/ctid.toml shows [[team]] commented out, like [[queue]]: uncommented, it must parse
    lines = (REPO / "config" / "ctid.toml").read_text().splitlines()
    start = lines.index("# [[team]]")
    block = []
    for line in lines[start:]:
        if not line.startswith("# "):
            break
        block.append(line[2:])
    cfg = config.parse({**SITE, **tomllib.loads("\n".join(block))})
    assert [t.name for t in cfg.teams] == ["north", "south"] and cfg.team_of("1004") == "south"


def test_a_recordings_team_is_the_calls_then_the_agents_then_the_queue():
    feed = RecordingFeed("hq", Teams.of(config.parse({**SITE, "team": TEAMS}).teams))
    teams = []
    for n, extra in enumerate([{"x": {"team": "escalations"}}, {"agent": "1003", "queue": "support"},
                               {"agent": "1007", "queue": "support"}, {"agent": None, "queue": "vip", "x": {"team": ""}}]):
        feed.observe(event("recording.started", f"c{n}", 100.0, path=f"/r/c{n}.wav"))
        (rec,) = feed.observe(cleared(f"c{n}", 130.0, **extra))
        teams.append(rec.team)
    assert teams == ["escalations", "north", "support", "vip"]


def _site_file(tmp_path, url: str, extra: str = "") -> str:
    path = tmp_path / "site.toml"
    path.write_text(f'site = "hq"\n[database]\nurl = "{url}"\n[[driver]]\nkind = "asterisk"\n'
                    '[[team]]\nname = "north"\nagents = ["a1", "a2"]\nqueues = ["sales"]\n'
                    f'[[team]]\nname = "south"\nagents = ["a3"]\n{extra}')
    return str(path)


def test_report_by_team_uses_the_sites_teams(tmp_path, capsys):
    url, engine = database(tmp_path)
    engine.dispose()
    period = ["--from", "2026-11-02 09:00", "--to", "2026-11-02 10:00", "--by", "team", "--json"]
    assert main(["report", "-c", _site_file(tmp_path, url), *period]) == 0
    out = capsys.readouterr()
    assert {r["team"]: r["handled"] for r in json.loads(out.out)["rows"]} == {"(none)": 0, "north": 2, "south": 2}
    assert "deprecated" not in out.err

    # the plugin's own (deprecated) teams still override the site's, with a warning
    own = '[plugins]\nenabled = ["reporting"]\n[plugins.reporting]\nteams = { east = ["a1", "a2", "a3"] }\n'
    assert main(["report", "-c", _site_file(tmp_path, url, own), *period]) == 0
    out = capsys.readouterr()
    assert {r["team"]: r["handled"] for r in json.loads(out.out)["rows"]} == {"(none)": 0, "east": 4}
    assert "plugins.reporting.teams is deprecated" in out.err and "[[team]]" in out.err


def test_scan_and_local_search_file_recordings_under_the_agents_team(tmp_path, capsys):
    root = tmp_path / "archive"
    root.mkdir()
    for name in ("sales_a1_0161_8000_20261102-093000_c1.wav", "vip_a2_0161_8000_20261102-094000_c2.wav",
                 "sales_a3_0161_8000_20261102-095000_c3.wav", "support_b9_0161_8000_20261102-095500_c4.wav"):
        write_wav(root / name, 1.0)
    site = _site_file(tmp_path, f"sqlite:///{tmp_path}/rec.db")
    assert main(["recordings", "scan", "-c", site, str(root)]) == 0
    capsys.readouterr()

    def calls(role: str) -> list[str]:
        assert main(["recordings", "search", "-c", site, "--local", "--json", "--as", role]) == 0
        return sorted(json.loads(line)["call_id"] for line in capsys.readouterr().out.splitlines())

    assert calls("supervisor:north") == ["c1", "c2"]  # its agents, in sales and in vip
    assert calls("supervisor:south") == ["c3"]  # a3's sales call is south's, not north's
    assert calls("supervisor:support") == ["c4"]  # an agent in no team: filed by queue, as before

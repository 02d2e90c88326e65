"""`ctid qa sample|evaluate|report` from the shell, and the qa.* ops on a running daemon's bus."""

from __future__ import annotations

import dataclasses
import json

from ctid.cli import main
from ctid.config import PluginsConfig
from ctid.daemon import Daemon
from ctid_plugins.qa.plugin import Qa
from helpers import free_port, request, site_config
from qa_support import qa_options
from reporting_support import HOUR, T0, database

ALL_PASS = {"greet": "pass", "verify": "pass", "solve": "pass", "upsell": "pass"}


def write_config(tmp_path, qa_table: str) -> str:
    url, engine = database(tmp_path)
    engine.dispose()
    path = tmp_path / "ctid.toml"
    path.write_text(f'''site = "hq"
[database]
url = "{url}"
[[driver]]
kind = "asterisk"
[plugins]
enabled = ["qa"]
[plugins.qa]
seed = 7
{qa_table}
[[plugins.qa.rules]]
kind = "longest"
count = 2
[[plugins.qa.scorecards.default.sections]]
name = "Opening"
items = [{{ id = "greet", text = "Greets", weight = 10 }}, {{ id = "verify", text = "Verifies", weight = 30, critical = true }}]
[[plugins.qa.scorecards.default.sections]]
name = "Resolution"
items = [{{ id = "solve", text = "Solves", weight = 40 }}, {{ id = "upsell", text = "Offers", weight = 20 }}]
''')
    return str(path)


def test_qa_commands(tmp_path, capsys):
    cfg = write_config(tmp_path, "")
    period = ["--from", "2026-11-02 09:00", "--to", "2026-11-02 10:00"]
    assert main(["qa", "sample", "-c", cfg, "--evaluator", "eve", *period, "--json"]) == 0
    assert [p["call_id"] for p in json.loads(capsys.readouterr().out)] == ["c5", "c2"]  # talk 300, 200
    assert main(["qa", "evaluate", "-c", cfg, "c5", "--evaluator", "eve", "--answers",
                 json.dumps({**ALL_PASS, "upsell": "na"}), "--comment", "solve=quick"]) == 0
    assert "call c5 agent a3 score 100.0 [submitted]" in capsys.readouterr().out
    assert main(["qa", "evaluate", "-c", cfg, "--acknowledge", "1", "--agent", "a3"]) == 0
    assert "[acknowledged]" in capsys.readouterr().out
    assert main(["qa", "evaluate", "-c", cfg, "c3", "--evaluator", "eve", "--answers", json.dumps(ALL_PASS)]) == 1
    assert "call 'c3' has no recording" in capsys.readouterr().err
    assert main(["qa", "evaluate", "-c", cfg, "c1", "--evaluator", "eve", "--answers", '{"greet": "pass"}']) == 1
    assert "verify: no answer" in capsys.readouterr().err
    assert main(["qa", "report", "-c", cfg, *period, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["groups"] == [{"agent": "a3", "evaluations": 1, "average": 100.0, "critical_failures": 0, "disputed": 0}]


def test_qa_bad_scorecard_in_config(tmp_path, capsys):
    cfg = write_config(tmp_path, "")
    text = open(cfg).read().replace("weight = 20", "weight = 25")
    open(cfg, "w").write(text)
    assert main(["qa", "report", "-c", cfg, "--from", "2026-11-02", "--to", "2026-11-03"]) == 2
    assert "plugins.qa.scorecards.default: the weights sum to 105, expected 100" in capsys.readouterr().err


async def test_qa_ops_on_the_bus(tmp_path):
    url, engine = database(tmp_path)
    engine.dispose()
    cfg = site_config(tmp_path, free_port())  # nothing listens there: the driver keeps retrying, the bus works
    cfg = dataclasses.replace(cfg, database=dataclasses.replace(cfg.database, url=url),
                              plugins=PluginsConfig(enabled=("qa",), options={"qa": qa_options()}))
    daemon = Daemon(cfg, extra_plugins={"qa": Qa()})
    await daemon.start()
    try:
        req = cfg.bus.req
        ok = await request(req, {"op": "qa.evaluate", "evaluator": "eve", "call_id": "c6", "answers": ALL_PASS})
        assert ok["ok"] and ok["result"]["agent"] == "a3" and ok["result"]["score"] == 100.0
        missing = await request(req, {"op": "qa.evaluate", "evaluator": "eve", "recording": "/rec/none.wav",
                                      "answers": ALL_PASS})
        assert not missing["ok"] and missing["error"]["code"] == "not_found"
        bad = await request(req, {"op": "qa.evaluate", "evaluator": "eve", "call_id": "c6"})
        assert not bad["ok"] and bad["error"]["code"] == "bad_request" and "answers" in bad["error"]["message"]
        disputed = await request(req, {"op": "qa.dispute", "id": ok["result"]["id"], "agent": "a3", "reason": "unfair"})
        assert disputed["result"]["status"] == "disputed"
        mine = await request(req, {"op": "qa.evaluations", "agent": "a3"})
        assert [e["id"] for e in mine["result"]] == [ok["result"]["id"]]
        rep = await request(req, {"op": "qa.report", "since": T0, "until": T0 + HOUR})
        assert rep["result"]["groups"][0]["disputed"] == 1
        sample = await request(req, {"op": "qa.sample", "evaluator": "eve", "since": T0, "until": T0 + HOUR})
        assert sample["ok"] and sample["result"] == []  # no rules configured: nothing to pick
    finally:
        await daemon.stop()


def test_qa_report_by_team_uses_the_sites_teams(tmp_path, capsys):
    cfg = write_config(tmp_path, "")
    with open(cfg, "a") as f:  # a3 in the site's team; no teams option in either plugin
        f.write('[[team]]\nname = "south"\nagents = ["a3"]\n')
    period = ["--from", "2026-11-02 09:00", "--to", "2026-11-02 10:00"]
    assert main(["qa", "evaluate", "-c", cfg, "c5", "--evaluator", "eve", "--answers", json.dumps(ALL_PASS)]) == 0
    capsys.readouterr()
    assert main(["qa", "report", "-c", cfg, *period, "--by", "team", "--json"]) == 0
    assert [g["team"] for g in json.loads(capsys.readouterr().out)["groups"]] == ["south"]

"""Importing an Asterisk site's queues (pyst2): the real site files and broken ones."""

from __future__ import annotations

import argparse
import json
import tomllib
from dataclasses import asdict
from pathlib import Path

import pytest

from ctid.drivers.asterisk.importer import (
    Member,
    QueueImportError,
    import_queues,
    main,
    parse_member,
    to_json,
    to_toml,
)

CONFIG = Path(__file__).resolve().parents[1].parent / "shared" / "ami" / "config"


def site_file(name: str) -> Path:
    path = CONFIG / name
    if not path.exists():
        pytest.skip(f"{path} is not here (shared/ami sits beside the repo)")
    return path


def local(ext: str) -> str:
    return f"Local/{ext}@agents/n"


def member(ext: str, name: str) -> Member:
    return Member(local(ext), name, 0, local(ext))


SALES = [member("1001", "Alice Adams"), member("1002", "Bob Brown"), member("1003", "Carol Chen")]
SUPPORT = [member("1003", "Carol Chen"), member("1004", "Dave Diaz")]
VIP = [member("1001", "Alice Adams"), member("1006", "Frank Fox"), member("1007", "Gina Green")]


def test_site_queues_conf() -> None:
    queues = import_queues(site_file("queues.conf"))
    assert [q.name for q in queues] == ["sales", "support"]  # no [general], no template
    sales, support = queues
    assert (sales.strategy, support.strategy) == ("rrmemory", "leastrecent")
    for q in queues:  # inherited from [queue-template](!)
        assert (q.timeout, q.wrapuptime, q.maxlen, q.servicelevel, q.weight) == (12, 1, 0, 20, 0)
        assert q.options["retry"] == "2" and q.options["ringinuse"] == "no"
    assert sales.members == SALES
    assert support.members == SUPPORT


def test_site_queues_c_conf_has_vip() -> None:
    queues = {q.name: q for q in import_queues(site_file("queues-c.conf"))}
    assert list(queues) == ["sales", "support", "vip"]
    assert queues["vip"].strategy == "fewestcalls"
    assert queues["vip"].members == VIP
    assert queues["sales"].members == SALES


def test_toml_and_json_round_trip() -> None:
    queues = import_queues(site_file("queues-c.conf"))
    doc = tomllib.loads(to_toml(queues, source="queues-c.conf"))
    assert [q["name"] for q in doc["queue"]] == ["sales", "support", "vip"]
    vip = doc["queue"][2]
    assert vip["strategy"] == "fewestcalls" and vip["timeout"] == 12 and vip["servicelevel"] == 20
    assert vip["members"][1] == {
        "interface": local("1006"), "name": "Frank Fox", "penalty": 0, "state_interface": local("1006"),
    }  # fmt: skip
    data = json.loads(to_json(queues))
    assert data == [asdict(q) for q in queues]
    assert data[0]["options"]["musicclass"] == "default"


BROKEN = """\
stray = 1
[general]
persistentmembers = no

[tpl](!)
timeout = 20 ; a comment
member => Local/9000@agents/n,0,Tem Plate

[sales](tpl)
strategy = rrmemory
member => Local/1001@agents/n,0,"Adams, Alice",Local/1001@agents/n,no,5,yes
member => Local/1002@agents/n,x,Bob Brown
member => 1003
this line is junk
#include "more-queues.conf"
musiconhold = semi\\;colon
;-- a block comment
[ghost]
member => Local/1@x/n
--;
timeout = soon
member => Local/1004@agents/n,2,"Zoë 张",hint:1004@agents

[support
member => Local/1005@agents/n

[vip](nosuch)
strategy = bogus
maxlen = 5

[sales](+)
weight = 3
"""


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    path = tmp_path / "queues.conf"
    path.write_text(BROKEN, encoding="utf-8")
    return path


def test_broken_file_reports_bad_lines_and_imports_the_rest(broken: Path) -> None:
    errors: list[QueueImportError] = []
    queues = {q.name: q for q in import_queues(broken, errors=errors)}
    assert list(queues) == ["sales", "vip"]  # [support is a bad header; [ghost] is commented out
    sales = queues["sales"]
    assert sales.strategy == "rrmemory" and sales.weight == 3
    assert sales.timeout == 20  # from the template; `soon` is rejected
    assert sales.options["musiconhold"] == "semi;colon"
    assert sales.members == [
        Member(local("9000"), "Tem Plate", 0, local("9000")),
        Member(local("1001"), "Adams, Alice", 0, local("1001"), ringinuse=False, wrapuptime=5, paused=True),
        Member(local("1004"), "Zoë 张", 2, "hint:1004@agents"),
    ]
    assert queues["vip"].strategy == "ringall" and queues["vip"].maxlen == 5
    where = {e.line: str(e) for e in errors}
    assert sorted(where) == [1, 12, 13, 14, 15, 21, 24, 27, 28]
    assert all(text.startswith(f"{broken}:{line}: ") for line, text in where.items())
    assert "outside any [section]" in where[1]
    assert "penalty" in where[12] and "1003" in where[13] and "junk" in where[14]
    assert "#include" in where[15] and "soon" in where[21] and "[support" in where[24]
    assert "[nosuch]" in where[27] and "bogus" in where[28]


def test_without_an_error_list_the_first_error_is_raised_with_the_rest(broken: Path) -> None:
    with pytest.raises(QueueImportError) as info:
        import_queues(broken)
    exc = info.value
    assert exc.line == 1 and len(exc.errors) == 9 and "(and 8 more)" in str(exc)
    assert [q.name for q in exc.queues] == ["sales", "vip"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(QueueImportError, match=r"nope\.conf: cannot read") as info:
        import_queues(tmp_path / "nope.conf")
    assert info.value.line is None and info.value.queues == []


def test_agents_conf_names_agent_members(tmp_path: Path) -> None:
    queues = tmp_path / "queues.conf"
    queues.write_text("[q]\nmember => Agent/1001\nmember => Local/1002@agents,0,,Agent:1002\n"
                      "member => Agent/1003,0,Kept Name\n")  # fmt: skip
    agents = tmp_path / "agents.conf"
    agents.write_text("[general]\n[1001]\nfullname = Alice Adams\n[agents]\n"
                      "agent => 1002,4321,Bob Brown\nagent => 1003,1,Not Used\n")  # fmt: skip
    (q,) = import_queues(queues, agents=agents)
    assert [m.name for m in q.members] == ["Alice Adams", "Bob Brown", "Kept Name"]


def test_parse_member_defaults_and_errors() -> None:
    assert parse_member("SIP/100") == Member("SIP/100", "SIP/100", 0, "SIP/100")
    for bad in ("", "SIP/1,-1", "SIP/1,0,n,s,maybe", 'SIP/1,0,"open'):
        with pytest.raises(ValueError):
            parse_member(bad)


def test_cli(broken: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok = argparse.Namespace(file=str(site_file("queues.conf")), agents=None, json=False)
    assert main(ok) == 0
    assert [q["name"] for q in tomllib.loads(capsys.readouterr().out)["queue"]] == ["sales", "support"]
    assert main(argparse.Namespace(file=str(broken), agents=None, json=True)) == 1
    out, err = capsys.readouterr()
    assert [q["name"] for q in json.loads(out)] == ["sales", "vip"]
    assert err.count("skipped") == 9 and f"{broken}:14:" in err
    assert main(argparse.Namespace(file=str(broken) + ".missing", agents=None, json=False)) == 2
    assert "cannot read" in capsys.readouterr().err

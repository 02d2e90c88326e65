"""The built-in contact store: CSV import with bad rows (line numbers, counts, the good rows
still in), export round trip, and the `ctid contacts` commands through the plugin's
`ctid_cli` hook on a real SQLite file."""

from __future__ import annotations

import argparse
import json

import pytest

from ctid_plugins.screenpop.contacts.csvio import CsvError, export_csv, import_csv
from ctid_plugins.screenpop.contacts.store import ContactError, ContactStore, NotFound
from ctid_plugins.screenpop.numbers import NumberPlan
from ctid_plugins.screenpop.plugin import ScreenPop
from ctid.store.engine import make_engine

CSV = """number,name,company,level,vip,notes,custom,tier
+1 (202) 555-0111,Ann Lee,Acme,gold,yes,prefers email,"{""account"": ""A-17""}",platinum
+12025550112,Bob Ray,Acme,,no,,,
not-a-number,Nobody,,,,,,
+12025550113,Cy Dee,,,maybe,,,
+12025550114,Di Eve,,,,,"[1, 2]",
+12025550115,Too,Many,,,,,,extra
+12025550116,"Ed
Fox",Multi,,1,"two
lines",,

+12025550117,Gil Ho,,,,,"{broken",
+12025550112,Bob Ray,Acme Corp,silver,no,,,
"""


@pytest.fixture
def store(tmp_path) -> ContactStore:
    s = ContactStore(make_engine(f"sqlite:///{tmp_path}/ctid.db"), NumberPlan(country_code="1", national_prefix="1"))
    s.create_tables()
    return s


def test_csv_import_reports_bad_rows_by_line_and_keeps_the_good_ones(tmp_path, store):
    path = tmp_path / "contacts.csv"
    path.write_text(CSV, encoding="utf-8")
    report = import_csv(path, store)
    assert report.errors == [
        "line 4: number: 'not-a-number' is not a phone number (invalid_number)",
        "line 5: vip: expected true/false (yes/no, 1/0), got 'maybe'",
        "line 6: custom: expected an object of custom fields, got [1, 2]",
        "line 7: 9 fields, the header has 8",
        "line 12: custom: not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    ]
    assert (report.rows, report.inserted, report.updated) == (9, 3, 0)  # Bob twice: the later row wins
    ann = store.get("+12025550111")
    assert ann["name"] == "Ann Lee" and ann["vip"] is True
    assert ann["custom"] == {"account": "A-17", "tier": "platinum"}  # an extra column is a custom field
    assert store.get("+12025550112")["company"] == "Acme Corp" and store.get("+12025550112")["level"] == "silver"
    ed = store.get("+12025550116")
    assert (ed["name"], ed["notes"], ed["vip"]) == ("Ed\nFox", "two\nlines", True)

    # importing again updates; a file without the number column is refused as a whole
    again = import_csv(path, store)
    assert (again.inserted, again.updated, len(again.errors)) == (0, 3, 5)
    bad = tmp_path / "bad.csv"
    bad.write_text("name,company\nAnn,Acme\n")
    with pytest.raises(CsvError, match="line 1: no 'number' column"):
        import_csv(bad, store)
    bad.write_bytes("number,name\n+12025550119,Zo\xe9\n".encode("latin-1"))
    with pytest.raises(CsvError, match="line 2: not UTF-8 text"):
        import_csv(bad, store)
    assert store.get("+12025550119") is None


def test_export_round_trips(tmp_path, store):
    store.add({"number": "+8613812345678", "name": "Wang Fang", "company": "Kite, Ltd", "vip": True,
               "notes": 'says "hi"', "custom": {"city": "Shenzhen", "orders": 3}})
    store.add({"number": "2025550111", "name": "Ann"})  # national: +1 by the site's plan
    out = tmp_path / "out.csv"
    assert export_csv(out, store) == 2
    other = ContactStore(make_engine(f"sqlite:///{tmp_path}/other.db"), store.plan)
    other.create_tables()
    report = import_csv(out, other)
    assert report.errors == [] and report.inserted == 2
    strip = lambda c: {k: v for k, v in c.items() if k not in ("created", "updated")}  # noqa: E731
    assert [strip(c) for c in other.all()] == [strip(c) for c in store.all()]
    assert other.get("+8613812345678")["custom"] == {"city": "Shenzhen", "orders": 3}


def test_store_edit_delete_search(store):
    store.add({"number": "+12025550111", "name": "Ann Lee", "company": "Acme"})
    with pytest.raises(ContactError, match="already has a contact"):
        store.add({"number": "1-202-555-0111"})
    assert store.edit("+12025550111", {"notes": "call back", "number": "+12025550199"})["number"] == "+12025550199"
    with pytest.raises(NotFound):
        store.edit("+12025550111", {"notes": "x"})
    assert [c["name"] for c in store.search("acm")] == ["Ann Lee"]
    assert [c["name"] for c in store.search("0199")] == ["Ann Lee"]
    assert [c["name"] for c in store.search("100%")] == []  # LIKE wildcards are escaped
    assert store.delete("+12025550199") is True and store.delete("+12025550199") is False


def _parser() -> argparse.ArgumentParser:
    """The `ctid` command line as cli.py builds it for installed plugins: the plugin's hook adds its commands."""
    parser = argparse.ArgumentParser(prog="ctid")
    ScreenPop().ctid_cli(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(*argv: str) -> int:
    args = _parser().parse_args(list(argv))
    return args.func(args)


def test_contacts_cli(tmp_path, capsys):
    config = tmp_path / "site.toml"
    config.write_text(f"""site = "hq"
[database]
url = "sqlite:///{tmp_path}/ctid.db"
[[driver]]
kind = "asterisk"
[plugins]
enabled = ["screenpop"]
[plugins.screenpop]
country_code = "86"
""")
    path = tmp_path / "in.csv"
    path.write_text("number,name,vip\n13812345678,Wang Fang,yes\n010 1234 5678,Li Wei,no\nabc,Bad,no\n")
    assert _run("contacts", "import", str(path), "-c", str(config)) == 1  # done, with a refused row
    out, err = capsys.readouterr()
    assert f"{path}: line 4: number: 'abc' is not a phone number (invalid_number)" in err
    assert "3 rows: 2 added, 0 updated, 1 refused" in out

    assert _run("contacts", "add", "+8621 5555 0000", "--name", "Zhou", "--vip", "--set", "tier=gold", "-c", str(config)) == 0
    added = json.loads(capsys.readouterr().out)
    assert (added["number"], added["vip"], added["custom"]) == ("+862155550000", True, {"tier": "gold"})
    assert _run("contacts", "edit", "+862155550000", "--notes", "VIP line", "--set", "city=Shanghai", "--unset", "tier",
                "-c", str(config)) == 0
    edited = json.loads(capsys.readouterr().out)
    assert edited["notes"] == "VIP line" and edited["custom"] == {"city": "Shanghai"}
    assert _run("contacts", "search", "wang", "--json", "-c", str(config)) == 0
    assert [json.loads(line)["number"] for line in capsys.readouterr().out.splitlines()] == ["+8613812345678"]
    assert _run("contacts", "delete", "+8613812345678", "-c", str(config)) == 0
    assert _run("contacts", "delete", "+8613812345678", "-c", str(config)) == 1
    assert "no contact with number +8613812345678" in capsys.readouterr().err
    out_csv = tmp_path / "out.csv"
    assert _run("contacts", "export", str(out_csv), "--database", f"sqlite:///{tmp_path}/ctid.db") == 0
    assert out_csv.read_text().splitlines()[0] == "number,name,company,level,vip,notes,custom"
    assert len(out_csv.read_text().splitlines()) == 3  # Li Wei and Zhou

    config.write_text(config.read_text() + "country_code = 1\ncolour = 'red'\n")
    with pytest.raises(SystemExit) as exit_:
        _run("contacts", "search", "-c", str(config))
    assert exit_.value.code == 2


def test_the_installed_ctid_command_has_the_contacts_commands():
    from ctid.cli import build_parser

    args = build_parser().parse_args(["contacts", "search", "ann", "--database", "sqlite://"])
    assert args.text == "ann" and callable(args.func)

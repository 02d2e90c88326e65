"""Config validation: every error with its key path, all reported at once, nothing half-starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctid import config
from ctid.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_example_config_is_valid():
    cfg = config.load(REPO / "config" / "ctid.toml")
    assert cfg.site == "hq"
    assert cfg.bus.pub == "tcp://127.0.0.1:5560" and cfg.bus.req == "tcp://127.0.0.1:5561"
    assert cfg.database.url == "sqlite:///var/ctid.db"
    (driver,) = cfg.drivers
    assert (driver.kind, driver.name, driver.host, driver.port, driver.username) == ("asterisk", "asterisk", "127.0.0.1", 5038, "ctid")
    assert "change-me" not in repr(driver)  # secrets never print


def test_every_error_is_reported_with_its_key_path(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'site = "h q"\n'
        "[bus]\npub = \"tcp://127.0.0.1\"\nreq = 5\nspeed = 1\n"
        "[database]\nurl = \"nowhere\"\n"
        "[log]\nlevel = \"LOUD\"\n"
        "[[driver]]\nhost = \"pbx\"\nport = 70000\n"
        "[[driver]]\nkind = \"asterisk\"\nsecret = \"x\"\nsecret_env = \"CTID_TEST_UNSET_VAR\"\n"
    )
    with pytest.raises(config.ConfigError) as info:
        config.load(bad)
    errors = "\n".join(info.value.errors)
    for expected in (
        "site: 'h q' may only hold",
        "bus.pub: 'tcp://127.0.0.1' is not a ZeroMQ endpoint",
        "bus.req: expected str, got int 5",
        "bus.speed: unknown key",
        "database.url: 'nowhere' is not an SQLAlchemy URL",
        "log.level: 'LOUD'",
        "driver[0].kind: required key is missing",
        "driver[0].port: 70000 is not a TCP port",
        "driver[1]: give only one of secret, secret_env, secret_file",
        "driver[1].secret_env: environment variable CTID_TEST_UNSET_VAR is not set",
    ):
        assert expected in errors, expected
    assert len(info.value.errors) == 10


def test_not_toml_and_missing_file(tmp_path):
    bad = tmp_path / "x.toml"
    bad.write_text("site = \n")
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.load(bad)
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load(tmp_path / "missing.toml")


def test_secret_from_environment_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CTID_AMI", "s3cret")
    secret_file = tmp_path / "ami.secret"
    secret_file.write_text("from-file\n")
    secret_file.chmod(0o600)  # readable by the daemon's user only, as config.py insists
    cfg = config.parse({"site": "hq", "driver": [
        {"kind": "asterisk", "name": "a", "secret_env": "CTID_AMI"},
        {"kind": "asterisk", "name": "b", "secret_file": str(secret_file)},
    ]})
    assert [d.secret for d in cfg.drivers] == ["s3cret", "from-file"]


def test_duplicate_driver_names_and_driver_options():
    with pytest.raises(config.ConfigError, match=r"driver\[1\].name: duplicate driver name 'asterisk'"):
        config.parse({"site": "hq", "driver": [{"kind": "asterisk"}, {"kind": "asterisk"}]})
    cfg = config.parse({"site": "hq", "driver": [{"kind": "asterisk", "wrapup": {"sales": 10}}]})
    assert cfg.drivers[0].options == {"wrapup": {"sales": 10}}


def test_check_config_command(tmp_path, capsys):
    assert main(["check-config", "-c", str(REPO / "config" / "ctid.toml")]) == 0
    assert "OK" in capsys.readouterr().out
    unknown_kind = tmp_path / "k.toml"
    unknown_kind.write_text('site = "hq"\n[[driver]]\nkind = "nortel"\n')
    assert main(["check-config", "-c", str(unknown_kind)]) == 2
    err = capsys.readouterr().err
    assert "driver[0].kind: no driver of kind 'nortel'" in err and "asterisk" in err


def test_check_config_runs_the_plugins_own_checks(tmp_path, capsys):
    """check-config loads the enabled plugins as the daemon would and asks each to check its table."""
    cfg = tmp_path / "p.toml"
    cfg.write_text('site = "hq"\n[[driver]]\nkind = "asterisk"\n'
                   '[plugins]\nenabled = ["screenpop", "nosuchplugin"]\n[plugins.screenpop]\ndeadline = "soon"\n')
    assert main(["check-config", "-c", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "plugins.enabled: nosuchplugin: LookupError: not installed" in err
    assert "plugins.screenpop.deadline" in err


def test_run_refuses_a_bad_config_before_starting(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('site = "hq"\n')
    assert main(["run", "-c", str(bad)]) == 2
    assert "driver: at least one [[driver]] is required" in capsys.readouterr().err


def test_imported_queues_are_valid_config(tmp_path, capsys):
    """What `ctid import asterisk-queues` prints can be pasted into the site config as is."""
    conf = REPO.parent / "shared" / "ami" / "config" / "queues-c.conf"
    if not conf.exists():
        pytest.skip("shared/ami is not beside the repo")
    assert main(["import", "asterisk-queues", str(conf)]) == 0
    site = tmp_path / "site.toml"
    site.write_text((REPO / "config" / "ctid.toml").read_text() + "\n" + capsys.readouterr().out)
    cfg = config.load(site)
    assert [q.name for q in cfg.queues] == ["sales", "support", "vip"]
    sales = cfg.queues[0]
    assert (sales.strategy, sales.servicelevel, sales.wrapuptime) == ("rrmemory", 20, 1)
    assert sales.members[0]["interface"] == "Local/1001@agents/n"


def test_queue_tables_are_checked():
    with pytest.raises(config.ConfigError) as info:
        config.parse({"site": "hq", "driver": [{"kind": "asterisk"}],
                      "queue": [{"name": "a", "timeout": "x", "members": [{"penalty": 1}]}, {"name": "a"}]})
    text = "\n".join(info.value.errors)
    assert "queue[0].timeout: expected int" in text
    assert "queue[0].members[0].interface: required key is missing" in text
    assert "queue[1].name: duplicate queue 'a'" in text

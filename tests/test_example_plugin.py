"""The tutorial's plugin (plugins/examples/ctid-callcount), installed from its own pyproject,
found through its entry point, running in a real daemon; plus the plugin docs' completeness."""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from helpers import ScriptedAmi, frame, request, site_config, wait_for
from ctid import config as ctid_config, hookspecs
from ctid.cli import build_parser
from ctid.daemon import Daemon

ROOT = Path(__file__).resolve().parents[1]
HOOKS = [name for name, obj in vars(hookspecs).items() if name.startswith("ctid_") and callable(obj)]


def installed() -> None:
    if "callcount" not in {ep.name for ep in entry_points(group="ctid.plugins")}:
        pytest.fail("the example plugin is not installed: tox installs plugins/examples/ctid-callcount")


async def test_example_plugin_counts_calls_in_a_daemon(tmp_path):
    installed()
    pbx = ScriptedAmi()
    port = await pbx.start()
    base = site_config(tmp_path, port, resync_timeout=1)
    cfg = ctid_config.Config(base.site, base.bus, base.database, base.log, base.drivers,
                             ctid_config.PluginsConfig(enabled=("callcount",), options={"callcount": {"min_talk": 0}}), "test")
    daemon = Daemon(cfg)
    await daemon.start()
    try:
        await wait_for(lambda: daemon.counters.get("driver.asterisk.resyncs") >= 1)
        chan = dict(Channel="SIP/t-1", ChannelState=6, CallerIDNum="+12025550111", Context="inbound", Exten="100",
                    Uniqueid="1.1", Linkedid="1.1")
        pbx.push(frame(Event="Newchannel", **chan) + frame(Event="Newstate", **chan)
                 + frame(Event="QueueCallerJoin", **chan, Queue="sales", Position=1)
                 + frame(Event="QueueCallerAbandon", **chan, Queue="sales", Position=1, OriginalPosition=1, HoldTime=3)
                 + frame(Event="Hangup", **chan, Cause=16))
        await wait_for(lambda: daemon.counters.get("plugins.callcount.events") >= 1)
        reply = await request(daemon.config.bus.req, {"op": "callcount.get"})
        assert reply == {"ok": True, "result": {"sales/timeout": 1}, "id": None}
    finally:
        await daemon.stop()
        await pbx.close()


def test_example_plugin_adds_its_cli_command_and_is_listed(capsys):
    installed()
    args = build_parser().parse_args(["callcount", "--queue", "sales"])
    assert args.queue == "sales" and callable(args.func)
    assert build_parser().parse_args(["plugins"]).func(build_parser().parse_args(["plugins"])) == 0
    out = capsys.readouterr().out
    assert re.search(r"callcount\s+plugin\s+0\.1\.0\s+no\s+ok", out)
    assert re.search(r"asterisk\s+driver", out)


def test_bad_plugin_config_is_refused_with_the_key_path(tmp_path):
    installed()
    base = site_config(tmp_path, 5038)
    cfg = ctid_config.Config(base.site, base.bus, base.database, base.log, base.drivers,
                             ctid_config.PluginsConfig(enabled=("callcount",), options={"callcount": {"min_talk": -1}}), "t")
    with pytest.raises(ctid_config.ConfigError, match=r"plugins\.callcount\.min_talk: expected a number"):
        Daemon(cfg)


def test_every_hook_is_documented_and_tested():
    """As datasette does: a hook without docs or without a test fails the suite."""
    doc = (ROOT / "docs" / "plugins.md").read_text()
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    tests += (ROOT / "plugins" / "examples" / "ctid-callcount" / "ctid_callcount.py").read_text()
    assert HOOKS, "no hooks found"
    for hook in HOOKS:
        assert f"| `{hook}` |" in doc, f"{hook} is missing from the hook reference in docs/plugins.md"
        assert re.search(rf"def {hook}\(", tests), f"{hook} has no implementation exercised by a test"
        assert getattr(hookspecs, hook).__doc__, f"{hook} has no docstring"

"""Plugin isolation with deliberately broken plugins, through a real daemon and bus."""

from __future__ import annotations

import asyncio
import threading

import pytest

from helpers import ScriptedAmi, Subscriber, frame, request, site_config, wait_for
from ctid import config as ctid_config
from ctid.bus import RequestError
from ctid.daemon import Daemon
from ctid.hookspecs import hookimpl


class Recorder:
    """A well-behaved plugin: records every event it is given, in order."""

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.started = self.stopped = False

    @hookimpl
    def ctid_startup(self, ctx):
        self.started = True

    @hookimpl
    def ctid_event(self, event):
        self.seqs.append(event["seq"])

    @hookimpl
    def ctid_shutdown(self):
        self.stopped = True


class Raiser:
    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def ctid_event(self, event, ctx):
        self.calls += 1
        raise RuntimeError("boom")


class Hanger:
    """Blocks its thread forever (well, until the test ends): must not block the loop."""

    release = threading.Event()

    @hookimpl
    def ctid_event(self, event):
        self.release.wait(30)


class SlowAsync:
    @hookimpl
    async def ctid_event(self, event):
        await asyncio.sleep(10)


class Publisher:
    """Publishes an event of its own from its worker thread for each call.offered."""

    @hookimpl
    def ctid_event_types(self):
        return {"call.offered"}

    @hookimpl
    def ctid_event(self, event, ctx):
        ctx.publish({"type": "screenpop.pop", "agent": "1001", "call_id": event["call_id"]})
        ctx.count("pops")

    @hookimpl
    def ctid_request_ops(self, ctx):
        def echo(request):
            """echo the request back"""
            if request.get("refuse"):
                raise RequestError("refused", "as asked")
            return {"echo": request.get("text")}

        return {"example.echo": echo}


class BadStartup:
    @hookimpl
    def ctid_startup(self):
        raise ValueError("cannot start")

    @hookimpl
    def ctid_event(self, event):
        pass


class ConfigChecker:
    @hookimpl
    def ctid_config_check(self, options):
        return [] if isinstance(options.get("history"), int) else ["history: expected an integer"]


def call(uid: str) -> bytes:
    chan = dict(Channel=f"SIP/t-{uid}", ChannelState=6, CallerIDNum="+12025550111", CallerIDName="Ann", Context="inbound",
                Exten="5551000", Uniqueid=uid, Linkedid=uid)
    return frame(Event="Newchannel", **chan) + frame(Event="Newstate", **chan) + frame(Event="Hangup", **chan, Cause=16)


def with_plugins(tmp_path, port, enabled, **plugin_options):
    cfg = site_config(tmp_path, port, resync_timeout=1)
    raw_plugins = ctid_config.PluginsConfig(enabled=tuple(enabled), timeout=0.3, max_failures=3, options=plugin_options)
    return ctid_config.Config(cfg.site, cfg.bus, cfg.database, cfg.log, cfg.drivers, raw_plugins, "test")


async def test_broken_plugins_are_disabled_and_lose_nothing_for_the_others(tmp_path):
    Hanger.release.clear()
    recorder, raiser = Recorder(), Raiser()
    plugins = {"recorder": recorder, "raiser": raiser, "hanger": Hanger(), "slow": SlowAsync(), "badstart": BadStartup()}
    pbx = ScriptedAmi()
    port = await pbx.start()
    daemon = Daemon(with_plugins(tmp_path, port, list(plugins)), extra_plugins=plugins)
    await daemon.start()
    try:
        await wait_for(lambda: daemon.counters.get("driver.asterisk.resyncs") >= 1)
        assert recorder.started
        for i in range(20):
            pbx.push(call(f"{i}.1"))
        await wait_for(lambda: daemon.bus.seq >= 42)  # driver_up, resynced, 20 x (offered, cleared)
        # The loop still answers requests while a plugin's thread hangs.
        assert (await request(daemon.config.bus.req, {"op": "ping"}, timeout=1))["ok"]
        await wait_for(lambda: all(daemon.plugins.plugins[n].disabled for n in ("raiser", "hanger", "slow", "badstart")), timeout=10)
        status = {row["name"]: row for row in (await request(daemon.config.bus.req, {"op": "plugins"}))["result"]}
        assert "3 failures in a row" in status["raiser"]["disabled"] and "RuntimeError: boom" in status["raiser"]["disabled"]
        assert "no answer within 0.3s" in status["hanger"]["disabled"]
        assert "no answer within 0.3s" in status["slow"]["disabled"]
        assert "startup failed" in status["badstart"]["disabled"]
        assert status["recorder"]["disabled"] is None
        assert raiser.calls == 3  # disabled: no more calls
        # The recorder saw every event, in order, whatever the others did.
        await wait_for(lambda: len(recorder.seqs) == daemon.bus.seq, timeout=10)
        assert recorder.seqs == list(range(1, daemon.bus.seq + 1))
        assert daemon.counters.get("plugins.raiser.failures") == 3
        assert daemon.counters.get("plugins.hanger.timeouts") >= 3
    finally:
        Hanger.release.set()
        await daemon.stop()
        await pbx.close()
    assert recorder.stopped


async def test_plugin_publishes_events_and_serves_request_ops(tmp_path):
    pbx = ScriptedAmi()
    port = await pbx.start()
    daemon = Daemon(with_plugins(tmp_path, port, ["publisher"]), extra_plugins={"publisher": Publisher()})
    sub = Subscriber(daemon.config.bus.pub, "screenpop.")
    await daemon.start()
    try:
        # push() needs the driver logged in (bus.subscribe came first under load: IndexError)
        await wait_for(lambda: daemon.counters.get("driver.asterisk.resyncs") >= 1)
        await wait_for(lambda: daemon.counters.get("bus.subscribe") > 0)
        pbx.push(call("7.1"))
        topic, pop = await sub.recv(timeout=10)
        assert topic == "screenpop.hq.1001.pop" and pop["call_id"] == "7.1" and pop["source"] == "publisher"
        # The plugin counts on its own thread after handing the pop to the loop: it may come later.
        await wait_for(lambda: daemon.counters.get("plugins.publisher.pops") == 1)
        reply = await request(daemon.config.bus.req, {"op": "example.echo", "text": "hi", "id": 3})
        assert reply == {"ok": True, "result": {"echo": "hi"}, "id": 3}
        reply = await request(daemon.config.bus.req, {"op": "example.echo", "refuse": True})
        assert reply["error"] == {"code": "refused", "message": "as asked"}
        # a clear refusal is the op's answer: not a plugin failure, nothing logged as one
        assert daemon.counters.get("plugins.publisher.failures") == 0
        ops = (await request(daemon.config.bus.req, {"op": "ops"}))["result"]
        assert ops["example.echo"] == "echo the request back (plugin publisher)"
    finally:
        sub.close()
        await daemon.stop()
        await pbx.close()


def test_missing_plugin_is_skipped_and_config_errors_stop_the_start(tmp_path):
    daemon = Daemon(with_plugins(tmp_path, 5038, ["nosuchplugin"]))
    assert "not installed" in daemon.plugins.failed["nosuchplugin"]
    with pytest.raises(ctid_config.ConfigError, match=r"plugins.checker.history: expected an integer"):
        Daemon(with_plugins(tmp_path, 5038, ["checker"], checker={"history": "x"}), extra_plugins={"checker": ConfigChecker()})


def test_plugins_config_table():
    cfg = ctid_config.parse({"site": "hq", "driver": [{"kind": "asterisk"}],
                             "plugins": {"enabled": ["screenpop"], "timeout": 1, "screenpop": {"history": 5}}})
    assert cfg.plugins.enabled == ("screenpop",) and cfg.plugins.options == {"screenpop": {"history": 5}}
    with pytest.raises(ctid_config.ConfigError) as info:
        ctid_config.parse({"site": "hq", "driver": [{"kind": "asterisk"}], "plugins": {"enabled": "x", "qa": {}, "speed": 2}})
    text = "\n".join(info.value.errors)
    assert "plugins.enabled: expected list" in text
    assert "plugins.qa: settings for a plugin that is not in plugins.enabled" in text
    assert "plugins.speed: unknown key" in text


class Router:
    @hookimpl
    def ctid_route(self, request, decision):
        if request["caller"] == "+15550000666":
            return {"veto": True, "reason": "blacklisted"}
        return None


class BrokenRouter:
    @hookimpl
    def ctid_route(self, decision):
        raise KeyError("agent")


def test_route_hook_first_result_wins_and_a_broken_router_is_skipped(tmp_path):
    daemon = Daemon(with_plugins(tmp_path, 5038, ["broken", "router"]),
                    extra_plugins={"broken": BrokenRouter(), "router": Router()})
    decision = {"agent": "1001", "queue": "sales"}
    assert daemon.plugins.route({"caller": "+12025550100"}, decision) == decision
    assert daemon.plugins.route({"caller": "+15550000666"}, decision) == {"veto": True, "reason": "blacklisted"}
    assert daemon.counters.get("plugins.broken.failures") == 2
    assert daemon.counters.get("plugins.router.route_changes") == 1

"""The screen pop plugin in a real daemon: a stand-in PBX rings agent 1001 with a queue call,
the pop reaches 1001's desktop (and nobody else's) with the customer, the history and the
call data; it goes out partial, but goes out, when the HTTP CRM fails."""

from __future__ import annotations

import asyncio
from importlib.metadata import entry_points

import pytest
from sqlalchemy import inspect

from helpers import ScriptedAmi, Subscriber, request, wait_for
from screenpop_support import ANN, FakeCrm, pop_config, queue_call, seed
from ctid.config import ConfigError
from ctid.daemon import Daemon
from ctid_plugins.screenpop.plugin import ScreenPop, plugin


async def _started(daemon: Daemon, subscribers: int) -> None:
    await daemon.start()
    await wait_for(lambda: daemon.counters.get("driver.asterisk.resyncs") >= 1)
    await wait_for(lambda: daemon.counters.get("bus.subscribe") >= subscribers)


async def test_the_ringing_agent_gets_the_pop_with_customer_history_and_call_data(tmp_path):
    seed(f"sqlite:///{tmp_path}/ctid.db")
    pbx = ScriptedAmi()
    port = await pbx.start()
    daemon = Daemon(pop_config(tmp_path, port, history=2), extra_plugins={"screenpop": ScreenPop()})
    mine = Subscriber(daemon.config.bus.pub, "screenpop.hq.1001.")
    other = Subscriber(daemon.config.bus.pub, "screenpop.hq.1002.")
    try:
        await _started(daemon, 2)
        ringing, answered = queue_call("10.1", ANN)
        pbx.push(ringing)
        topic, pop = await mine.recv(timeout=10)
        assert topic == "screenpop.hq.1001.pop"
        assert (pop["type"], pop["phase"], pop["agent"], pop["call_id"], pop["source"]) == \
            ("screenpop.pop", "ringing", "1001", "10.1", "screenpop")
        assert pop["known"] is True and pop["reason"] is None and pop["partial"] is False and pop["errors"] == []
        assert pop["caller"] == ANN and pop["caller_raw"] == ANN and pop["caller_name"] == "Caller"
        assert pop["contact"] == {"name": "Ann Lee", "company": "Acme", "level": "gold", "vip": True,
                                  "notes": "prefers email", "custom": {"account": "A-17"}, "source": "contacts"}
        assert pop["region"] == "US, Washington DC"
        # the last 2 calls, newest first, with what the desktop shows of each
        assert [h["call_id"] for h in pop["history"]] == ["old.3", "old.2"]
        assert pop["history"][0] == {"call_id": "old.3", "date": "2023-11-17T05:46:40Z", "t_offered": 1_700_200_000.0,
                                     "site": "hq", "queue": "sales", "agent": "1001", "direction": "inbound",
                                     "disposition": "answered", "wait": 5.0, "talk": 30.0, "recording": "/rec/old.3.wav"}
        assert pop["history"][1]["disposition"] == "abandoned" and pop["history"][1]["agent"] is None
        assert pop["call"] == {"queue": "sales", "called": "5551000", "direction": "inbound", "device": "1001", "wait": None}
        assert pop["tickets"] == [] and pop["url"] is None and pop["x"] == {}

        pbx.push(answered)
        topic, pop = await mine.recv(timeout=10)
        assert topic == "screenpop.hq.1001.pop" and pop["phase"] == "answered" and pop["call"]["wait"] == 3.0
        assert pop["contact"]["name"] == "Ann Lee" and len(pop["history"]) == 2

        # an unknown number: a pop all the same, new number, region from the prefix table
        ringing, _ = queue_call("11.1", "008613812345678")
        pbx.push(ringing)
        _, pop = await mine.recv(timeout=10)
        assert (pop["caller"], pop["known"], pop["reason"], pop["contact"], pop["history"]) == \
            ("+8613812345678", False, "not_found", None, [])
        assert pop["region"] == "China, mobile (China Mobile)" and pop["partial"] is False

        # no caller id from the PBX: no lookup, still a pop
        ringing, _ = queue_call("12.1", "anonymous")
        pbx.push(ringing)
        _, pop = await mine.recv(timeout=10)
        assert (pop["caller"], pop["known"], pop["reason"], pop["region"]) == (None, False, "no_caller_id", None)

        await other.drain(quiet=0.5)
        assert other.events == []  # 1002's desktop never saw a pop
        assert daemon.counters.get("plugins.screenpop.pops") == 4
        assert daemon.counters.get("plugins.screenpop.no_lookup_no_caller_id") == 1
        # the history's index on cdr (caller, t_offered) was added in the background
        indexes = inspect(daemon.store.engine).get_indexes("cdr")
        assert {"name": "ix_cdr_caller_t_offered", "column_names": ["caller", "t_offered"]}.items() <= \
            next(ix for ix in indexes if ix["name"] == "ix_cdr_caller_t_offered").items()
    finally:
        mine.close()
        other.close()
        await daemon.stop()
        await pbx.close()


async def test_withheld_garbage_and_ivr_data(tmp_path):
    seed(f"sqlite:///{tmp_path}/ctid.db")
    daemon = Daemon(pop_config(tmp_path, 5038, country_code="1", national_prefix="1"),
                    extra_plugins={"screenpop": ScreenPop()})
    daemon.drivers.clear()  # the test dispatches the driver's events itself
    sub = Subscriber(daemon.config.bus.pub, "screenpop.hq.1001.")
    await daemon.start()
    try:
        await wait_for(lambda: daemon.counters.get("bus.subscribe") >= 1)
        base = {"type": "call.delivered", "ts": 1.0, "source": "asterisk", "queue": "vip", "agent": "1001",
                "device": "1001", "direction": "inbound", "called": "800", "caller_name": None}
        daemon.dispatch({**base, "call_id": "w.1", "caller": None, "x": {"withheld": True}})
        daemon.dispatch({**base, "call_id": "g.1", "caller": "sip:bob@example.com"})
        # a national number: the site's plan makes it +1...; IVR data under x reaches the desktop
        daemon.dispatch({**base, "call_id": "n.1", "caller": "(202) 555-0111", "x": {"ivr_digits": "2", "account": "A-17"}})
        pops = {}
        for _ in range(3):
            _, pop = await sub.recv(timeout=10)
            pops[pop["call_id"]] = pop
        assert (pops["w.1"]["known"], pops["w.1"]["reason"], pops["w.1"]["x"]) == (False, "withheld", {"withheld": True})
        assert (pops["g.1"]["caller"], pops["g.1"]["caller_raw"], pops["g.1"]["reason"]) == \
            (None, "sip:bob@example.com", "invalid_number")
        assert pops["n.1"]["caller"] == ANN and pops["n.1"]["contact"]["name"] == "Ann Lee"
        assert pops["n.1"]["x"] == {"ivr_digits": "2", "account": "A-17"} and pops["n.1"]["call"]["queue"] == "vip"
        # the cdr holds the PBX's own form (+1...), found through the normalized number
        assert len(pops["n.1"]["history"]) == 3
        # outbound calls and events without an agent do not pop
        daemon.dispatch({**base, "call_id": "o.1", "caller": "1001", "direction": "outbound"})
        daemon.dispatch({**base, "call_id": "a.1", "caller": ANN, "agent": None})
        await wait_for(lambda: daemon.counters.get("plugins.screenpop.skipped_no_agent") == 1)
        assert daemon.counters.get("plugins.screenpop.skipped_direction") == 1
    finally:
        sub.close()
        await daemon.stop()


async def test_partial_pops_when_the_http_crm_fails(tmp_path):
    seed(f"sqlite:///{tmp_path}/ctid.db")
    crm = FakeCrm()
    pbx = ScriptedAmi()
    port = await pbx.start()
    http = {"url": crm.url, "timeout": 2.0, "retries": 1, "retry_backoff": 0.01,
            "mapping": {"name": "customer.name", "level": "customer.tier", "tickets": "open_tickets"}}
    cfg = pop_config(tmp_path, port, adapters=["http", "contacts"], deadline=0.3, http=http)
    daemon = Daemon(cfg, extra_plugins={"screenpop": ScreenPop()})
    sub = Subscriber(daemon.config.bus.pub, "screenpop.hq.1001.")
    numbers = {"hang": "+12025550101", "500": "+12025550102", "junk": "+12025550103", "ok": "+12025550104"}
    crm.answers = {numbers["hang"]: ("hang", None), numbers["500"]: ("status", 500), numbers["junk"]: ("raw", b"<html>"),
                   numbers["ok"]: ("json", {"customer": {"name": "Bo Chen", "tier": "silver"},
                                            "open_tickets": [{"id": "T-9", "subject": "router"}]})}
    try:
        await _started(daemon, 1)
        for i, key in enumerate(numbers):
            pbx.push(queue_call(f"2{i}.1", numbers[key])[0])
        pops = {}
        while len(pops) < 4:
            _, pop = await sub.recv(timeout=10)
            pops[pop["caller"]] = pop
        hang, e500, junk, ok = (pops[numbers[k]] for k in ("hang", "500", "junk", "ok"))
        assert hang["partial"] is True and hang["reason"] == "lookup_failed"
        assert hang["errors"] == [{"source": "http", "kind": "deadline", "error": "no answer within the 300 ms deadline"}]
        assert e500["partial"] is True and e500["errors"][0]["kind"] == "failed"
        assert e500["errors"][0]["error"] == "CRM answered HTTP 500 (2 attempts)" and crm.hits[numbers["500"]] == 2
        assert junk["partial"] is True and "not valid JSON" in junk["errors"][0]["error"]
        assert crm.hits[numbers["junk"]] == 1  # an invalid answer is not retried
        assert ok["partial"] is False and ok["known"] is True
        assert ok["contact"]["name"] == "Bo Chen" and ok["contact"]["level"] == "silver" and ok["contact"]["source"] == "http"
        assert ok["tickets"] == [{"id": "T-9", "subject": "router"}]
        assert daemon.counters.get("plugins.screenpop.partial") == 3
        assert daemon.counters.get("plugins.screenpop.deadline_missed.http") == 1
        assert daemon.counters.get("plugins.screenpop.lookup_errors.http") == 2

        # Ann: the HTTP CRM does not know her (404), the built-in store does: the next adapter wins
        pbx.push(queue_call("30.1", ANN)[0])
        _, pop = await sub.recv(timeout=10)
        assert pop["contact"]["source"] == "contacts" and pop["partial"] is False
    finally:
        sub.close()
        await daemon.stop()
        await pbx.close()
        crm.close()


async def test_contact_ops_on_the_bus(tmp_path):
    daemon = Daemon(pop_config(tmp_path, 5038), extra_plugins={"screenpop": ScreenPop()})
    daemon.drivers.clear()
    await daemon.start()
    req = daemon.config.bus.req
    try:
        reply = await request(req, {"op": "contacts.upsert", "number": "+8610 1234 5678", "name": "Li Wei", "vip": "yes"})
        assert reply["ok"] and reply["result"]["created"] is True
        assert reply["result"]["contact"]["number"] == "+861012345678" and reply["result"]["contact"]["vip"] is True
        reply = await request(req, {"op": "contacts.upsert", "number": "+861012345678", "company": "Kite"})
        assert reply["result"]["created"] is False and reply["result"]["contact"]["name"] == "Li Wei"
        assert (await request(req, {"op": "contacts.get", "number": "+861012345678"}))["result"]["company"] == "Kite"
        found = (await request(req, {"op": "contacts.search", "q": "kite"}))["result"]
        assert [c["number"] for c in found] == ["+861012345678"]
        bad = await request(req, {"op": "contacts.upsert", "number": "+1202", "vip": "maybe"})
        assert bad["error"] == {"code": "bad_request", "message": "vip: expected true/false (yes/no, 1/0), got 'maybe'"}
        bad = await request(req, {"op": "contacts.upsert", "number": "n/a"})
        assert bad["error"]["code"] == "bad_request" and bad["error"]["message"].startswith("number: 'n/a' is not a phone number")
        assert (await request(req, {"op": "contacts.delete", "number": "+861012345678"}))["result"] == {"deleted": "+861012345678"}
        missing = await request(req, {"op": "contacts.get", "number": "+861012345678"})
        assert missing["error"]["code"] == "not_found"
        ops = (await request(req, {"op": "ops"}))["result"]
        assert ops["contacts.search"].endswith("(plugin screenpop)")
        assert daemon.plugins.status()[0]["disabled"] is None  # refusals are answers, not failures
    finally:
        await daemon.stop()


def test_installed_entry_point_and_config_errors_with_key_paths(tmp_path):
    eps = {ep.name: ep for ep in entry_points(group="ctid.plugins")}
    assert "screenpop" in eps and eps["screenpop"].load() is plugin
    daemon = Daemon(pop_config(tmp_path, 5038))  # found through the entry point, not extra_plugins
    assert "screenpop" in daemon.plugins.plugins and not daemon.plugins.failed
    with pytest.raises(ConfigError) as info:
        Daemon(pop_config(tmp_path, 5038, adapters=["http", "nope"], deadline=-1, history="5", colour="red",
                          http={"url": "https://crm.example/lookup?n={number}", "retries": 9}))
    errors = "\n".join(info.value.errors)
    assert "plugins.screenpop.http.url: unknown field {number}" in errors
    assert "plugins.screenpop.http.retries: expected a number from 0 to 5, got 9" in errors
    assert "plugins.screenpop.adapters: unknown adapter 'nope' (available: contacts, http, url)" in errors
    assert "plugins.screenpop.deadline: expected seconds > 0 and <= 10, got -1" in errors
    assert "plugins.screenpop.history: expected a number of calls from 0 to 100, got '5'" in errors
    assert "plugins.screenpop.colour: unknown key" in errors


async def test_url_adapter_sends_the_filled_url_even_without_caller_id(tmp_path):
    url = "https://crm.example/pop?number={caller}&queue={queue}&call={call_id}"
    daemon = Daemon(pop_config(tmp_path, 5038, adapters=["url"], history=0, url={"url": url}),
                    extra_plugins={"screenpop": ScreenPop()})
    daemon.drivers.clear()
    sub = Subscriber(daemon.config.bus.pub, "screenpop.hq.1001.")
    await daemon.start()
    try:
        await wait_for(lambda: daemon.counters.get("bus.subscribe") >= 1)
        event = {"type": "call.established", "ts": 1.0, "call_id": "u.1", "agent": "1001", "queue": "sales & co",
                 "caller": ANN, "wait": 4.5}
        daemon.dispatch(event)
        daemon.dispatch({**event, "call_id": "u.2", "caller": None})
        _, first = await sub.recv(timeout=10)
        _, second = await sub.recv(timeout=10)
        assert first["url"] == "https://crm.example/pop?number=%2B12025550111&queue=sales%20%26%20co&call=u.1"
        assert first["phase"] == "answered" and first["call"]["wait"] == 4.5 and first["known"] is False
        assert second["url"] == "https://crm.example/pop?number=&queue=sales%20%26%20co&call=u.2"
    finally:
        sub.close()
        await daemon.stop()


async def test_answered_pop_never_overtakes_the_ringing_one(tmp_path):
    """The ringing pop waits for a hanging CRM until the deadline; the answered pop's own
    lookup (another URL) is answered at once, and still goes out second."""
    crm = FakeCrm()
    crm.answers.update({f"{ANN}/ringing": ("hang", None), f"{ANN}/answered": ("json", {"name": "Ann"})})
    http = {"url": crm.url + "&phase={phase}"}
    daemon = Daemon(pop_config(tmp_path, 5038, adapters=["http"], deadline=0.3, http=http),
                    extra_plugins={"screenpop": ScreenPop()})
    daemon.drivers.clear()
    sub = Subscriber(daemon.config.bus.pub, "screenpop.hq.1001.")
    await daemon.start()
    try:
        await wait_for(lambda: daemon.counters.get("bus.subscribe") >= 1)
        event = {"ts": 1.0, "call_id": "o.1", "agent": "1001", "caller": ANN}
        daemon.dispatch({**event, "type": "call.delivered"})
        await asyncio.sleep(0)
        daemon.dispatch({**event, "type": "call.established", "wait": 2.0})
        pops = [(await sub.recv(timeout=10))[1] for _ in range(2)]
        assert [(p["phase"], p["partial"]) for p in pops] == [("ringing", True), ("answered", False)]
        assert pops[1]["contact"]["name"] == "Ann"
    finally:
        sub.close()
        await daemon.stop()
        crm.close()

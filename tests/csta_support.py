"""Shared by the CSTA tests: one seeded call center through a wire and its driver's
parser and mapper, headless (the renderer's bytes straight into the parser), the
normalized story those events tell, a daemon site for the simulators, and a link to a
simulator with its mapper (`harness`)."""

from __future__ import annotations

import asyncio
from typing import Any

from helpers import free_port, wait_for
from ctid import config as ctid_config
from ctid.drivers.asterisk.mapper import AsteriskMapper
from ctid.drivers.asterisk.protocol import FrameParser as AmiParser
from ctid.drivers.asterisk.simrender import AmiRenderer
from ctid.drivers.csta.link import CstaLink, LinkOptions
from ctid.drivers.csta.mapper import CstaMapper
from ctid.drivers.csta.protocol import FrameParser as CstaParser, encode
from ctid.drivers.csta.routing import DefaultRoute
from ctid.drivers.csta.sim import CstaSimulator
from ctid.drivers.csta.simrender import CstaRenderer
from ctid.metrics import Counters
from ctid.sim import CallCenter, SimConfig

EPOCH = 1_700_000_000


def site(tmp_path, ami_port: int, csta_port: int, sim: CstaSimulator) -> ctid_config.Config:
    """A daemon config with both drivers: `pbx1` (Asterisk at `ami_port`) and `aes` (CSTA at
    `csta_port`, monitoring every station and split of `sim`)."""
    wrapup = {q.name: q.spec.wrapup for q in sim.model.queues.values()}
    raw = {
        "site": "hq",
        "bus": {"pub": f"tcp://127.0.0.1:{free_port()}", "req": f"tcp://127.0.0.1:{free_port()}", "security": "plain"},
        "database": {"url": f"sqlite:///{tmp_path}/ctid.db", "flush_interval": 0.05},
        "log": {"stats_interval": 0},
        "driver": [
            {"kind": "asterisk", "name": "pbx1", "host": "127.0.0.1", "port": ami_port, "username": "cti",
             "secret": "s", "wrapup": wrapup},
            {"kind": "csta", "name": "aes", "host": "127.0.0.1", "port": csta_port, "username": "cti", "secret": "s",
             "application_id": "ctid-test", "devices": sorted(sim.model.agents), "acd_devices": sorted(sim.model.queues),
             "wrapup": wrapup, "reason_codes": {code: reason for reason, code in sim.renderer.reasons.items()}},
        ],
    }
    return ctid_config.parse(raw, "test")


def asterisk_events(seed: int, until: float, config: SimConfig | None = None) -> list[dict[str, Any]]:
    model = CallCenter(config, seed=seed)
    renderer = AmiRenderer(model, EPOCH, model.seed)
    model.sinks.append(renderer)
    parser = AmiParser()
    mapper = AsteriskMapper(wrapup={q.name: q.spec.wrapup for q in model.queues.values()})
    events: list[dict[str, Any]] = []
    t = 0.0
    while t < until:
        t += 1.0
        model.advance(t)
        for _, data in renderer.take():
            for frame in parser.feed(data):
                events.extend(mapper.handle(frame, EPOCH + model.now))
    assert parser.errors == 0 and mapper.unknown == 0
    return events


def csta_run(seed: int, until: float, config: SimConfig | None = None) -> tuple[list[dict[str, Any]], CstaMapper]:
    model = CallCenter(config, seed=seed)
    renderer = CstaRenderer(model, EPOCH)
    model.sinks.append(renderer)
    parser = CstaParser()
    mapper = CstaMapper(stations=tuple(model.agents), wrapup={q.name: q.spec.wrapup for q in model.queues.values()},
                        reason_codes={code: reason for reason, code in renderer.reasons.items()})
    events: list[dict[str, Any]] = []
    t = 0.0
    while t < until:
        t += 1.0
        model.advance(t)
        data = b"".join(encode(name, {"monitorCrossRefID": "1", **fields}) for _, name, fields in renderer.take())
        for message in parser.feed(data):
            events.extend(mapper.handle(message, EPOCH + model.now))
    assert parser.errors == 0 and mapper.unknown == 0 and mapper.orphans == 0
    return events, mapper


CALL_KEYS = ("type", "queue", "agent", "caller", "caller_name", "called", "direction", "kind", "cause", "target",
             "disposition")
AGENT_KEYS = ("type", "agent", "queue", "reason", "duration")


def story(events: list[dict[str, Any]]) -> dict[str, Any]:
    """What happened, with each PBX's own ids and times taken out: calls in the order they
    were offered, each as the sequence of its events (recordings included; their paths are
    each PBX's own); agents' changes; waits, rings, talk times and recording durations (the
    harness stamps events with the virtual second they were read in)."""
    calls: dict[str, list[tuple[Any, ...]]] = {}
    timing: dict[str, list[tuple[str, float]]] = {}
    agents: list[tuple[Any, ...]] = []
    for e in events:
        if e["type"].startswith(("call.", "recording.")):
            # A cleared call's cause is each PBX's own code (Q.850 / ECMA-269): not part of the story.
            keys = CALL_KEYS if e["type"] != "call.cleared" else CALL_KEYS[:8]
            calls.setdefault(e["call_id"], []).append(tuple(e.get(k) for k in keys)
                                                      + ((e.get("x") or {}).get("withheld"),))
            for key in ("wait", "ring"):
                if e.get(key) is not None and e["type"] in ("call.established", "call.abandoned", "call.diverted"):
                    timing.setdefault(e["call_id"], []).append((f"{e['type']}.{key}", float(e[key])))
            if e["type"] == "recording.stopped":
                timing.setdefault(e["call_id"], []).append(("recording", float(e["duration"])))
        elif e["type"].startswith("agent.") and e["type"] != "agent.logged_on":
            agents.append(tuple(e.get(k) for k in AGENT_KEYS))
    # talk: from the (first) answer to the end, as the state measures it from the events' times
    answered: dict[str, float] = {}
    for e in events:
        if e["type"] == "call.established":
            answered.setdefault(e["call_id"], e["ts"])
        elif e["type"] == "call.cleared" and e["call_id"] in answered:
            timing.setdefault(e["call_id"], []).append(("talk", e["ts"] - answered[e["call_id"]]))
    order = list(calls)
    return {"calls": [calls[c] for c in order], "timing": [timing.get(c, []) for c in order], "agents": agents}


STATIONS = ("1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008")
QUEUES = ("sales", "support", "vip")


class Harness:
    def __init__(self, sim: CstaSimulator, port: int, secret: str = "pw", **options) -> None:
        self.sim = sim
        self.events: list[dict] = []
        self.counters = Counters()
        opts = LinkOptions("127.0.0.1", port, "cti", secret, stations=options.pop("stations", STATIONS),
                           acd_devices=options.pop("acd_devices", QUEUES), backoff_min=0.05, **options)
        self.mapper = CstaMapper("aes", stations=opts.stations,
                                 reason_codes={c: r for r, c in sim.renderer.reasons.items()})
        self.link = CstaLink("aes", opts, self.mapper, self.events.append, self.counters,
                             DefaultRoute(default="1003"))
        self.task = asyncio.ensure_future(self.link.run())

    def types(self, type_: str) -> list[dict]:
        return [e for e in self.events if e["type"] == type_]

    async def close(self) -> None:
        await self.link.stop()
        await asyncio.wait_for(self.task, 5)
        await self.sim.stop()


async def harness(secret: str | None = None, **options) -> Harness:
    sim = CstaSimulator(seed=11, traffic=False, secret=secret)
    _, port = await sim.start()
    h = Harness(sim, port, **options)
    await wait_for(lambda: h.counters.get("driver.aes.resyncs") >= 1, 5)
    return h

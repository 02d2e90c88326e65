"""Shared by the CSTA tests: one seeded call center through a wire and its driver's
parser and mapper, headless (the renderer's bytes straight into the parser), and the
normalized story those events tell."""

from __future__ import annotations

from typing import Any

from ctid.drivers.asterisk.mapper import AsteriskMapper
from ctid.drivers.asterisk.protocol import FrameParser as AmiParser
from ctid.drivers.asterisk.simrender import AmiRenderer
from ctid.drivers.csta.mapper import CstaMapper
from ctid.drivers.csta.protocol import FrameParser as CstaParser, encode
from ctid.drivers.csta.simrender import CstaRenderer
from ctid.sim import CallCenter, SimConfig

EPOCH = 1_700_000_000


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
    were offered, each as the sequence of its events; agents' changes; waits, rings and talk
    times (the harness stamps events with the virtual second they were read in)."""
    calls: dict[str, list[tuple[Any, ...]]] = {}
    timing: dict[str, list[tuple[str, float]]] = {}
    agents: list[tuple[Any, ...]] = []
    for e in events:
        if e["type"].startswith("call."):
            # A cleared call's cause is each PBX's own code (Q.850 / ECMA-269): not part of the story.
            keys = CALL_KEYS if e["type"] != "call.cleared" else CALL_KEYS[:8]
            calls.setdefault(e["call_id"], []).append(tuple(e.get(k) for k in keys)
                                                      + ((e.get("x") or {}).get("withheld"),))
            for key in ("wait", "ring"):
                if e.get(key) is not None and e["type"] in ("call.established", "call.abandoned", "call.diverted"):
                    timing.setdefault(e["call_id"], []).append((f"{e['type']}.{key}", float(e[key])))
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

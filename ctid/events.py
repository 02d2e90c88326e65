"""The normalized event model, version 1: the wire contract every driver lands in.

`docs/protocol.md` mirrors this module and a test keeps the two equal: every type
listed here is documented there and nothing is documented that is not here.

An event is a plain dict (it goes to msgpack as is). Drivers build the body
(`type` plus the fields below); the bus stamps the envelope (`v`, `seq`, `epoch`,
`site`, `source`) and derives the topic.
"""

from __future__ import annotations

from typing import Any, Mapping

PROTOCOL_VERSION = 1

#: First segment of every topic, followed by a dot.
CATEGORIES = ("call", "agent", "queue", "recording", "route", "screenpop", "system")

#: Keys present in every payload.
ENVELOPE = ("v", "seq", "epoch", "ts", "site", "source", "type")

#: Keys a call event carries where known (None when the PBX did not say).
CALL_FIELDS = ("call_id", "caller", "caller_name", "called", "queue", "agent", "device", "direction")

DIRECTIONS = ("inbound", "outbound", "internal")

#: How a call ended (`call.cleared`) or left a queue without an answer.
DISPOSITIONS = {
    "answered": "an agent or device answered the call",
    "abandoned": "the caller hung up while waiting in a queue or ringing",
    "timeout": "the queue's maximum wait ran out; the PBX took the call out of the queue",
    "redirected": "the call was moved out of the queue (redirect, transfer) before an answer",
    "unanswered": "the call ended before it was queued or answered",
    "failed": "the PBX could not set the call up",
    "lost": "the call ended while ctid's link to the PBX was down; times are bounds",
}

#: Every event type of v1 with a one-line meaning. Extra, driver-specific keys go under `x`.
EVENT_TYPES: dict[str, str] = {
    "call.offered": "a new call reached the PBX (inbound) or was started (outbound, internal)",
    "call.queued": "the call entered a queue (`queue`, `position`)",
    "call.delivered": "the call is ringing at an agent/device (`agent`, `device`, `queue`)",
    "call.established": "an agent/device answered (`agent`, `device`, `queue`, `wait`)",
    "call.held": "the agent put the call on hold (`agent`, `device`)",
    "call.retrieved": "the agent took the call off hold (`agent`, `device`, `hold` seconds of that hold)",
    "call.transferred": "the agent transferred the call (`agent`, `kind` blind|attended, `target`)",
    "call.conferenced": "a third party was joined to the call (`agent`, `target`)",
    "call.diverted": "the call left an agent or queue without being answered there (`cause`: no_answer|timeout|redirected)",
    "call.abandoned": "the caller gave up while waiting in a queue (`queue`, `wait`, `disposition`='abandoned')",
    "call.cleared": "the call ended (`wait`, `talk`, `hold`, `disposition`, `recording`)",
    "call.failed": "the PBX could not complete the call (`cause`)",
    "call.data": "key/value call data was attached to the call by call.set_data (`data`: the whole map so far)",
    "agent.logged_on": "the agent joined a queue or logged in (`agent`, `name`, `queue`, `device`)",
    "agent.logged_off": "the agent left a queue or logged out (`agent`, `queue`)",
    "agent.ready": "the agent is available for calls (`agent`, `queue` or None for all)",
    "agent.not_ready": "the agent is unavailable (`agent`, `queue` or None for all, `reason`)",
    "agent.acw": "the agent is in after-call work (`agent`, `call_id`, `duration` seconds)",
    "route.request": "a route point asked where a call goes (`call_id`, `queue`, `caller`, `skills`, `priority`)",
    "route.selected": "routing chose an agent (`agent`, `device`, `wait`, `strategy`, `tier`, `step`, `considered`, `reason`)",
    "route.queued": "no qualifying agent is ready: the call waits at the route point (`considered`, `step`)",
    "route.fallback": "the call goes to its fallback (`target`, `reason`: max_wait, vetoed, an error code)",
    "route.rejected": "a blacklisted caller was refused at the route point (`caller`, `target`)",
    "route.error": "bad routing input (`code`, `detail`, `call_id`, `agent`); the call goes to its fallback",
    "queue.stats": "a queue's wallboard figures, every few seconds (reporting plugin: `waiting`, `agents`, `service_level` ...)",
    "recording.started": "a recording of the call started (`call_id`, `path`)",
    "recording.stopped": "a recording of the call stopped (`call_id`, `path`, `duration`)",
    "system.driver_up": "the driver is connected and logged in to its PBX",
    "system.driver_down": "the driver lost its PBX (`reason`); it keeps reconnecting",
    "system.resynced": "state was rebuilt from the PBX after a (re)connect (`calls`, `agents`, `closed`)",
}

#: Topic layout per category: the event's fields that follow the category and the site.
#: A client subscribes by prefix, so the order is widest first.
TOPIC_KEYS: dict[str, tuple[str, ...]] = {
    "call": ("queue", "agent"),
    "recording": ("queue", "agent"),
    "agent": ("agent",),
    "queue": ("queue",),
    "route": ("queue",),
    "screenpop": ("agent",),
    "system": ("source",),
}

_SEGMENT_ESCAPE = str.maketrans({".": "_", " ": "_"})


def _segment(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return str(value).translate(_SEGMENT_ESCAPE)


def topic_for(event: Mapping[str, Any]) -> str:
    """`<category>.<site>.<key>...<name>`, e.g. `call.hq.sales.1001.established`.

    Unknown keys are `-`; dots and spaces inside a segment become `_` so a
    prefix never matches across segments.
    """
    category, _, name = event["type"].partition(".")
    parts = [category, _segment(event.get("site"))]
    for key in TOPIC_KEYS[category]:
        parts.append(_segment(event.get(key)))
    parts.append(name)
    return ".".join(parts)


def category_of(event_type: str) -> str:
    return event_type.partition(".")[0]

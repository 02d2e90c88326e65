"""The control requests: their parameters, how each is checked, and the driver method it becomes.

One table (`OPS`) is the whole vocabulary of call, agent and supervisor control on the bus;
docs/protocol.md documents every entry (a test checks the two agree). Checking is strict:
an unknown key, a missing or mistyped parameter, or a value outside its pattern is a
`bad_request` naming the parameter, before anything reaches the PBX.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from ctid.bus import RequestError

#: Keys every request may carry besides its parameters (the bus envelope and idempotency).
COMMON_KEYS = frozenset({"op", "id", "request_id", "source"})

_ID = re.compile(r"^[A-Za-z0-9_.:@/+-]{1,128}$")  # agent ids, call ids, queues, devices
_NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")  # a dialable number: no letters, no dialplan tricks
_DIGITS = re.compile(r"^[0-9*#A-Da-d]{1,32}$")
_REASON = re.compile(r"^[A-Za-z0-9_ .-]{1,64}$")
_DATA_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
MAX_DATA_KEYS = 32
MAX_DATA_VALUE = 256


def _text(pattern: re.Pattern[str], what: str) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if not isinstance(value, str) or not pattern.match(value):
            raise RequestError("bad_request", f"'{name}' must be {what}, got {value!r:.80}")
        return value

    return check


def _queues(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not value or len(value) > 64:
        raise RequestError("bad_request", f"'{name}' must be a list of 1 to 64 queue names")
    return [_text(_ID, "a queue name")(f"{name}[{i}]", q) for i, q in enumerate(value)]


def _data(name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not value or len(value) > MAX_DATA_KEYS:
        raise RequestError("bad_request", f"'{name}' must be a map of 1 to {MAX_DATA_KEYS} keys")
    for key, item in value.items():
        if not isinstance(key, str) or not _DATA_KEY.match(key):
            raise RequestError("bad_request", f"'{name}' key {key!r:.40} must be a letter or _ then up to 31 letters, digits, _")
        if not isinstance(item, str) or len(item) > MAX_DATA_VALUE:
            raise RequestError("bad_request", f"'{name}.{key}' must be a string of at most {MAX_DATA_VALUE} characters")
    return dict(value)


def _one_of(*choices: str) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if value not in choices:
            raise RequestError("bad_request", f"'{name}' must be one of {', '.join(choices)}, got {value!r:.40}")
        return value

    return check


ident = _text(_ID, "an id (1-128 letters, digits or _.:@/+-)")
number = _text(_NUMBER, "a number (digits, * and #, an optional leading +)")
digits = _text(_DIGITS, "1-32 DTMF digits (0-9 * # A-D)")
reason = _text(_REASON, "a reason code (1-64 letters, digits, space, _ . -)")


@dataclass(frozen=True)
class Param:
    name: str
    check: Callable[[str, Any], Any]
    doc: str
    required: bool = True


@dataclass(frozen=True)
class Op:
    """One control request. `target` says what routes it to a driver (`call`: the call's
    source, `agent`: the agent's); `method` is the `CallControl` method, called with the
    checked parameters renamed by `rename` and completed by `fixed`."""

    name: str
    method: str
    doc: str
    target: str
    params: tuple[Param, ...]
    result: str = "`{}`"
    fixed: dict[str, Any] = field(default_factory=dict)
    rename: dict[str, str] = field(default_factory=dict)

    def check(self, request: dict[str, Any]) -> dict[str, Any]:
        """The request's parameters, checked; raises RequestError(bad_request) naming the culprit."""
        known = {p.name for p in self.params}
        unknown = sorted(str(k) for k in request if k not in known and k not in COMMON_KEYS)
        if unknown:
            raise RequestError("bad_request", f"{self.name}: unknown parameter(s) {', '.join(unknown)}")
        out: dict[str, Any] = {}
        for p in self.params:
            if request.get(p.name) is None:
                if p.required:
                    raise RequestError("bad_request", f"{self.name}: '{p.name}' is required ({p.doc})")
                out[p.name] = None
                continue
            out[p.name] = p.check(p.name, request[p.name])
        return out

    def bind(self, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The driver method and its keyword arguments."""
        kwargs = {self.rename.get(k, k): v for k, v in params.items() if self.rename.get(k, k) is not None}
        return self.method, {**kwargs, **self.fixed}


class ForceState(Op):
    """`agent.force_state`: one op, three driver methods, chosen by the wanted state."""

    def bind(self, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        state = params["state"]
        if state == "ready":
            return "agent_ready", {"agent": params["agent"], "queue": params["queue"]}
        if state == "not_ready":
            return "agent_not_ready", {"agent": params["agent"], "queue": params["queue"],
                                       "reason": params["reason"] or "supervisor"}
        return "agent_logout", {"agent": params["agent"], "queues": None}


CALL = Param("call_id", ident, "the call, as its events name it")
AGENT = Param("agent", ident, "the agent acting (its calls and device)")
QUEUE = Param("queue", ident, "one queue (default: all the agent's queues)", required=False)

OPS: tuple[Op, ...] = (
    Op("call.make", "make_call", "click-to-dial: ring the agent's device, then dial the number", "agent",
       (AGENT, Param("number", number, "the number to dial")), result="`{\"call_id\": str}`",
       fixed={"caller_id": None}),
    Op("call.answer", "answer", "answer the call ringing at the agent's device", "call", (CALL, AGENT)),
    Op("call.hold", "hold", "put the agent's call on hold", "call", (CALL, AGENT)),
    Op("call.retrieve", "retrieve", "take the agent's call off hold", "call", (CALL, AGENT)),
    Op("call.transfer", "transfer", "blind transfer to a number or queue; the agent is free", "call",
       (CALL, AGENT, Param("target", ident, "where the caller goes: a number, extension or queue"))),
    Op("call.consult", "consult", "attended transfer step 1: hold the caller and call the target", "call",
       (CALL, AGENT, Param("target", ident, "the party to consult"))),
    Op("call.transfer_complete", "transfer_complete", "attended transfer step 2: the caller and the target talk",
       "call", (CALL, AGENT)),
    Op("call.conference", "conference", "after call.consult: caller, agent and target talk together", "call",
       (CALL, AGENT)),
    Op("call.hangup", "hangup", "the agent's side of the call hangs up", "call", (CALL, AGENT)),
    Op("call.send_dtmf", "send_dtmf", "send DTMF digits on the agent's call", "call",
       (CALL, AGENT, Param("digits", digits, "0-9 * # A-D, up to 32"))),
    Op("call.set_data", "set_data", "attach key/value data that follows the call", "call",
       (CALL, Param("data", _data, f"a map of up to {MAX_DATA_KEYS} string values"))),
    Op("agent.login", "agent_login", "the agent joins queues, reached on a device", "agent",
       (AGENT, Param("queues", _queues, "the queues to join"),
        Param("device", ident, "the device to ring (default: the driver's rule)", required=False),
        Param("name", reason, "the agent's display name", required=False))),
    Op("agent.logout", "agent_logout", "the agent leaves queues (default: all its queues)", "agent",
       (AGENT, Param("queues", _queues, "the queues to leave (default: all)", required=False))),
    Op("agent.ready", "agent_ready", "the agent takes calls", "agent", (AGENT, QUEUE)),
    Op("agent.not_ready", "agent_not_ready", "the agent takes no calls, with a reason code", "agent",
       (AGENT, Param("reason", reason, "the reason code, e.g. lunch"), QUEUE)),
    Op("agent.acw", "agent_not_ready", "the agent is in after-call work (not ready, reason `acw`)", "agent",
       (AGENT, QUEUE), fixed={"reason": "acw"}),
    Op("monitor.listen", "monitor", "the supervisor's device listens to the agent's call", "agent",
       (AGENT, Param("device", ident, "the supervisor's device")), fixed={"mode": "listen"},
       rename={"device": "supervisor_device"}),
    Op("monitor.whisper", "monitor", "the supervisor talks to the agent only", "agent",
       (AGENT, Param("device", ident, "the supervisor's device")), fixed={"mode": "whisper"},
       rename={"device": "supervisor_device"}),
    Op("monitor.barge", "monitor", "the supervisor joins the agent's call", "agent",
       (AGENT, Param("device", ident, "the supervisor's device")), fixed={"mode": "barge"},
       rename={"device": "supervisor_device"}),
    Op("monitor.force_release", "force_release", "disconnect the whole call", "call", (CALL,)),
    ForceState("agent.force_state", "", "a supervisor sets an agent ready, not ready or logged off", "agent",
               (AGENT, Param("state", _one_of("ready", "not_ready", "logged_off"), "ready, not_ready or logged_off"),
                Param("reason", reason, "for not_ready (default `supervisor`)", required=False), QUEUE)),
)

BY_NAME: dict[str, Op] = {op.name: op for op in OPS}

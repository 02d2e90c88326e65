"""PBX drivers. A driver is found by its kind through the `ctid.drivers` entry point group,
so a site installs a driver package and names it in `[[driver]] kind = ...`.

The contract (`Driver`): built from its `DriverConfig`, a sink that takes normalized
event dicts, and the daemon's counters; `run()` serves until `stop()`, reconnecting
by itself; bad PBX input is counted, never raised.

Call and agent control (`CallControl`) is optional: a driver that can act on its PBX
exposes an object with some of its methods as `driver.control`. The daemon's control
service (`ctid.control`) validates each request and calls the method; a driver without
`control`, or without the method, answers `not_supported` — never a silent no-op.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, Callable, Protocol

from ctid.config import DriverConfig
from ctid.metrics import Counters

ENTRY_POINT_GROUP = "ctid.drivers"

Sink = Callable[[dict[str, Any]], None]


class Driver(Protocol):
    kind: str
    name: str

    def __init__(self, config: DriverConfig, sink: Sink, counters: Counters) -> None: ...

    async def run(self) -> None:
        """Connect, log in, resync, publish events; reconnect with backoff until stop()."""

    async def stop(self) -> None:
        """Log off and close; run() returns soon after."""


#: The error codes a driver may answer a control request with (docs/protocol.md, "Control errors").
CONTROL_ERRORS = ("bad_request", "no_such_call", "no_such_agent", "invalid_state", "rejected", "not_supported",
                  "pbx_unavailable", "timeout")


class ControlError(Exception):
    """A driver refuses or fails a control request. `code` is the bus error code:
    `bad_request` (a parameter no PBX could take, caught by the driver's own checks),
    `no_such_call`, `no_such_agent`, `invalid_state` (e.g. hold a call that is not
    talking), `rejected` (the PBX said no; its message attached), `pbx_unavailable`
    (the link is down), `timeout` (the PBX did not answer), `not_supported`."""

    def __init__(self, code: str, message: str) -> None:
        if code not in CONTROL_ERRORS:  # a client can only handle the codes the protocol documents
            raise ValueError(f"undocumented control error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message


class CallControl(Protocol):
    """Call, agent and supervisor control, implemented by a driver for its PBX (`driver.control`).

    Every method is a coroutine; it returns when the PBX accepted the action (the outcome
    is confirmed by the events that follow) and raises `ControlError` otherwise. `agent`
    is the PBX-neutral agent id of the event model; `call_id` a call's id from its events.
    A driver may leave methods out: the control service answers `not_supported` for them.
    """

    async def make_call(self, agent: str, number: str, caller_id: str | None) -> str:
        """Ring the agent's device, then dial `number`; return the new call's `call_id`."""

    async def answer(self, call_id: str, agent: str) -> None:
        """Answer the call ringing at the agent's device."""

    async def hold(self, call_id: str, agent: str) -> None:
        """Put the agent's call on hold."""

    async def retrieve(self, call_id: str, agent: str) -> None:
        """Take the agent's held call off hold."""

    async def transfer(self, call_id: str, agent: str, target: str) -> None:
        """Blind transfer: send the customer to `target` (a number or a queue); the agent is free."""

    async def consult(self, call_id: str, agent: str, target: str) -> None:
        """Attended transfer, first step: hold the customer and call `target`."""

    async def transfer_complete(self, call_id: str, agent: str) -> None:
        """Attended transfer, second step: join the customer and the consulted party; the agent leaves."""

    async def conference(self, call_id: str, agent: str) -> None:
        """After `consult`: customer, agent and the consulted party talk together."""

    async def hangup(self, call_id: str, agent: str) -> None:
        """The agent's side of the call hangs up."""

    async def send_dtmf(self, call_id: str, agent: str, digits: str) -> None:
        """Send DTMF digits (0-9, *, #, A-D) on the agent's call."""

    async def set_data(self, call_id: str, data: dict[str, str]) -> None:
        """Attach key/value data to the call at the PBX, so that it follows the call."""

    async def agent_login(self, agent: str, queues: list[str], device: str | None, name: str | None) -> None:
        """Make the agent a member of `queues`, reached on `device` (driver default when None)."""

    async def agent_logout(self, agent: str, queues: list[str]) -> None:
        """Remove the agent from `queues`."""

    async def agent_ready(self, agent: str, queue: str | None) -> None:
        """The agent takes calls again, in `queue` or (None) in all its queues."""

    async def agent_not_ready(self, agent: str, reason: str, queue: str | None) -> None:
        """The agent takes no calls (`reason` code), in `queue` or (None) in all its queues."""

    async def monitor(self, supervisor_device: str, agent: str, mode: str) -> None:
        """Connect the supervisor's device to the agent's call: `listen`, `whisper` or `barge`."""

    async def force_release(self, call_id: str) -> None:
        """Disconnect the whole call (a supervisor's forced release)."""


class UnknownDriver(LookupError):
    pass


def available() -> dict[str, str]:
    """Installed driver kinds -> 'module:attr'."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load(kind: str) -> type[Driver]:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == kind:
            return ep.load()
    known = ", ".join(sorted(available())) or "none installed"
    raise UnknownDriver(f"no driver of kind {kind!r} (installed: {known})")

"""Asterisk `DialBegin` / `DialEnd` -> `call.delivered` / `call.established` of calls no queue rings.

A queue's rings come as `AgentCalled` / `AgentConnect` (the mapper's queue handlers); the Dial
frames that matter are the device-to-device ones: a call an agent's device makes (its dialled
number is learnt here, before the call is offered) and a call put through to a device
directly. Dials of a call in a queue, dials to a member with an open AgentConnect, and
originates (no Channel) give nothing here. No I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ctid.drivers.asterisk.members import clean, device_of

if TYPE_CHECKING:
    from ctid.drivers.asterisk.mapper import AsteriskMapper

Event = dict[str, Any]
Frame = dict[str, str]


class Dials:
    """The direct dials of one AMI link; works on the mapper's calls (`m.ensure_call`, `m.offer`, `m.event`)."""

    def __init__(self, m: AsteriskMapper) -> None:
        self._m = m

    def begin(self, f: Frame, ts: float, out: list[Event]) -> None:
        """A DialBegin: the dialled device rings."""
        if "Channel" not in f or "DestChannel" not in f:
            return
        m = self._m
        call = m.ensure_call(f)
        if call is None or call.in_queue:
            return
        member = m.members.find(f["DestChannel"])
        if member is not None and m.connected.get(device_of(f["DestChannel"])) is not None:
            return
        if call.origin_agent is not None and not call.offered:
            dialled = f.get("DialString", "").split("@", 1)[0].rsplit("/", 1)[-1]
            call.called = clean(dialled) or call.called
        m.offer(call, ts, out)
        dest = member.agent if member else device_of(f["DestChannel"])
        out.append(m.event("call.delivered", call, ts, device=dest, agent=member.agent if member else call.agent))

    def end(self, f: Frame, ts: float, out: list[Event]) -> None:
        """A DialEnd: an answered dial establishes the call with the device (an agent's, if a member's)."""
        if "Channel" not in f or f.get("DialStatus") != "ANSWER":
            return
        m = self._m
        call = m.ensure_call(f)
        if call is None or call.in_queue or call.queue is not None:
            return
        member = m.members.find(f.get("DestChannel"))
        if member is not None:
            call.agent = member.agent
        call.device = member.agent if member else device_of(f.get("DestChannel", ""))
        out.append(m.event("call.established", call, ts))

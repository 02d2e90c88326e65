"""Queue members: who is an agent, how channels and interfaces name them, their pause
state, and the agent.* events that QueueMember* frames cause."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ctid.config import agent_id_of

Event = dict[str, Any]
Frame = dict[str, str]

_PLACEHOLDERS = frozenset({"", "<unknown>", "<Unknown>"})


def clean(value: str | None) -> str | None:
    """An AMI value, with Asterisk's placeholders for 'nothing' turned into None."""
    return None if value is None or value in _PLACEHOLDERS else value


def device_of(channel: str) -> str:
    """`Local/1001@agents-00000008;1` -> `Local/1001@agents`; `PJSIP/1001-0000002a` -> `PJSIP/1001`."""
    base, sep, _ = channel.rpartition("-")
    return base if sep else channel


def interface_device(interface: str) -> str:
    """A queue member interface as a device key: `Local/1001@agents/n` -> `Local/1001@agents`."""
    return interface[:-2] if interface.endswith("/n") else interface


@dataclass(slots=True)
class Member:
    agent: str
    name: str | None
    interface: str
    paused: dict[str, bool] = field(default_factory=dict)  # queue -> paused
    wrapup: float = 0.0


class Members:
    """Members by device key; the `pause`/`added`/`removed`/`status` handlers append agent events."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.by_device: dict[str, Member] = {}

    def __len__(self) -> int:
        return len(self.by_device)

    def find(self, channel_or_interface: str | None) -> Member | None:
        """The member a channel (`...-xxxx;n`) or an interface belongs to, if any."""
        if not channel_or_interface:
            return None
        return self.by_device.get(device_of(channel_or_interface)) or self.by_device.get(interface_device(channel_or_interface))

    def is_agent_channel(self, channel: str) -> bool:
        return device_of(channel) in self.by_device

    def learn(self, interface: str, name: str | None) -> Member:
        device = interface_device(interface)
        member = self.by_device.get(device)
        if member is None:
            member = self.by_device[device] = Member(agent_id_of(interface), clean(name), interface)
        elif name and member.name is None:
            member.name = clean(name)
        return member

    def event(self, type_: str, member: Member, ts: float, queue: str | None, **extra: Any) -> Event:
        event: Event = {"type": type_, "ts": ts, "source": self.source, "agent": member.agent, "name": member.name,
                        "queue": queue, "device": member.agent}
        event.update(extra)
        return event

    def _paused_event(self, member: Member, ts: float, queue: str | None, paused: bool, f: Frame) -> Event:
        if paused:
            return self.event("agent.not_ready", member, ts, queue, reason=clean(f.get("PausedReason")))
        return self.event("agent.ready", member, ts, queue)

    # -- frame handlers ---------------------------------------------------------------------

    def pause(self, f: Frame, ts: float, out: list[Event]) -> None:
        member = self.learn(f["Interface"], f.get("MemberName"))
        queue = f.get("Queue") or None
        paused = f.get("Paused") == "1"
        if queue is not None:
            member.paused[queue] = paused
        else:  # an interface-wide pause
            for q in member.paused:
                member.paused[q] = paused
        out.append(self._paused_event(member, ts, queue, paused, f))

    def added(self, f: Frame, ts: float, out: list[Event]) -> None:
        member = self.learn(f["Interface"], f.get("MemberName"))
        self._join(member, f["Queue"], f, ts, out)

    def removed(self, f: Frame, ts: float, out: list[Event]) -> None:
        member = self.learn(f["Interface"], f.get("MemberName"))
        member.paused.pop(f["Queue"], None)
        out.append(self.event("agent.logged_off", member, ts, f["Queue"]))

    def status(self, f: Frame, ts: float, out: list[Event]) -> None:
        """QueueMemberStatus and QueueMember (list item): learn members; catch pauses made out of sight."""
        interface = f.get("Interface") or f.get("Location")
        queue = f.get("Queue")
        if not interface or not queue:
            raise KeyError("Interface/Location or Queue")
        member = self.learn(interface, f.get("MemberName") or f.get("Name"))
        known = member.paused.get(queue)
        if known is None:
            self._join(member, queue, f, ts, out)
            return
        member.wrapup = float(f.get("Wrapuptime") or 0)
        paused = f.get("Paused") == "1"
        if known != paused:
            member.paused[queue] = paused
            out.append(self._paused_event(member, ts, queue, paused, f))

    def _join(self, member: Member, queue: str, f: Frame, ts: float, out: list[Event]) -> None:
        paused = f.get("Paused") == "1"
        member.paused[queue] = paused
        member.wrapup = float(f.get("Wrapuptime") or 0)
        out.append(self.event("agent.logged_on", member, ts, queue, penalty=int(f.get("Penalty") or 0)))
        if paused:
            out.append(self._paused_event(member, ts, queue, True, f))

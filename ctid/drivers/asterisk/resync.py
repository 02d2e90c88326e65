"""Rebuilding an `AsteriskMapper` after the AMI link (re)connects. No I/O.

While the link was down frames were lost, so the mapper's calls may be stale. The link asks
Asterisk for what is live now (CoreShowChannels, QueueStatus: `CoreShowChannel`, `QueueMember`
and `QueueEntry` items) and `rebuild` reconciles the mapper with it, in this order:

1. queue exits still undecided are settled (the frames that would decide them were lost);
2. members take their current status;
3. channels that are gone end (with their recordings); a call left without channels ended
   while the link was down and is closed with disposition `lost`;
4. live channels never seen are adopted (a call that is Up is offered);
5. queue entries put their calls in their queue (`call.queued`);
6. a call bridged to an agent's leg is established with that agent.

It works on the mapper's own tables and helpers: it is the mapper's resync, kept apart
because it runs once per connect and reads as one story, not on the per-frame path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ctid.drivers.asterisk.members import interface_device

if TYPE_CHECKING:
    from ctid.drivers.asterisk.mapper import AsteriskMapper

Event = dict[str, Any]
Item = dict[str, str]


def rebuild(m: AsteriskMapper, channels: list[Item], members: list[Item], entries: list[Item], ts: float) -> list[Event]:
    """The events that bring `m` (and so the daemon's state) in line with the live lists."""
    out: list[Event] = []
    m.exits.settle_all(out, "resync")  # the frames that would decide were lost with the link
    for item in members:
        m.members.status(item, ts, out)
    live = {c["Uniqueid"]: c for c in channels if c.get("Uniqueid")}
    closed = _close_gone(m, live, ts, out)
    _adopt(m, live, ts, out)
    _queue_entries(m, entries, ts, out)
    _bridged(m, live, ts, out)
    out.append({"type": "system.resynced", "ts": ts, "source": m.source, "calls": len(m.calls),
                "agents": len(m.members), "closed": closed})
    return out


def _close_gone(m: AsteriskMapper, live: dict[str, Item], ts: float, out: list[Event]) -> int:
    """Forget channels that are not live; close calls left without any. Returns how many offered calls closed."""
    closed = 0
    for call in list(m.calls.values()):
        for uid in list(call.channels):
            if uid not in live:
                m.recordings.end(uid, ts, out)
                call.channels.discard(uid)
                m.chan_call.pop(uid, None)
                m.chan_name.pop(uid, None)
        if not call.channels:
            closed += call.offered
            m.close(call, ts, out, disposition="lost")
    return closed


def _adopt(m: AsteriskMapper, live: dict[str, Item], ts: float, out: list[Event]) -> None:
    """Live channels the mapper never saw join their call as if their Newchannel had come."""
    for uid, item in live.items():
        if uid in m.chan_call:
            continue
        item = {**item, "Linkedid": item.get("Linkedid") or uid}
        m._newchannel(item, ts, out)
        call = m.calls[m.chan_call[uid]]
        if item.get("ChannelState") == "6":
            m.offer(call, ts, out)


def _queue_entries(m: AsteriskMapper, entries: list[Item], ts: float, out: list[Event]) -> None:
    """A call waiting in a queue other than the one the mapper has for it is queued there now."""
    for entry in entries:
        call_id = m.chan_call.get(entry.get("Uniqueid", ""))
        call = m.calls.get(call_id) if call_id else None
        if call is not None and call.in_queue != entry.get("Queue"):
            call.in_queue = call.queue = entry.get("Queue")
            m.learn_caller(call, entry)
            m.offer(call, ts, out)
            out.append(m.event("call.queued", call, ts, position=int(entry.get("Position") or 0)))


def _bridged(m: AsteriskMapper, live: dict[str, Item], ts: float, out: list[Event]) -> None:
    """Calls bridged to an agent leg: established with that agent."""
    for call in m.calls.values():
        if call.agent is None and not call.in_queue:
            for uid in call.channels:
                item = live.get(uid)
                member = m.members.find(m.chan_name.get(uid))
                if item and member and (item.get("BridgeId") or item.get("BridgeID")):
                    call.agent = call.device = member.agent
                    m.connected[interface_device(member.interface)] = call.call_id
                    out.append(m.event("call.established", call, ts))
                    break

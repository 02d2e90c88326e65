"""The simulator's list responses: QueueStatus, QueueSummary, CoreShowChannels, Status.

A list answers `Response: Success` + `EventList: start`, then its items, then
`<Name>Complete` with `EventList: Complete` and `ListItems: N`, all carrying the
request's ActionID; item fields and their order are Asterisk 22's (see shared/ami).
"""

from __future__ import annotations

from typing import Any

from ctid.drivers.asterisk.simrender import AmiRenderer
from ctid.drivers.asterisk.simwire import Chan, encode

Fields = list[tuple[str, Any]]


def _aid(action_id: str | None) -> Fields:
    return [] if action_id is None else [("ActionID", action_id)]


def listing(action_id: str | None, message: str, name: str, items: list[Fields], extra: Fields | None = None) -> bytes:
    """The whole list: ack, items, completion."""
    out = [encode([("Response", "Success"), *_aid(action_id), ("EventList", "start"), ("Message", message)])]
    out += [encode(item) for item in items]
    out.append(encode([("Event", name), *_aid(action_id), ("EventList", "Complete"), ("ListItems", len(items)),
                       *(extra or [])]))
    return b"".join(out)


def queue_status(r: AmiRenderer, action_id: str | None, queue: str | None, member: str | None) -> bytes:
    """QueueParams, QueueMember and QueueEntry (waiting callers only) per queue."""
    items: list[Fields] = []
    aid = _aid(action_id)
    model = r.model
    for q in model.queues.values():
        if queue and q.name.lower() != queue.lower():
            continue
        perf = 100.0 * q.completed_in_sl / q.completed if q.completed else 0.0
        done = q.completed + q.abandoned
        perf2 = 100.0 * (q.completed_in_sl + q.abandoned_in_sl) / done if done else 0.0
        items.append([("Event", "QueueParams"), ("Queue", q.name), ("Max", 0), ("Strategy", q.spec.strategy),
                      ("Calls", len(q.waiting)), ("Holdtime", int(q.holdtime)), ("TalkTime", int(q.talktime)),
                      ("Completed", q.completed), ("Abandoned", q.abandoned), ("ServiceLevel", q.spec.service_level),
                      ("ServicelevelPerf", f"{perf:.1f}"), ("ServicelevelPerf2", f"{perf2:.1f}"), ("Weight", 0), *aid])
        for ext in q.members:
            agent = model.agents[ext]
            if member and member not in (r.iface(agent), agent.name):
                continue
            f = dict(r.member_fields(agent, agent.members[q.name]))
            items.append([("Event", "QueueMember"), ("Queue", q.name), ("Name", agent.name), ("Location", f["Interface"]),
                          *((k, f[k]) for k in ("StateInterface", "Membership", "Penalty", "CallsTaken", "LastCall",
                                                 "LastPause", "LoginTime", "InCall", "Status", "Paused",
                                                 "PausedReason", "Wrapuptime")), *aid])
        for pos, call in enumerate(q.waiting, 1):
            legs = r.legs.get(call.id)
            c2 = legs.c2 if legs is not None else None
            # QueueEntry says `unknown` (no brackets) where the channel events say `<unknown>`
            name = call.name or "unknown"
            items.append([("Event", "QueueEntry"), ("Queue", q.name), ("Position", pos),
                          ("Channel", c2.name if c2 else ""), ("Uniqueid", c2.uid if c2 else ""),
                          ("CallerIDNum", call.number), ("CallerIDName", name), ("ConnectedLineNum", call.number),
                          ("ConnectedLineName", name), ("Wait", int(model.now - call.t_join)), ("Priority", 0), *aid])
    return listing(action_id, "Queue status will follow", "QueueStatusComplete", items)


def queue_summary(r: AmiRenderer, action_id: str | None, queue: str | None) -> bytes:
    items: list[Fields] = []
    model = r.model
    for q in model.queues.values():
        if queue and q.name.lower() != queue.lower():
            continue
        agents = [model.agents[e] for e in q.members]
        available = sum(1 for a in agents if not a.members[q.name].paused and a.state in ("idle", "wrapup"))
        longest = max((int(model.now - c.t_join) for c in q.waiting), default=0)
        items.append([("Event", "QueueSummary"), ("Queue", q.name), ("LoggedIn", len(agents)), ("Available", available),
                      ("Callers", len(q.waiting)), ("HoldTime", int(q.holdtime)), ("TalkTime", int(q.talktime)),
                      ("LongestHoldTime", longest), *_aid(action_id)])
    return listing(action_id, "Queue summary will follow", "QueueSummaryComplete", items)


def _duration(seconds: float) -> str:
    s = int(max(0.0, seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def core_show_channels(r: AmiRenderer, action_id: str | None) -> bytes:
    items = [[("Event", "CoreShowChannel"), *_aid(action_id), *ch.snapshot(), ("Application", ch.app),
              ("ApplicationData", ch.data), ("Duration", _duration(r.now - ch.created)), ("BridgeId", ch.bridge)]
             for ch in r.channels.values()]
    return listing(action_id, "Channels will follow", "CoreShowChannelsComplete", items)


def _status_item(r: AmiRenderer, ch: Chan, action_id: str | None) -> Fields:
    # Status spells what CoreShowChannel calls BridgeId/ApplicationData/Duration as BridgeID/Data/Seconds
    return [("Event", "Status"), ("Privilege", "Call"), *ch.snapshot(), ("Type", ch.tech), ("DNID", ""),
            ("EffectiveConnectedLineNum", ch.con_num), ("EffectiveConnectedLineName", ch.con_name),
            ("TimeToHangup", 0), ("BridgeID", ch.bridge), ("Application", ch.app), ("Data", ch.data),
            ("Nativeformats", "(ulaw)"), ("Readformat", "ulaw"), ("Readtrans", ""), ("Writeformat", "ulaw"),
            ("Writetrans", ""), ("Callgroup", 0), ("Pickupgroup", 0), ("Seconds", int(r.now - ch.created)),
            *_aid(action_id)]


def status(r: AmiRenderer, action_id: str | None, channel: str | None) -> bytes | None:
    """None when `channel` was asked for and does not exist (the caller answers `No such channel`)."""
    if channel:
        ch = r.channels.get(channel)
        if ch is None:
            return None
        chans = [ch]
    else:
        chans = list(r.channels.values())
    items = [_status_item(r, ch, action_id) for ch in chans]
    return listing(action_id, "Channel status will follow", "StatusComplete", items, [("Items", len(items))])

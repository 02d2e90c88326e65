"""AMI frames for the simulator: channels, their snapshots, and one builder per event.

Field names and their order are those of Asterisk 22 (checked against the recorded
transcripts in shared/ami). Builders append `(class, bytes)` to `Wire.out`; the class
is the event's first privilege (`call`, `agent`, `dialplan`, `cdr`, `dtmf`, ...), which
an `Events`/`EventMask` filter per client is matched against.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from ctid.sim.model import Agent, Call

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}
CAUSE_TXT = {0: "Unknown", 16: "Normal Clearing", 17: "User busy", 19: "User alerting, no answer"}
UNKNOWN = "<unknown>"
Fields = list[tuple[str, Any]]


def clean_value(value: Any) -> str:
    """AMI values are single lines: a CR or LF would end the frame early."""
    text = str(value)
    if "\r" in text or "\n" in text:
        text = text.replace("\r", " ").replace("\n", " ")
    return text


def encode(fields: Iterable[tuple[str, Any]]) -> bytes:
    return ("".join(f"{k}: {clean_value(v)}\r\n" for k, v in fields) + "\r\n").encode("utf-8")


@dataclass(eq=False, slots=True)
class Chan:
    """A live channel as AMI shows it; updated in place as the call moves on."""

    name: str
    uid: str
    linkedid: str
    state: int = 0
    cid_num: str = UNKNOWN
    cid_name: str = UNKNOWN
    con_num: str = UNKNOWN
    con_name: str = UNKNOWN
    context: str = ""
    exten: str = ""
    priority: int = 1
    app: str = ""
    data: str = ""
    created: float = 0.0  # virtual seconds
    answered: float | None = None
    bridge: str = ""
    tech: str = "Local"

    def snapshot(self, prefix: str = "") -> Fields:
        return [
            (prefix + "Channel", self.name), (prefix + "ChannelState", self.state),
            (prefix + "ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (prefix + "CallerIDNum", self.cid_num), (prefix + "CallerIDName", self.cid_name),
            (prefix + "ConnectedLineNum", self.con_num), (prefix + "ConnectedLineName", self.con_name),
            (prefix + "Language", "en"), (prefix + "AccountCode", ""), (prefix + "Context", self.context),
            (prefix + "Exten", self.exten), (prefix + "Priority", self.priority),
            (prefix + "Uniqueid", self.uid), (prefix + "Linkedid", self.linkedid),
        ]

    def set_caller(self, num: str, name: str) -> None:
        self.cid_num, self.cid_name = num, name or UNKNOWN

    def set_connected(self, num: str, name: str) -> None:
        self.con_num, self.con_name = num, name or UNKNOWN


@dataclass(eq=False)
class AgentLeg:
    agent: Agent
    iface: str
    one: Chan  # the channel the queue dials (`;1` of a Local member)
    two: Chan | None  # the member side running the `agents` dialplan (None for a PJSIP member)


@dataclass(eq=False)
class Legs:
    """The channels of one call, as the wire knows them."""

    call: Call
    c1: Chan  # inbound: the handset (;1); outbound: the agent's ;1
    c2: Chan | None  # inbound: the dialplan side (;2); outbound: the agent's ;2
    device: str  # the Local device whose state follows the call (`Local/sales@inbound`)
    ring: AgentLeg | None = None
    talk: AgentLeg | None = None
    bridge: str | None = None
    x1: Chan | None = None  # consultation target (attended transfer)
    x2: Chan | None = None
    bridge2: str | None = None
    trunk: Chan | None = None  # outbound: the called party
    queue: str = ""
    queue_app: str = ""
    t_app: float = 0.0
    extra: list[Chan] = field(default_factory=list)

    def chans(self) -> list[Chan]:
        out = [self.c1, self.c2, self.x1, self.x2, self.trunk, *self.extra]
        for leg in (self.ring, self.talk):
            if leg is not None:
                out += [leg.one, leg.two]
        return [c for c in out if c is not None]


class Wire:
    """Channel registry, id counters and the event builders. `now` is the virtual clock."""

    def __init__(self, epoch: float, seed: int) -> None:
        self.base = float(epoch)
        self.now = 0.0
        self.out: list[tuple[str, bytes]] = []
        self.channels: dict[str, Chan] = {}  # live, by name, in creation order
        self.bridges: dict[str, int] = {}  # bridge id -> channels in it
        self._uids = itertools.count()
        self._locals = itertools.count()
        self._pjsip = itertools.count(1)
        self._brng = random.Random(seed ^ 0x5F3759DF)  # bridge ids: fixed by the seed, apart from traffic

    # -- ids and channels ------------------------------------------------------------------

    def epoch(self, t: float | None = None) -> int:
        return int(self.base + (self.now if t is None else t))

    def stamp(self, t: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.base + t))

    def uid(self) -> str:
        return f"{self.epoch()}.{next(self._uids)}"

    def local_pair(self, exten: str, context: str, linkedid: str | None = None,
                   uid: str | None = None) -> tuple[Chan, Chan]:
        """A Local channel's two halves: `;1` (Down) and `;2` (Ring), sharing the first's Linkedid.
        `uid`: the `;1` Uniqueid an Originate asked for (its `ChannelId`)."""
        n = next(self._locals)
        u1 = uid or self.uid()
        link = linkedid or u1
        one = Chan(f"Local/{exten}@{context}-{n:08x};1", u1, link, 0, context=context, exten=exten, created=self.now)
        two = Chan(f"Local/{exten}@{context}-{n:08x};2", self.uid(), link, 4, context=context, exten=exten,
                   created=self.now)
        self.channels[one.name] = one
        self.channels[two.name] = two
        return one, two

    def single(self, tech: str, endpoint: str, context: str, exten: str, linkedid: str | None = None,
               uid: str | None = None) -> Chan:
        """A one-piece channel (`PJSIP/trunk-0000000a`); Linkedid its own Uniqueid unless given."""
        uid = uid or self.uid()
        ch = Chan(f"{tech}/{endpoint}-{next(self._pjsip):08x}", uid, linkedid or uid, 0, context=context, exten=exten,
                  created=self.now, tech=tech)
        self.channels[ch.name] = ch
        return ch

    def bridge_id(self) -> str:
        r = self._brng.getrandbits
        return f"{r(32):08x}-{r(16):04x}-4{r(12):03x}-{8 + r(2):x}{r(12):03x}-{r(48):012x}"

    # -- emit --------------------------------------------------------------------------------

    def event(self, name: str, privilege: str, fields: Fields) -> None:
        self.out.append((privilege.partition(",")[0], encode([("Event", name), ("Privilege", privilege), *fields])))

    def take(self) -> list[tuple[str, bytes]]:
        out, self.out = self.out, []
        return out

    # -- channel events -----------------------------------------------------------------------

    def newchannel(self, *chans: Chan) -> None:
        for ch in chans:
            self.event("Newchannel", "call,all", ch.snapshot())

    def newstate(self, ch: Chan | None, state: int, **where: Any) -> None:
        if ch is None:
            return
        ch.state = state
        self._move(ch, **where)
        if state == 6 and ch.answered is None:
            ch.answered = self.now
        self.event("Newstate", "call,all", ch.snapshot())

    def _move(self, ch: Chan, context: str | None = None, exten: str | None = None, priority: int | None = None) -> None:
        if context is not None:
            ch.context = context
        if exten is not None:
            ch.exten = exten
        if priority is not None:
            ch.priority = priority

    def newexten(self, ch: Chan | None, app: str, data: Any = "", **where: Any) -> None:
        if ch is None:
            return
        self._move(ch, **where)
        ch.app, ch.data = app, str(data)
        self.event("Newexten", "dialplan,all", [*ch.snapshot(), ("Extension", ch.exten), ("Application", app),
                                                ("AppData", data)])

    def varset(self, ch: Chan | None, *pairs: tuple[str, Any]) -> None:
        if ch is None:
            return
        snap = ch.snapshot()
        for var, value in pairs:
            self.event("VarSet", "dialplan,all", [*snap, ("Variable", var), ("Value", value)])

    def newcallerid(self, ch: Chan | None, pres: str = "0 (Presentation Allowed, Not Screened)") -> None:
        if ch is not None:
            self.event("NewCallerid", "call,all", [*ch.snapshot(), ("CID-CallingPres", pres)])

    def newconnectedline(self, ch: Chan | None) -> None:
        if ch is not None:
            self.event("NewConnectedLine", "call,all", ch.snapshot())

    def localbridge(self, one: Chan, two: Chan, context: str, exten: str, optimize: bool) -> None:
        self.event("LocalBridge", "call,all", [*one.snapshot("LocalOne"), *two.snapshot("LocalTwo"),
                                               ("Context", context), ("Exten", exten),
                                               ("LocalOptimization", "Yes" if optimize else "No")])

    def dial(self, name: str, src: Chan | None, dest: Chan, last: tuple[str, Any]) -> None:
        """DialBegin (last=DialString), DialState and DialEnd (last=DialStatus); `src` None for an originate."""
        fields = src.snapshot() if src is not None else []
        self.event(name, "call,all", [*fields, *dest.snapshot("Dest"), last])

    def hangup_request(self, ch: Chan | None, cause: int = 16, soft: bool = False) -> None:
        if ch is not None and ch.name in self.channels:
            self.event("SoftHangupRequest" if soft else "HangupRequest", "call,all", [*ch.snapshot(), ("Cause", cause)])

    def hangup(self, ch: Chan | None, cause: int = 16) -> None:
        if ch is None or self.channels.pop(ch.name, None) is None:
            return
        self.event("Hangup", "call,all", [*ch.snapshot(), ("Cause", cause), ("Cause-txt", CAUSE_TXT.get(cause, "Unknown"))])

    def moh(self, ch: Chan | None, start: bool) -> None:
        if ch is None:
            return
        if start:
            self.event("MusicOnHoldStart", "call,all", [*ch.snapshot(), ("Class", "default")])
        else:
            self.event("MusicOnHoldStop", "call,all", ch.snapshot())

    def plain(self, name: str, ch: Chan | None, *extra: tuple[str, Any], privilege: str = "call,all") -> None:
        """An event made of one channel's snapshot and some fields (MixMonitorStart, Hold, DTMFEnd...)."""
        if ch is not None:
            self.event(name, privilege, [*ch.snapshot(), *extra])

    def device(self, device: str, state: str) -> None:
        self.event("DeviceStateChange", "call,all", [("Device", device), ("State", state)])

    # -- bridges -----------------------------------------------------------------------------

    def _bridge_fields(self, bid: str, prefix: str = "", count: int | None = None) -> Fields:
        n = self.bridges.get(bid, 0) if count is None else count
        return [(prefix + "BridgeUniqueid", bid), (prefix + "BridgeType", "basic"),
                (prefix + "BridgeTechnology", "simple_bridge"), (prefix + "BridgeCreator", UNKNOWN),
                (prefix + "BridgeName", UNKNOWN), (prefix + "BridgeNumChannels", n),
                (prefix + "BridgeVideoSourceMode", "none")]

    def bridge_create(self) -> str:
        bid = self.bridge_id()
        self.bridges[bid] = 0
        self.event("BridgeCreate", "call,all", self._bridge_fields(bid))
        return bid

    def bridge_enter(self, bid: str, ch: Chan | None) -> None:
        if ch is None:
            return
        self.bridges[bid] = self.bridges.get(bid, 0) + 1
        ch.bridge = bid
        self.event("BridgeEnter", "call,all", [*self._bridge_fields(bid), *ch.snapshot()])

    def bridge_leave(self, bid: str | None, ch: Chan | None) -> None:
        if ch is None or not bid or ch.bridge != bid:
            return
        self.bridges[bid] = max(0, self.bridges.get(bid, 0) - 1)
        ch.bridge = ""
        self.event("BridgeLeave", "call,all", [*self._bridge_fields(bid), *ch.snapshot()])

    def bridge_destroy(self, bid: str | None) -> None:
        if bid and bid in self.bridges:
            self.event("BridgeDestroy", "call,all", self._bridge_fields(bid, count=0))
            del self.bridges[bid]

    # -- CDR ---------------------------------------------------------------------------------

    def cdr(self, ch: Chan | None, dest: str, dest_context: str, last_app: str, last_data: Any, *,
            dest_channel: str = "", userfield: str = "", answered: bool = True) -> None:
        if ch is None:
            return
        num = "" if ch.cid_num == UNKNOWN else ch.cid_num
        name = "" if ch.cid_name == UNKNOWN else ch.cid_name
        answer = ch.answered if answered and ch.answered is not None else None
        self.event("Cdr", "cdr,all", [
            ("AccountCode", ""), ("Source", num), ("Destination", dest), ("DestinationContext", dest_context),
            ("CallerID", f'"{name}" <{num}>'), ("Channel", ch.name), ("DestinationChannel", dest_channel),
            ("LastApplication", last_app), ("LastData", last_data), ("StartTime", self.stamp(ch.created)),
            ("AnswerTime", self.stamp(answer) if answer is not None else ""), ("EndTime", self.stamp(self.now)),
            ("Duration", int(self.now - ch.created)),
            ("BillableSeconds", int(self.now - answer) if answer is not None else 0),
            ("Disposition", "ANSWERED" if answer is not None else "NO ANSWER"), ("AMAFlags", "DOCUMENTATION"),
            ("UniqueID", ch.uid), ("UserField", userfield),
        ])

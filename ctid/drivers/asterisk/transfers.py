"""Asterisk transfer frames -> `call.retrieved` (a hold the transfer ends) and `call.transferred`.

`BlindTransfer` names the transferee's channel and the extension the call goes to.
`AttendedTransfer` also names the consultation call (SecondTransferer / TransferTarget): when
its Linkedid differs from the customer call's, the consultation call is merged into the
customer call and its Linkedid becomes an alias of the call's `call_id`, so every later frame
of it lands on the one call (docs/design.md, "One call = one Linkedid"). Only successful
transfers change anything. No I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ctid.drivers.asterisk.members import clean, interface_device

if TYPE_CHECKING:
    from ctid.drivers.asterisk.mapper import AsteriskMapper, Call

Event = dict[str, Any]
Frame = dict[str, str]


class Transfers:
    """The transfers of one AMI link, and the Linkedid aliases the attended ones leave.

    Works on the mapper's calls and channels (`m.ensure_call`, `m.event`, `m.calls`,
    `m.chan_call`, `m.connected`, its members and recordings): a transfer moves a call
    between agents and may join two calls, which is the mapper's state to change.
    """

    def __init__(self, m: AsteriskMapper) -> None:
        self._m = m
        self.aliases: dict[str, str] = {}  # linkedid -> call_id it was merged into

    def blind(self, f: Frame, ts: float, out: list[Event]) -> None:
        """A BlindTransfer."""
        if f.get("Result") != "Success":
            return
        call = self._m.ensure_call(f, "TransfereeUniqueid", "TransfereeLinkedid")
        if call is not None:
            self._transfer(call, ts, out, "blind", f.get("TransfererChannel"), clean(f.get("Extension")))

    def attended(self, f: Frame, ts: float, out: list[Event]) -> None:
        """An AttendedTransfer: the consultation call joins the customer call."""
        if f.get("Result") != "Success":
            return
        m = self._m
        call = m.ensure_call(f, "TransfereeUniqueid", "TransfereeLinkedid")
        if call is None:
            return
        for key in ("SecondTransfererLinkedid", "TransferTargetLinkedid"):
            other = f.get(key)
            if other and m.call_id(other) != call.call_id:
                self._merge(m.call_id(other), call)
        target = clean(f.get("TransferTargetExten")) or clean(f.get("SecondTransfererExten"))
        self._transfer(call, ts, out, "attended", f.get("OrigTransfererChannel"), target)

    def forget(self, call_id: str) -> None:
        """Call `call_id` ended: drop the aliases that point at it (keeps the map from growing)."""
        for linkedid in [k for k, v in self.aliases.items() if v == call_id]:
            del self.aliases[linkedid]

    def _transfer(self, call: Call, ts: float, out: list[Event], kind: str, transferer: str | None,
                  target: str | None) -> None:
        m = self._m
        member = m.members.find(transferer)
        agent = member.agent if member else call.agent
        if call.held:  # a hold still open at a transfer ends there
            call.held = False
            out.append(m.event("call.retrieved", call, ts, agent=agent))
        out.append(m.event("call.transferred", call, ts, kind=kind, agent=agent, target=target))
        if member is not None:
            m.connected.pop(interface_device(member.interface), None)
        call.agent = None
        call.device = target

    def _merge(self, other_id: str, into: Call) -> None:
        """The consultation call becomes part of the customer call (one call_id for the whole call)."""
        m = self._m
        self.aliases[other_id] = into.call_id
        other = m.calls.pop(other_id, None)
        if other is None:
            return
        for uid in other.channels:
            m.chan_call[uid] = into.call_id
            into.channels.add(uid)
        m.recordings.moved(other_id, into.call_id)

"""CSTA TransferredEvent / ConferencedEvent -> `call.transferred` / `call.conferenced`.

A transfer or a conference hands the customer call's parties new callIDs, and a
consultation leg (kept aside by the mapper) joins the call: `secondaryOldCall` names the
consultation, each connection list item's `newConnection` the callID a party has now. All of
them become aliases of the customer call's `call_id` (docs/csta.md), and the last new one is
the callID the call has now (`current`: its CallClearedEvent is the call's end; those of the
callIDs it left behind are not). A hold still open at a transfer or conference ends there.
No I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ctid.drivers.csta.protocol import as_list, device_id

if TYPE_CHECKING:
    from ctid.drivers.csta.mapper import Call, CstaMapper

Event = dict[str, Any]
Body = dict[str, Any]


class Transfers:
    """Transfers and conferences on one CSTA link; works on the mapper's calls and callID map
    (`m.call_of`, `m.event`, `m.calls`, `m.ids`, its agents)."""

    def __init__(self, m: CstaMapper) -> None:
        self._m = m

    def transferred(self, b: Body, ts: float, t: float, out: list[Event]) -> None:
        """A TransferredEvent: attended when it names the consultation (secondaryOldCall), else blind."""
        kind = "attended" if isinstance(b.get("secondaryOldCall"), dict) else "blind"
        joined = self._join(b, "transferredConnections", "transferringDevice", ts, out)
        if joined is None:
            return
        call, agent = joined
        target = device_id(b.get("transferredToDevice"))
        out.append(self._m.event("call.transferred", call, ts, kind=kind, agent=agent, target=target))
        call.agent = None
        call.device = target
        call.t_ring = None

    def conferenced(self, b: Body, ts: float, t: float, out: list[Event]) -> None:
        """A ConferencedEvent (a consultation joined, or a supervisor's single-step conference)."""
        m = self._m
        joined = self._join(b, "conferenceConnections", "conferencingDevice", ts, out)
        if joined is None:
            return
        call, agent = joined
        # A supervisor's SingleStepConferenceCall says how it joined: silent (listen) or active (barge).
        how = {"silentParticipation": "silent", "activeParticipation": "active"}.get(str(b.get("cause")))
        out.append(m.event("call.conferenced", call, ts, agent=agent, target=device_id(b.get("addedParty")),
                           **({"x": {"participation": how}} if how else {})))

    def _join(self, b: Body, list_key: str, by_key: str, ts: float, out: list[Event]) -> tuple[Call, str | None] | None:
        """The call both events act on, its legs merged, and the agent who acted; a held call
        is retrieved first (the transfer or conference takes it off hold)."""
        m = self._m
        call = m.call_of(b["primaryOldCall"], create=False)
        if call is None:
            return None
        self._merge_legs(call, b, list_key)
        agent = m.agents.at(device_id(b.get(by_key))) or call.agent
        if call.held:
            call.held = False
            out.append(m.event("call.retrieved", call, ts, agent=agent))
        return call, agent

    def _merge_legs(self, call: Call, b: Body, list_key: str) -> None:
        secondary = b.get("secondaryOldCall")
        if isinstance(secondary, dict):
            self._alias(secondary.get("callID"), call)
        items = b.get(list_key)
        for item in as_list(items.get("connectionListItem") if isinstance(items, dict) else None):
            new = item.get("newConnection") if isinstance(item, dict) else None
            if isinstance(new, dict):
                self._alias(new.get("callID"), call, current=True)

    def _alias(self, csta_id: str | None, call: Call, current: bool = False) -> None:
        """A callID now belongs to `call`: merge the leg it named (a consultation) into it."""
        if not csta_id:
            return
        if current:
            call.current = csta_id
        m = self._m
        if m.ids.get(csta_id) == call.call_id:
            return
        other_id = m.ids.get(csta_id)
        if other_id is not None and other_id in m.calls:
            other = m.calls.pop(other_id)
            for cid in other.csta_ids:
                m.ids[cid] = call.call_id
                call.csta_ids.add(cid)
        m.ids[csta_id] = call.call_id
        call.csta_ids.add(csta_id)

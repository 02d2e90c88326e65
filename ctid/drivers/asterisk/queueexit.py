"""Queue exits whose cause is not known yet: a queue timeout, or a Redirect by any AMI client.

Asterisk raises `QueueCallerAbandon` for both (and for a caller hanging up, which the mapper
tells apart by itself). Only the caller channel's next dialplan step says which: after a
timeout `Queue()` returns and the next `Newexten` is in the same context and extension as the
`Queue()` step (or the channel hangs up); after a Redirect the next `Newexten` is at the
redirect's target. `QueueExits` holds each such `call.diverted` until then. No I/O.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("ctid.driver.asterisk")

Event = dict[str, Any]
Place = tuple[str | None, str | None]  # (Context, Exten) of a channel snapshot


@dataclass(slots=True)
class _Undecided:
    event: Event  # complete but for `cause`; `ts` is the abandon's (when the call left the queue)
    place: Place  # where Queue() ran: a Newexten there means Queue() returned


class QueueExits:
    """Diversions waiting for their cause, by caller channel (Uniqueid), oldest first.

    `pending` is empty nearly always: the mapper calls `decide` only while it is not, so the
    frames of every other channel cost one truth test.
    """

    def __init__(self, decide_within: float = 5.0) -> None:
        self.pending: dict[str, _Undecided] = {}
        self.decide_within = decide_within  # seconds; then the exit is taken to be a timeout
        self.assumed = 0  # exits decided without their deciding frame (expired, call gone, resync)

    def hold(self, uid: str, event: Event, place: Place, out: list[Event]) -> None:
        """Keep `event` (a call.diverted without its cause) until channel `uid` shows where it went."""
        if uid in self.pending:  # a second exit before the first was decided (frames lost): publish both
            self._assume(uid, out, "the channel left a queue again")
        self.pending[uid] = _Undecided(event, place)

    def decide(self, name: str, frame: dict[str, str], ts: float, out: list[Event]) -> None:
        """Settle the exit of this frame's channel if the frame tells where it went; expire the oldest."""
        uid = frame.get("Uniqueid")
        pending = self.pending.get(uid) if uid else None
        if pending is not None and uid is not None:
            place = (frame.get("Context"), frame.get("Exten"))
            if name == "Hangup":
                self._settle(uid, "timeout", out)  # nothing more in the dialplan after Queue()
            elif name == "Newexten":
                self._settle(uid, "timeout" if place == pending.place else "redirected", out)
            elif place[0] is not None and place != pending.place:
                # Any other frame of the channel from another place: it was moved there (the
                # frames raised while it leaves the queue still carry the Queue() step's place).
                self._settle(uid, "redirected", out)
        if self.pending:
            oldest_uid, oldest = next(iter(self.pending.items()))  # insertion order: oldest first
            if ts - oldest.event["ts"] > self.decide_within:
                self._assume(oldest_uid, out, "no Newexten or Hangup of the channel in time")

    def settle_before(self, out: list[Event]) -> None:
        """Later events of a call whose exit is undecided: the diversion is published first."""
        calls = {event.get("call_id") for event in out}
        early: list[Event] = []
        for uid in [u for u, p in self.pending.items() if p.event["call_id"] in calls]:
            self._assume(uid, early, "another event of the call came first")
        out[:0] = early

    def settle_call(self, call_id: str, out: list[Event], why: str) -> None:
        """The call ends (or is given up): its undecided exits are timeouts."""
        for uid in [u for u, p in self.pending.items() if p.event["call_id"] == call_id]:
            self._assume(uid, out, why)

    def settle_all(self, out: list[Event], why: str) -> None:
        for uid in list(self.pending):
            self._assume(uid, out, why)

    def _settle(self, uid: str, cause: str, out: list[Event]) -> None:
        pending = self.pending.pop(uid)
        pending.event["cause"] = cause
        out.append(pending.event)

    def _assume(self, uid: str, out: list[Event], why: str) -> None:
        """No deciding frame will come: a queue exit nobody is known to have caused is a timeout."""
        self.assumed += 1
        log.info("queue exit taken as a timeout",
                 extra={"ctx": {"uniqueid": uid, "call_id": self.pending[uid].event["call_id"], "why": why}})
        self._settle(uid, "timeout", out)

"""Asterisk MixMonitor frames -> `recording.started` / `recording.stopped`.

A recording's file name comes from the `VarSet` of `MIXMONITOR_FILENAME` just before its
`MixMonitorStart` on the same channel (the parser keeps only that VarSet); a recording ends with
`MixMonitorStop`, with its channel's `Hangup`, or with its call. Recordings are kept by channel
(Uniqueid) and carry the call_id of the call the channel belongs to, so a transfer that merges
calls moves them (`moved`). No I/O.
"""

from __future__ import annotations

from typing import Any, Callable

Event = dict[str, Any]
Frame = dict[str, str]


class Recordings:
    """The MixMonitor recordings running on one AMI link, by channel.

    `ensure_call(frame)` is the mapper's lookup of the call a frame's channel belongs to
    (registering a channel first seen mid-call); `call_of(call_id)` gives the call a stop
    reports on (a bare call with that id when it is gone); `make(type, call, ts, **fields)`
    builds an event with the call's fields, so recording events carry what every call event does.
    """

    def __init__(self, ensure_call: Callable[[Frame], Any], call_of: Callable[[str], Any],
                 make: Callable[..., Event]) -> None:
        self._ensure_call = ensure_call
        self._call_of = call_of
        self._make = make
        self.file: dict[str, str] = {}  # uniqueid -> MIXMONITOR_FILENAME, until its MixMonitorStart
        self.open: dict[str, tuple[str, str | None, float]] = {}  # uniqueid -> (call_id, path, t0)

    def __len__(self) -> int:
        return len(self.open)

    def varset(self, f: Frame, ts: float, out: list[Event]) -> None:
        """A VarSet: only MIXMONITOR_FILENAME is of interest (the next recording's path)."""
        if f.get("Variable") == "MIXMONITOR_FILENAME" and "Uniqueid" in f:
            self.file[f["Uniqueid"]] = f.get("Value", "")

    def started(self, f: Frame, ts: float, out: list[Event]) -> None:
        """A MixMonitorStart."""
        call = self._ensure_call(f)
        if call is None:
            return
        uid = f["Uniqueid"]
        path = self.file.pop(uid, None) or None
        if uid in self.open:  # a second MixMonitor on the same channel replaces the first
            self.end(uid, ts, out)
        self.open[uid] = (call.call_id, path, ts)
        out.append(self._make("recording.started", call, ts, path=path))

    def stopped(self, f: Frame, ts: float, out: list[Event]) -> None:
        """A MixMonitorStop."""
        self.end(f.get("Uniqueid", ""), ts, out)

    def end(self, uid: str, ts: float, out: list[Event]) -> None:
        """The channel's recording (if any) stops now: MixMonitorStop, or the channel or call is gone."""
        rec = self.open.pop(uid, None)
        self.file.pop(uid, None)
        if rec is None:
            return
        call_id, path, t0 = rec
        out.append(self._make("recording.stopped", self._call_of(call_id), ts, path=path, duration=round(ts - t0, 3)))

    def moved(self, from_id: str, to_id: str) -> None:
        """Call `from_id` was merged into `to_id` (attended transfer): its recordings go with it."""
        for uid, (cid, path, t0) in list(self.open.items()):
            if cid == from_id:
                self.open[uid] = (to_id, path, t0)

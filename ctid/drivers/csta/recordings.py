"""CSTA voice-unit recording events -> `recording.started` / `recording.stopped`.

The wire form is ECMA-269's (ECMA-323 XML): a RecordEvent says a voice unit started
recording a connection (`connection` = callID + deviceID) into a message (`message`, the
MessageID: the recording's id, here taken as its path); a StopEvent with the same message
says it stopped. A recording still running when its call ends stops with the call, as an
Asterisk MixMonitor stops with its channel. Durations come from the events' time stamps
(as waits and rings do); ECMA's optional `length` is kept under `x`, its unit not assumed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Protocol

log = logging.getLogger("ctid.driver.csta")

Event = dict[str, Any]


class _CallLike(Protocol):
    call_id: str
    consult: bool


@dataclass(slots=True)
class _Open:
    call: Any  # the mapper's _Call the recording belongs to
    path: str | None
    t0: float  # server time (or arrival time when the server gave none) of the RecordEvent
    ts0: float  # arrival time of the RecordEvent (for a stop that has no server time: resync)


class Recordings:
    """The recordings running on one link, by message id.

    `resolve(connection)` is the mapper's lookup of a known call (None, counted as an
    orphan by it, when the call is unknown); `make(type, call, ts, **fields)` builds an
    event with the call's fields, so recording events carry what every call event does;
    `unusable()` counts an event of a known call that cannot be used (the mapper's `unknown`).
    """

    def __init__(self, source: str, resolve: Callable[[Any], Any], make: Callable[..., Event],
                 unusable: Callable[[], None]) -> None:
        self.source = source
        self._resolve = resolve
        self._make = make
        self._unusable = unusable
        self.open: dict[str, _Open] = {}

    def __len__(self) -> int:
        return len(self.open)

    def started(self, b: dict[str, Any], ts: float, t: float, out: list[Event]) -> None:
        """A RecordEvent."""
        conn = b["connection"]
        message = _message(b)
        call = self._resolve(conn)
        if call is None:
            log.info("recording of an unknown call", extra={"ctx": {"driver": self.source, "message": message,
                                                                    "callID": conn.get("callID")}})
            return
        if call.consult:
            # A consultation leg has no call_id of its own in the model until a transfer merges it.
            self._unusable()
            log.info("recording of a consultation leg not reported", extra={"ctx": {
                "driver": self.source, "message": message, "callID": conn.get("callID")}})
            return
        key = message or f"{call.call_id}:{conn.get('deviceID')}"
        if key in self.open:  # the same message started again: the first one ended
            self._stop(key, ts, t, out)
        self.open[key] = _Open(call, message, t, ts)
        out.append(self._make("recording.started", call, ts, path=message))

    def stopped(self, b: dict[str, Any], ts: float, t: float, out: list[Event]) -> None:
        """A StopEvent (of a recording; a voice unit's playback stop has no open recording)."""
        conn = b["connection"]
        message = _message(b)
        if message is not None and message in self.open:
            self._stop(message, ts, t, out)
            return
        call = self._resolve(conn)  # counts an orphan when the call is unknown
        ctx = {"driver": self.source, "message": message, "callID": conn.get("callID")}
        if call is None:
            log.info("recording stop of an unknown call", extra={"ctx": ctx})
            return
        key = f"{call.call_id}:{conn.get('deviceID')}"
        if message is None and key in self.open:
            self._stop(key, ts, t, out)
            return
        self._unusable()  # e.g. ctid started while the recording ran: its start (and length) unknown
        log.info("stop of a recording that was not started", extra={"ctx": ctx})

    def call_ended(self, call: _CallLike, ts: float, t: float | None, out: list[Event]) -> None:
        """The call is over: its recordings still running stop now (`t` None: no server time)."""
        for key in [k for k, rec in self.open.items() if rec.call is call]:
            self._stop(key, ts, t, out)

    def _stop(self, key: str, ts: float, t: float | None, out: list[Event]) -> None:
        rec = self.open.pop(key)
        duration = t - rec.t0 if t is not None else ts - rec.ts0
        out.append(self._make("recording.stopped", rec.call, ts, path=rec.path, duration=round(max(0.0, duration), 3)))


def _message(b: dict[str, Any]) -> str | None:
    message = b.get("message")
    return message if isinstance(message, str) and message else None

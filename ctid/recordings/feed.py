"""From the daemon's events to `Recording`s: each recording of a call, joined with its CDR.

`recording.started`/`recording.stopped` open and close recordings per call; `call.cleared`
(or `call.failed`) carries everything the `cdr` row is made of (the store writes that row from
the same event), so the recordings of the call are completed from it then: caller, called,
queue, agent, direction, disposition, and the extras `x.team`, `x.tags`, `x.qa_score`,
`x.voicemail`. A recording still open at the end of the call ends with the call.

A recording's team (what `supervisor:<team>` principals see) is the call's `x.team` if it
carries one, else the `[[team]]` of the agent who took it, else the call's queue (`team_for`).

Bad input (a recording event without a `call_id`, a stop without a time) raises
`FeedError` with the event's context; the caller logs and counts it, the rest goes on.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ctid.recordings.model import Recording
from ctid.teams import NO_TEAMS, Teams

MAX_OPEN_CALLS = 100_000  # calls with recordings whose call.cleared never came are dropped, oldest first
EVENT_TYPES = {"recording.started", "recording.stopped", "call.cleared", "call.failed"}


class FeedError(ValueError):
    """An event the feed cannot use; `context` says which."""

    def __init__(self, message: str, context: dict[str, Any]) -> None:
        super().__init__(message)
        self.context = context


@dataclass
class _Part:
    path: str | None
    start: float
    duration: float | None = None


class RecordingFeed:
    """Collects each call's recordings until the call ends; `observe` returns the finished ones."""

    def __init__(self, site: str | None = None, teams: Teams = NO_TEAMS) -> None:
        self.site = site
        self.teams = teams
        self._calls: OrderedDict[str, list[_Part]] = OrderedDict()
        self.dropped = 0

    def observe(self, event: dict[str, Any]) -> list[Recording]:
        etype = event.get("type")
        if etype not in EVENT_TYPES:
            return []
        call_id = event.get("call_id")
        ctx = {"type": etype, "call_id": call_id, "path": event.get("path"), "seq": event.get("seq")}
        if not isinstance(call_id, str) or not call_id:
            if etype.startswith("recording."):
                raise FeedError(f"{etype} without a call_id", ctx)
            return []
        ts = event.get("ts")
        if isinstance(ts, bool) or not isinstance(ts, (int, float)):
            raise FeedError(f"{etype} without a numeric ts", ctx)
        if etype == "recording.started":
            self._open(call_id).append(_Part(event.get("path"), float(ts)))
            return []
        if etype == "recording.stopped":
            self._stop(call_id, event, float(ts), ctx)
            return []
        parts = self._calls.pop(call_id, None)
        return self._finish(call_id, parts, event, float(ts)) if parts else []

    def _open(self, call_id: str) -> list[_Part]:
        parts = self._calls.get(call_id)
        if parts is None:
            parts = self._calls[call_id] = []
            if len(self._calls) > MAX_OPEN_CALLS:
                self._calls.popitem(last=False)
                self.dropped += 1
        return parts

    def _stop(self, call_id: str, event: dict[str, Any], ts: float, ctx: dict[str, Any]) -> None:
        duration = event.get("duration")
        if duration is not None and (isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration < 0):
            raise FeedError(f"recording.stopped with a bad duration {duration!r}", ctx)
        parts = self._open(call_id)
        path = event.get("path")
        for part in reversed(parts):
            if part.duration is None and (path is None or part.path in (None, path)):
                part.path = part.path or path
                part.duration = float(duration) if duration is not None else max(0.0, ts - part.start)
                return
        # A stop without its start (ctid restarted mid-call): the start follows from the duration.
        d = float(duration) if duration is not None else 0.0
        parts.append(_Part(path, ts - d, d))

    def _finish(self, call_id: str, parts: list[_Part], cleared: dict[str, Any], ts: float) -> list[Recording]:
        x = cleared.get("x") if isinstance(cleared.get("x"), dict) else {}
        disposition = cleared.get("disposition")
        if disposition == "answered" and (cleared.get("transfers") or 0) > 0:
            disposition = "transferred"
        voicemail = bool(x.get("voicemail")) or disposition == "voicemail"
        tags = x.get("tags") if isinstance(x.get("tags"), list) else []
        qa = x.get("qa_score")
        out = []
        for k, part in enumerate(parts):
            rid = os.path.basename(part.path) if part.path else f"{call_id}:{k}"
            out.append(Recording(
                recording_id=rid, start=part.start,
                duration=part.duration if part.duration is not None else max(0.0, ts - part.start),
                call_id=call_id, path=part.path, direction=cleared.get("direction"), caller=cleared.get("caller"),
                called=cleared.get("called"), queue=cleared.get("queue"), agent=cleared.get("agent"),
                team=team_for(x.get("team"), cleared.get("agent"), cleared.get("queue"), self.teams),
                disposition=disposition, voicemail=voicemail, tags=tuple(str(t) for t in tags),
                qa_score=float(qa) if isinstance(qa, (int, float)) and not isinstance(qa, bool) else None,
                site=cleared.get("site", self.site)))
        return out


def team_for(team: Any, agent: str | None, queue: str | None, teams: Teams) -> str | None:
    """The team a recording is filed under: the call's own `team` (a non-empty string), else the
    configured team of its agent, else its queue (a site without `[[team]]` files by queue)."""
    if isinstance(team, str) and team:
        return team
    return teams.team_of(agent) or queue

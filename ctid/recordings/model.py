"""A recording's metadata: the `Recording` record, its table, and the codes the index stores.

One row per recording in the `recording` table (its own SQLAlchemy metadata, created next to
the store's tables in the same database). The in-memory index keeps only numbers per
recording (see `ctid.recordings.columns`); the strings of a result page come from this table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, Boolean, Double, Index, MetaData, String, Table, Text, Column, Integer, BigInteger

#: Primary keys: 64-bit everywhere except SQLite, where only INTEGER autoincrements.
_BigId = BigInteger().with_variant(Integer(), "sqlite")
KEY = 128

DIRECTIONS = ("inbound", "outbound", "internal")
#: The call dispositions of docs/protocol.md, plus `transferred` (answered, then transferred).
DISPOSITIONS = ("answered", "abandoned", "timeout", "redirected", "unanswered", "failed", "lost", "transferred",
                "voicemail")

metadata = MetaData()

RECORDING = Table(
    "recording", metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("recording_id", String(KEY), nullable=False, unique=True),
    Column("site", String(KEY)),
    Column("call_id", String(KEY)),
    Column("path", Text),
    Column("start", Double, nullable=False),
    Column("duration", Double, nullable=False),
    Column("direction", String(16)),
    Column("caller", String(KEY)),
    Column("called", String(KEY)),
    Column("queue", String(KEY)),
    Column("agent", String(KEY)),
    Column("team", String(KEY)),
    Column("disposition", String(32)),
    Column("voicemail", Boolean, nullable=False, default=False),
    Column("tags", JSON),
    Column("qa_score", Double),
    # The indexes SQL needs for the same queries the in-memory index answers (bench/test_recordings.py
    # compares the two): time, and each posting-list key with time.
    Index("ix_recording_start", "start", "id"),
    Index("ix_recording_agent_start", "agent", "start"),
    Index("ix_recording_queue_start", "queue", "start"),
    Index("ix_recording_team_start", "team", "start"),
    Index("ix_recording_call_id", "call_id"),
)

#: The fields of a recording, in the order of the JSON rows and of the CSV outputs.
FIELDS = ("recording_id", "call_id", "path", "start", "duration", "direction", "caller", "called", "queue",
          "agent", "team", "disposition", "voicemail", "tags", "qa_score")


@dataclass
class Recording:
    """One recording of a call (or a voicemail), whole.

    `start` is UTC epoch seconds, `duration` seconds. `team` is the team that may see it
    (a supervisor's team; by default the call's queue, as for bus roles). `agent` is the agent
    who took the call, or for a voicemail the agent it was left for. `id` is the database key
    (None until stored).
    """

    recording_id: str
    start: float
    duration: float
    call_id: str | None = None
    path: str | None = None
    direction: str | None = None
    caller: str | None = None
    called: str | None = None
    queue: str | None = None
    agent: str | None = None
    team: str | None = None
    disposition: str | None = None
    voicemail: bool = False
    tags: tuple[str, ...] = ()
    qa_score: float | None = None
    site: str | None = None
    id: int | None = field(default=None, compare=False)

    def row(self) -> dict[str, Any]:
        """The database row (without `id`)."""
        return {"recording_id": self.recording_id, "site": self.site, "call_id": self.call_id, "path": self.path,
                "start": self.start, "duration": self.duration, "direction": self.direction, "caller": self.caller,
                "called": self.called, "queue": self.queue, "agent": self.agent, "team": self.team,
                "disposition": self.disposition, "voicemail": self.voicemail, "tags": list(self.tags),
                "qa_score": self.qa_score}

    @classmethod
    def from_row(cls, row: Any) -> Recording:
        """From a `recording` row mapping."""
        return cls(recording_id=row["recording_id"], start=row["start"], duration=row["duration"],
                   call_id=row["call_id"], path=row["path"], direction=row["direction"], caller=row["caller"],
                   called=row["called"], queue=row["queue"], agent=row["agent"], team=row["team"],
                   disposition=row["disposition"], voicemail=bool(row["voicemail"]),
                   tags=tuple(row["tags"] or ()), qa_score=row["qa_score"], site=row["site"], id=row["id"])

    def as_json(self) -> dict[str, Any]:
        """The row of `recordings.search` and `ctid recordings search --json`."""
        out = {name: getattr(self, name) for name in FIELDS}
        out["tags"] = list(self.tags)
        return out


def number_key(number: str | None) -> tuple[int, int]:
    """(digits as an int, digit count) of a phone number; (0, 0) when it has no digit key.

    A leading `+` is dropped (number filters match digits); anything else that is not a digit,
    or more than 18 digits, gives no key: such numbers never match a number filter.
    """
    if not number:
        return 0, 0
    digits = number[1:] if number[0] == "+" else number
    if not digits or len(digits) > 18 or not digits.isascii() or not digits.isdigit():
        return 0, 0
    return int(digits), len(digits)

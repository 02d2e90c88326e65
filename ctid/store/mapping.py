"""Normalized events -> store rows, as DB-API parameter tuples. Pure, no database.

- every `call.*` and `recording.*` -> a `call_event` journal row (the whole event as payload);
- `call.cleared` -> also a `cdr` row (absent fields are NULL);
- every `agent.*` -> an `agent_state` row;
- `agent.acw` with a `call_id` and a `duration` -> also an `acw` update of that call's cdr.
Other categories (queue, route, screenpop, system) are not stored.

This runs on the writer thread for every stored event, holding the GIL the daemon's loop
needs: so each event is read once, straight into tuples in column order (the JSON columns
already encoded), which go to the driver's `executemany` as they are. No per-row dicts, no
SQLAlchemy type processing: sqlite3 binds and steps them in C, releasing the GIL per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping

from ctid.store.models import lenient_json_dumps

Kind = Literal["cdr", "call_event", "agent_state", "acw"]

#: cdr columns copied from the `call.cleared` event under the same name.
CDR_FIELDS = (
    "call_id", "caller", "caller_name", "called", "queue", "agent", "direction",
    "t_offered", "t_queued", "t_answered", "t_ended",
    "wait", "talk", "hold", "acw", "disposition", "recording", "transfers", "x",
)  # fmt: skip

#: Each table's row: the columns, in the order of the parameter tuples.
COLUMNS: dict[str, tuple[str, ...]] = {
    "cdr": ("site", *CDR_FIELDS),
    "call_event": ("site", "seq", "epoch", "ts", "type", "call_id", "queue", "agent", "payload"),
    "agent_state": ("site", "ts", "agent", "name", "queue", "state", "reason", "call_id", "duration"),
}
#: An acw update's parameters: `UPDATE cdr SET acw = ? WHERE site = ? AND call_id = ?`.
ACW_PARAMS = ("acw", "site", "call_id")

_ACW_AT = COLUMNS["cdr"].index("acw")
_X_AT = COLUMNS["cdr"].index("x")
_dumps = lenient_json_dumps


@dataclass(slots=True)
class Op:
    """One row on its own (the row-by-row retry of a failed batch): its table (`kind`, or
    `acw`: update a cdr), its parameters in `COLUMNS[kind]` order, and its event."""

    kind: Kind
    row: tuple[Any, ...]
    event: Mapping[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        """(site, call_id): how a cdr and its acw find each other."""
        return (self.row[1], self.row[2]) if self.kind == "acw" else (self.row[0], self.row[1])

    def values(self) -> dict[str, Any]:
        """The row as {column: value}."""
        return dict(zip(ACW_PARAMS if self.kind == "acw" else COLUMNS[self.kind], self.row))

    def context(self) -> dict[str, Any]:
        """Log context: the table and the event's type, site, call, agent and seq."""
        ev = self.event
        ctx = {k: ev.get(k) for k in ("type", "site", "call_id", "agent", "seq", "epoch")}
        return {"table": self.kind, **ctx}


class UnstorableEvent(ValueError):
    """The event cannot be mapped to rows (it has no usable `type`)."""


def _epoch(value: Any) -> int | None:
    """The bus's epoch is an int; anything else stays in the payload only."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Rows:
    """One batch of events as rows: per table a list of parameter tuples, and beside each
    list the events the rows came from (for log context when a row fails).

    cdr rows are lists until `cdr_rows()`, so a waiting or same-batch acw can go into them.
    """

    __slots__ = ("call_event", "agent_state", "cdr", "acw", "call_event_from", "agent_state_from", "cdr_from",
                 "acw_from")

    def __init__(self) -> None:
        self.call_event: list[tuple[Any, ...]] = []
        self.agent_state: list[tuple[Any, ...]] = []
        self.cdr: list[list[Any]] = []
        self.acw: list[tuple[Any, str, str]] = []  # (acw, site, call_id)
        self.call_event_from: list[Mapping[str, Any]] = []
        self.agent_state_from: list[Mapping[str, Any]] = []
        self.cdr_from: list[Mapping[str, Any]] = []
        self.acw_from: list[Mapping[str, Any]] = []

    def __len__(self) -> int:
        return len(self.call_event) + len(self.agent_state) + len(self.cdr) + len(self.acw)

    def add(self, event: Mapping[str, Any]) -> str | None:
        """Map one event (nothing for categories the store ignores); a problem, if any.

        A `call.cleared` without `call_id` is journaled but gives no cdr (the problem says so).
        Raises UnstorableEvent for an event with no usable type; nothing is added then.
        """
        etype = event.get("type")
        if not isinstance(etype, str) or "." not in etype:
            raise UnstorableEvent(f"event without a valid type: {etype!r}")
        category, _, name = etype.partition(".")
        get = event.get
        site = get("site") or ""
        if category == "call" or category == "recording":
            journal = (site, get("seq"), _epoch(get("epoch")), get("ts"), etype, get("call_id"), get("queue"),
                       get("agent"), _dumps(event))
            if name != "cleared" or category != "call":
                self.call_event.append(journal)
                self.call_event_from.append(event)
                return None
            if not get("call_id"):
                self.call_event.append(journal)
                self.call_event_from.append(event)
                return "call.cleared without call_id: no cdr written"
            cdr = [site, *map(get, CDR_FIELDS)]
            x = cdr[_X_AT]
            if x is not None:
                cdr[_X_AT] = _dumps(x)
            self.call_event.append(journal)
            self.call_event_from.append(event)
            self.cdr.append(cdr)
            self.cdr_from.append(event)
            return None
        if category == "agent":
            call_id, duration = get("call_id"), get("duration")
            self.agent_state.append((site, get("ts"), get("agent"), get("name"), get("queue"), name, get("reason"),
                                     call_id, duration))
            self.agent_state_from.append(event)
            if name == "acw" and call_id and duration is not None:
                self.acw.append((duration, site, call_id))
                self.acw_from.append(event)
        return None

    def cdr_keys(self) -> dict[tuple[str, str], list[Any]]:
        """The batch's cdr rows by (site, call_id); the last one of a call wins."""
        return {(row[0], row[1]): row for row in self.cdr}

    @staticmethod
    def set_acw(cdr: list[Any], value: Any) -> None:
        cdr[_ACW_AT] = value

    def ops(self) -> list[Op]:
        """Every row on its own, in write order: cdrs, journal, agent states, acw updates."""
        out = [Op("cdr", tuple(r), e) for r, e in zip(self.cdr, self.cdr_from)]
        out += [Op("call_event", r, e) for r, e in zip(self.call_event, self.call_event_from)]
        out += [Op("agent_state", r, e) for r, e in zip(self.agent_state, self.agent_state_from)]
        out += [Op("acw", r, e) for r, e in zip(self.acw, self.acw_from)]
        return out

"""Normalized events -> store rows. Pure functions, no database.

- every `call.*` and `recording.*` -> a `call_event` journal row (the whole event as payload);
- `call.cleared` -> also a `cdr` row (absent fields are NULL);
- every `agent.*` -> an `agent_state` row;
- `agent.acw` with a `call_id` and a `duration` -> also an `acw` update of that call's cdr.
Other categories (queue, route, screenpop, system) are not stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping

Kind = Literal["cdr", "call_event", "agent_state", "acw"]

#: cdr columns copied from the `call.cleared` event under the same name.
CDR_FIELDS = (
    "call_id", "caller", "caller_name", "called", "queue", "agent", "direction",
    "t_offered", "t_queued", "t_answered", "t_ended",
    "wait", "talk", "hold", "acw", "disposition", "recording", "transfers", "x",
)  # fmt: skip


@dataclass(slots=True)
class Op:
    """One row to write (`kind` names the table, or `acw`: update a cdr) and its event."""

    kind: Kind
    row: dict[str, Any]
    event: Mapping[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        """(site, call_id): how a cdr and its acw find each other."""
        return (self.row["site"], self.row["call_id"])

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


def ops_for(event: Mapping[str, Any]) -> tuple[list[Op], str | None]:
    """The rows one event becomes ([] for categories the store ignores) and a problem, if any.

    A `call.cleared` without `call_id` is journaled but gives no cdr (the problem says so).
    Raises UnstorableEvent for an event with no usable type.
    """
    etype = event.get("type")
    if not isinstance(etype, str) or "." not in etype:
        raise UnstorableEvent(f"event without a valid type: {etype!r}")
    category, _, name = etype.partition(".")
    site = event.get("site") or ""
    if category in ("call", "recording"):
        ops = [
            Op(
                "call_event",
                {
                    "site": site,
                    "seq": event.get("seq"),
                    "epoch": _epoch(event.get("epoch")),
                    "ts": event.get("ts"),
                    "type": etype,
                    "call_id": event.get("call_id"),
                    "queue": event.get("queue"),
                    "agent": event.get("agent"),
                    "payload": event,
                },
                event,
            )
        ]
        if etype == "call.cleared":
            if not event.get("call_id"):
                return ops, "call.cleared without call_id: no cdr written"
            row = {f: event.get(f) for f in CDR_FIELDS}
            row["site"] = site
            ops.append(Op("cdr", row, event))
        return ops, None
    if category == "agent":
        ops = [
            Op(
                "agent_state",
                {
                    "site": site,
                    "ts": event.get("ts"),
                    "agent": event.get("agent"),
                    "name": event.get("name"),
                    "queue": event.get("queue"),
                    "state": name,
                    "reason": event.get("reason"),
                    "call_id": event.get("call_id"),
                    "duration": event.get("duration"),
                },
                event,
            )
        ]
        if name == "acw" and event.get("call_id") and event.get("duration") is not None:
            row = {"site": site, "call_id": event["call_id"], "acw": event["duration"]}
            ops.append(Op("acw", row, event))
        return ops, None
    return [], None

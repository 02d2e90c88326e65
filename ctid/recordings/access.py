"""Who is asking: the principal every recording query runs as, and what it may see.

- `agent:<id>`: recordings of calls that agent took, and voicemails left for it
  (both carry the agent in `agent`);
- `supervisor:<team>[,<team>...]`: recordings whose `team` is one of its teams;
- `auditor`, `admin`: every recording.

`allowed(principal, query)` is applied by `RecordingIndex.plan` (the start of every search,
count and histogram), so no caller can forget it: the principal's own limit is intersected with whatever the query asks for. A query
for other agents (or teams) gives no rows rather than more rows, and an empty query gives the
principal's own recordings. The bus roles of issue #8 (`agent:<id>`, `supervisor:<team>`,
`admin`, `crm`) map onto these with `Principal.parse(role)`; `crm` sees what `auditor` sees.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ctid.recordings.query import Query, QueryError

KINDS = ("agent", "supervisor", "auditor", "admin")


@dataclass(frozen=True, init=False)
class Principal:
    """`kind` is one of KINDS; `ids` the agent id (agent) or team names (supervisor)."""

    kind: str
    ids: tuple[str, ...] = ()

    def __init__(self, kind: str, ids: tuple[str, ...] = ()) -> None:
        # a principal may be made per request: plain stores, not a frozen dataclass's setattr
        d = self.__dict__
        d["kind"] = kind
        d["ids"] = ids
        if kind == "agent" or kind == "supervisor":
            if not ids or not all(ids):
                raise QueryError("principal", f"{kind} needs an id: '{kind}:<id>'")
            if kind == "agent" and len(ids) != 1:
                raise QueryError("principal", "an agent principal is exactly one agent")
        elif kind not in KINDS:
            raise QueryError("principal", f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
        elif ids:
            raise QueryError("principal", f"{kind} takes no id")

    @classmethod
    def parse(cls, role: str) -> Principal:
        """`agent:1001`, `supervisor:sales,support`, `auditor`, `admin` (and the bus role `crm`)."""
        if not isinstance(role, str):
            raise QueryError("principal", f"expected a role string such as 'agent:1001', got {role!r}")
        kind, _, arg = role.partition(":")
        if kind == "crm":
            kind = "auditor"
        return cls(kind, tuple(arg.split(",")) if arg else ())

    @property
    def role(self) -> str:
        return f"{self.kind}:{','.join(self.ids)}" if self.ids else self.kind

    @property
    def sees_all(self) -> bool:
        return self.kind in ("auditor", "admin")


ADMIN = Principal("admin")


def allowed(principal: Principal, query: Query) -> tuple[str, tuple[str, ...]] | None:
    """What `principal` may see of `query`: ("", ()) for everything, or the field ("agents" or
    "teams") and the names the query must be narrowed to; None when that is nothing at all."""
    if principal.sees_all:
        return "", ()
    field = "agents" if principal.kind == "agent" else "teams"
    asked: tuple[str, ...] = getattr(query, field)
    names = principal.ids if not asked else tuple(x for x in asked if x in principal.ids)
    return (field, names) if names else None


def restrict(principal: Principal, query: Query) -> Query | None:
    """The query narrowed to what `principal` may see; None when that is nothing at all."""
    scope = allowed(principal, query)
    if scope is None:
        return None
    return replace(query, **{scope[0]: scope[1]}) if scope[0] else query

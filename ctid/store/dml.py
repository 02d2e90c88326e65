"""Writing mapped rows: one transaction, one executemany per table, then acw updates."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine, insert, update
from sqlalchemy.exc import IntegrityError

from ctid.store.mapping import Op
from ctid.store.models import AGENT_STATE, CALL_EVENT, CDR

log = logging.getLogger("ctid.store")

_TABLES = (("cdr", CDR), ("call_event", CALL_EVENT), ("agent_state", AGENT_STATE))


def _cdr_of(site: str, call_id: str) -> Any:
    return update(CDR).where(CDR.c.site == site, CDR.c.call_id == call_id)


def commit(engine: Engine, ops: list[Op]) -> tuple[int, list[Op]]:
    """Write ops in one transaction: (rows written, acw updates that found no cdr)."""
    rows: dict[str, list[dict[str, Any]]] = {"cdr": [], "call_event": [], "agent_state": []}
    acws: list[Op] = []
    for op in ops:
        if op.kind == "acw":
            acws.append(op)
        else:
            rows[op.kind].append(op.row)
    unmatched: list[Op] = []
    written = 0
    with engine.begin() as conn:
        for kind, table in _TABLES:
            if rows[kind]:
                conn.execute(insert(table), rows[kind])
                written += len(rows[kind])
        for op in acws:
            if conn.execute(_cdr_of(*op.key).values(acw=op.row["acw"])).rowcount:
                written += 1
            else:
                unmatched.append(op)
    return written, unmatched


def commit_one(engine: Engine, op: Op) -> tuple[int, list[Op]]:
    """Write one op; a cdr for a call already stored replaces it (keeping a stored acw)."""
    try:
        return commit(engine, [op])
    except IntegrityError:
        if op.kind != "cdr":
            raise
        values = {k: v for k, v in op.row.items() if k not in ("site", "call_id")}
        if values.get("acw") is None:
            values.pop("acw", None)
        with engine.begin() as conn:
            if not conn.execute(_cdr_of(*op.key).values(values)).rowcount:
                raise
        site, call_id = op.key
        log.info("cdr replaced: the call was cleared again", extra={"ctx": {"site": site, "call_id": call_id}})
        return 1, []

"""The caller's last calls, from the store's `cdr` table (finished calls, newest first).

Blocking; the pop runs it in a thread. The cdr table keeps caller ids as the PBX sent them,
so the query asks for every form the number may have (`numbers.variants`). The store does
not index `cdr.caller`; `ensure_index()` adds `ix_cdr_caller_t_offered` once, so the
lookup stays an index range scan however many calls the site has.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any, Sequence

from sqlalchemy import Column, Double, Engine, Index, MetaData, String, Table, inspect, select

from ctid.store.models import CDR

#: Only the two columns the index needs, in a MetaData of its own: the store's tables stay
#: the store's (its create_all never sees this index).
_CDR_COLUMNS = Table("cdr", MetaData(), Column("caller", String(128)), Column("t_offered", Double))
INDEX = Index("ix_cdr_caller_t_offered", _CDR_COLUMNS.c.caller, _CDR_COLUMNS.c.t_offered)

_COLUMNS = (CDR.c.call_id, CDR.c.site, CDR.c.t_offered, CDR.c.queue, CDR.c.agent, CDR.c.direction,
            CDR.c.disposition, CDR.c.wait, CDR.c.talk, CDR.c.recording)


def iso(ts: float | None) -> str | None:
    """UTC ISO 8601 with a Z, to the second: what a desktop shows after localizing it."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class History:
    def __init__(self, engine: Engine, limit: int) -> None:
        self.engine = engine
        self.limit = limit

    def ensure_index(self, log: logging.Logger) -> bool:
        """Create the caller index if the cdr table exists and lacks it; True if it is there."""
        names = inspect(self.engine).get_table_names()
        if "cdr" not in names:
            return False
        existing = {ix["name"] for ix in inspect(self.engine).get_indexes("cdr")}
        if INDEX.name in existing:
            return True
        t0 = time.monotonic()
        INDEX.create(self.engine, checkfirst=True)
        log.info("created the cdr caller index for the screen pop's history",
                 extra={"ctx": {"index": INDEX.name, "seconds": round(time.monotonic() - t0, 3)}})
        return True

    def last_calls(self, numbers: Sequence[str]) -> list[dict[str, Any]]:
        """The last `limit` finished calls from any of `numbers`, newest first."""
        if self.limit <= 0 or not numbers:
            return []
        stmt = (select(*_COLUMNS).where(CDR.c.caller.in_(list(numbers)))
                .order_by(CDR.c.t_offered.desc(), CDR.c.id.desc()).limit(self.limit))
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [{"call_id": r["call_id"], "date": iso(r["t_offered"]), "t_offered": r["t_offered"], "site": r["site"],
                 "queue": r["queue"], "agent": r["agent"], "direction": r["direction"], "disposition": r["disposition"],
                 "wait": r["wait"], "talk": r["talk"], "recording": r["recording"]} for r in rows]

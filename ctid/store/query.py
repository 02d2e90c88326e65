"""Read side of the store for reports and tests: rows as plain dicts, oldest first.

Each function takes an Engine (shared, e.g. `StoreWriter.engine`) or a URL (an
engine is made for the call and disposed). Time ranges are half-open:
`since <= t < until`, on `t_offered` for cdrs and on `ts` for the journals.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from sqlalchemy import Connection, Engine, Select, Table, select

from ctid.store.engine import make_engine
from ctid.store.models import AGENT_STATE, CALL_EVENT, CDR


@contextmanager
def _connect(engine_or_url: Engine | str) -> Iterator[Connection]:
    if isinstance(engine_or_url, Engine):
        with engine_or_url.connect() as conn:
            yield conn
        return
    engine = make_engine(engine_or_url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _rows(engine_or_url: Engine | str, stmt: Select[Any]) -> list[dict[str, Any]]:
    with _connect(engine_or_url) as conn:
        return [dict(row) for row in conn.execute(stmt).mappings()]


def _filtered(
    table: Table,
    time_col: str,
    since: float | None,
    until: float | None,
    **equal: Any,
) -> Select[Any]:
    stmt = select(table)
    col = table.c[time_col]
    if since is not None:
        stmt = stmt.where(col >= since)
    if until is not None:
        stmt = stmt.where(col < until)
    for name, value in equal.items():
        if value is not None:
            stmt = stmt.where(table.c[name] == value)
    return stmt.order_by(col, table.c.id)


def cdrs(
    engine_or_url: Engine | str,
    *,
    since: float | None = None,
    until: float | None = None,
    queue: str | None = None,
    agent: str | None = None,
    site: str | None = None,
) -> list[dict[str, Any]]:
    """Finished calls offered in [since, until), optionally of one queue, agent or site."""
    stmt = _filtered(CDR, "t_offered", since, until, queue=queue, agent=agent, site=site)
    return _rows(engine_or_url, stmt)


def agent_states(
    engine_or_url: Engine | str,
    *,
    since: float | None = None,
    until: float | None = None,
    agent: str | None = None,
    queue: str | None = None,
    site: str | None = None,
) -> list[dict[str, Any]]:
    """Agent state changes in [since, until), optionally of one agent, queue or site."""
    stmt = _filtered(AGENT_STATE, "ts", since, until, agent=agent, queue=queue, site=site)
    return _rows(engine_or_url, stmt)


def call_events(
    engine_or_url: Engine | str, call_id: str, *, site: str | None = None
) -> list[dict[str, Any]]:
    """The journal of one call (`call.*`, `recording.*`), in the order it happened."""
    stmt = _filtered(CALL_EVENT, "ts", None, None, call_id=call_id, site=site)
    return _rows(engine_or_url, stmt)

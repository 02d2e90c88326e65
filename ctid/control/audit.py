"""The audit trail: every control request, who sent it, and how it ended, in the database.

`AuditLog.record` is a `ControlService` observer: it only appends to a list (no I/O on
the request path); a task writes what piled up every `interval` seconds in one
transaction, off the loop. `entries()` reads the trail back (`ctid audit`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import Double, Engine, Index, Integer, String, Text, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from ctid.bus import current_client
from ctid.store.engine import make_engine
from ctid.store.models import Base, LenientJSON

log = logging.getLogger("ctid.audit")

#: Request keys that are the envelope, not the parameters.
ENVELOPE = frozenset({"op", "id", "request_id"})


class AuditEntry(Base):
    """One control request and its outcome."""

    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_ts", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[float] = mapped_column(Double)
    principal: Mapped[str] = mapped_column(String(128))  # the role, e.g. `agent:1001`; `plain` without keys
    key: Mapped[str | None] = mapped_column(String(40), nullable=True)
    op: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    params: Mapped[Any] = mapped_column(LenientJSON, nullable=True)
    outcome: Mapped[str] = mapped_column(String(32))  # `ok` or the error code
    message: Mapped[str | None] = mapped_column(Text, nullable=True)


AUDIT = AuditEntry.__table__


class AuditLog:
    def __init__(self, url: str, interval: float = 0.2) -> None:
        self.url = url
        self.interval = interval
        self.written = 0
        self._rows: list[dict[str, Any]] = []
        self._engine: Engine | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._engine = make_engine(self.url)
        Base.metadata.create_all(self._engine, tables=[AUDIT])  # type: ignore[list-item]
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()

    def record(self, request: dict[str, Any], outcome: str, detail: dict[str, Any]) -> None:
        """A ControlService observer: queue the row (the sender comes from the bus's `current_client`)."""
        who = current_client.get()
        request_id = request.get("request_id")
        self._rows.append({
            "ts": time.time(), "principal": who.role if who is not None else "plain",
            "key": who.key if who is not None else None, "op": str(request.get("op")),
            "request_id": request_id if isinstance(request_id, str) else None,
            "params": {k: v for k, v in request.items() if k not in ENVELOPE},
            "outcome": "ok" if outcome == "ok" else str(detail.get("code")),
            "message": None if outcome == "ok" else str(detail.get("message"))[:1000],
        })

    async def flush(self) -> None:
        rows, self._rows = self._rows, []
        if not rows or self._engine is None:
            return
        engine = self._engine

        def write() -> None:
            with engine.begin() as conn:
                conn.execute(insert(AUDIT), rows)

        try:
            await asyncio.get_running_loop().run_in_executor(None, write)
            self.written += len(rows)
        except Exception:
            self._rows[:0] = rows  # keep them for the next try; the database may be back
            log.exception("cannot write the audit trail", extra={"ctx": {"pending": len(self._rows)}})

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()


def entries(url: str, limit: int = 100, principal: str | None = None, op: str | None = None,
            since: float | None = None) -> list[dict[str, Any]]:
    """The latest audit rows, newest first, optionally for one principal, op, or after `since`."""
    engine = make_engine(url)
    Base.metadata.create_all(engine, tables=[AUDIT])  # type: ignore[list-item]
    query = select(AUDIT).order_by(AUDIT.c.id.desc()).limit(limit)
    if principal:
        query = query.where(AUDIT.c.principal == principal)
    if op:
        query = query.where(AUDIT.c.op == op)
    if since is not None:
        query = query.where(AUDIT.c.ts >= since)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]

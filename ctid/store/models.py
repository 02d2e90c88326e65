"""The store's tables: finished calls (`cdr`), the call journal (`call_event`), agent states.

Portable SQLAlchemy only (SQLite by default, PostgreSQL or MySQL by URL): times are
UTC epoch seconds in double-precision floats, keys are bounded `String`s so every
backend can index them, free text is `Text`, extras and payloads are JSON.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Dialect,
    Double,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

log = logging.getLogger("ctid.store")

#: Primary keys: 64-bit everywhere except SQLite, where only INTEGER autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")

#: Length of key columns (site, call_id, queue, agent, ...).
KEY = 128


class LenientJSON(TypeDecorator[Any]):
    """JSON (JSONB on PostgreSQL) that stores values JSON cannot encode as their `str()`.

    An event is stored even if a driver put a non-JSON value (bytes, a set, an
    object) under `x`: losing a whole CDR over one odd extra is worse than a string.
    """

    impl = JSON(none_as_null=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB(none_as_null=True))
        return dialect.type_descriptor(JSON(none_as_null=True))

    # Encoding happens once, in the engine's `json_serializer` (engine.lenient_json_dumps):
    # checking here first would encode every payload twice on the writer thread.


def lenient_json_dumps(value: Any) -> str:
    """The engine's JSON encoder: compact, UTF-8, and non-JSON values as their `str()`.

    orjson first: the writer encodes every journaled event on a thread that shares the GIL
    with the daemon's loop, and it is ~8x cheaper than `json` there. What orjson refuses
    (ints beyond 64 bits, keys that are not str/int/float/bool/None, nesting past 254) goes
    through `json`, whose output is the same JSON for everything else.
    """
    try:
        return orjson.dumps(value, default=_as_text, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, default=_as_text, skipkeys=True, ensure_ascii=False, separators=(",", ":"))


def _as_text(value: Any) -> str:
    log.warning("non-JSON value stored as text", extra={"ctx": {"value": repr(value)[:200]}})
    return str(value)


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""


class Cdr(Base):
    """One row per finished call, written from `call.cleared`; `acw` from `agent.acw`."""

    __tablename__ = "cdr"
    __table_args__ = (
        UniqueConstraint("site", "call_id", name="uq_cdr_site_call"),
        Index("ix_cdr_t_offered", "t_offered"),
        Index("ix_cdr_queue_t_offered", "queue", "t_offered"),
        Index("ix_cdr_agent_t_offered", "agent", "t_offered"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(KEY))
    call_id: Mapped[str] = mapped_column(String(KEY))
    caller: Mapped[str | None] = mapped_column(String(KEY))
    caller_name: Mapped[str | None] = mapped_column(Text)
    called: Mapped[str | None] = mapped_column(String(KEY))
    queue: Mapped[str | None] = mapped_column(String(KEY))
    agent: Mapped[str | None] = mapped_column(String(KEY))
    direction: Mapped[str | None] = mapped_column(String(16))
    t_offered: Mapped[float | None] = mapped_column(Double)
    t_queued: Mapped[float | None] = mapped_column(Double)
    t_answered: Mapped[float | None] = mapped_column(Double)
    t_ended: Mapped[float | None] = mapped_column(Double)
    wait: Mapped[float | None] = mapped_column(Double)
    talk: Mapped[float | None] = mapped_column(Double)
    hold: Mapped[float | None] = mapped_column(Double)
    acw: Mapped[float | None] = mapped_column(Double)
    disposition: Mapped[str | None] = mapped_column(String(32))
    recording: Mapped[str | None] = mapped_column(Text)
    transfers: Mapped[int | None] = mapped_column(Integer)
    x: Mapped[Any] = mapped_column(LenientJSON, nullable=True)


class CallEvent(Base):
    """The journal: every `call.*` and `recording.*` event, whole, in `payload`."""

    __tablename__ = "call_event"
    __table_args__ = (Index("ix_call_event_call_id", "call_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(KEY))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    epoch: Mapped[int | None] = mapped_column(BigInteger)
    ts: Mapped[float | None] = mapped_column(Double)
    type: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[str | None] = mapped_column(String(KEY))
    queue: Mapped[str | None] = mapped_column(String(KEY))
    agent: Mapped[str | None] = mapped_column(String(KEY))
    payload: Mapped[Any] = mapped_column(LenientJSON, nullable=True)


class AgentState(Base):
    """Each agent state change (`agent.*`); `state` is the type without `agent.`."""

    __tablename__ = "agent_state"
    __table_args__ = (Index("ix_agent_state_agent_ts", "agent", "ts"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(KEY))
    ts: Mapped[float | None] = mapped_column(Double)
    agent: Mapped[str | None] = mapped_column(String(KEY))
    name: Mapped[str | None] = mapped_column(Text)
    queue: Mapped[str | None] = mapped_column(String(KEY))
    state: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    call_id: Mapped[str | None] = mapped_column(String(KEY))
    duration: Mapped[float | None] = mapped_column(Double)


metadata = Base.metadata
CDR: Table = Cdr.__table__  # type: ignore[assignment]
CALL_EVENT: Table = CallEvent.__table__  # type: ignore[assignment]
AGENT_STATE: Table = AgentState.__table__  # type: ignore[assignment]

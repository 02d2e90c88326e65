"""The store: SQLAlchemy tables and a batched writer, off the hot path.

`open_writer(url).submit(event, packed)` from the event path; `query.cdrs(...)` and
friends for reports. Any SQLAlchemy URL works; the default is a SQLite file in WAL mode.
"""

from __future__ import annotations

from typing import Any

from ctid.store.engine import DEFAULT_URL, in_memory, make_engine
from ctid.store.models import AgentState, CallEvent, Cdr, metadata
from ctid.store.process import StoreProcess
from ctid.store.query import agent_states, call_events, cdrs
from ctid.store.writer import StoreWriter


def open_writer(url: str, **options: Any) -> StoreProcess | StoreWriter:
    """The daemon's store writer: in its own process (`StoreProcess`), unless the database
    lives in this process's memory (an in-memory SQLite), which only a thread can reach.
    `options`: batch_size, flush_interval, max_pending, acw_ttl, acw_max."""
    return StoreWriter(url, **options) if in_memory(url) else StoreProcess(url, **options)


__all__ = [
    "DEFAULT_URL",
    "AgentState",
    "CallEvent",
    "Cdr",
    "StoreProcess",
    "StoreWriter",
    "agent_states",
    "call_events",
    "cdrs",
    "make_engine",
    "metadata",
    "open_writer",
]

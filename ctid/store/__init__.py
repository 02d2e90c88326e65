"""The store: SQLAlchemy tables and a batched writer, off the hot path.

`StoreWriter(url).submit(event)` from the event path; `query.cdrs(...)` and friends
for reports. Any SQLAlchemy URL works; the default is a SQLite file in WAL mode.
"""

from ctid.store.engine import DEFAULT_URL, make_engine
from ctid.store.models import AgentState, CallEvent, Cdr, metadata
from ctid.store.query import agent_states, call_events, cdrs
from ctid.store.writer import StoreWriter

__all__ = [
    "DEFAULT_URL",
    "AgentState",
    "CallEvent",
    "Cdr",
    "StoreWriter",
    "agent_states",
    "call_events",
    "cdrs",
    "make_engine",
    "metadata",
]

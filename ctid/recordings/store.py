"""Recording metadata in the database: store (idempotently), fetch a page, delete, and the
bulk read that rebuilds the index on start.

Uses the store's engine setup (`ctid.store.engine.make_engine`: SQLite in WAL mode by
default, any SQLAlchemy URL); the `recording` table is created if missing.
"""

from __future__ import annotations

import json
import logging
from typing import Iterable, Sequence

from sqlalchemy import Engine, Text, delete, insert, select, type_coerce

from ctid.recordings.columns import Columns
from ctid.recordings.index import RecordingIndex
from ctid.recordings.model import RECORDING, Recording, metadata
from ctid.store.engine import make_engine

log = logging.getLogger("ctid.recordings")

_FETCH_CHUNK = 500  # ids per `IN (...)`: far below every backend's bound-parameter limit
_LOAD_BATCH = 50_000


class RecordingStore:
    """The `recording` table of one database."""

    def __init__(self, engine_or_url: Engine | str) -> None:
        self.engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
        self._own = isinstance(engine_or_url, str)
        metadata.create_all(self.engine)

    def close(self) -> None:
        if self._own:
            self.engine.dispose()

    def save(self, recs: Sequence[Recording]) -> list[Recording]:
        """Store the recordings whose `recording_id` is new and set their `id`; return those
        (a recording already stored, by an earlier scan or event, is left as it is)."""
        if not recs:
            return []
        ids = [r.recording_id for r in recs]
        with self.engine.begin() as conn:
            known: set[str] = set()
            for k in range(0, len(ids), _FETCH_CHUNK):
                chunk = ids[k:k + _FETCH_CHUNK]
                known.update(conn.execute(select(RECORDING.c.recording_id)
                                          .where(RECORDING.c.recording_id.in_(chunk))).scalars())
            new: list[Recording] = []
            for rec in recs:
                if rec.recording_id in known:
                    continue
                known.add(rec.recording_id)  # the same id twice in one batch: the first wins
                rec.id = conn.execute(insert(RECORDING).values(**rec.row())).inserted_primary_key[0]
                new.append(rec)
        return new

    def fetch(self, ids: Sequence[int]) -> list[Recording]:
        """The recordings with these database ids, in the order of `ids` (missing ones skipped)."""
        found: dict[int, Recording] = {}
        with self.engine.connect() as conn:
            for k in range(0, len(ids), _FETCH_CHUNK):
                stmt = select(RECORDING).where(RECORDING.c.id.in_(ids[k:k + _FETCH_CHUNK]))
                for row in conn.execute(stmt).mappings():
                    found[row["id"]] = Recording.from_row(row)
        return [found[i] for i in ids if i in found]

    def delete(self, ids: Iterable[int]) -> int:
        """Delete these rows; the number deleted."""
        ids = list(ids)
        total = 0
        with self.engine.begin() as conn:
            for k in range(0, len(ids), _FETCH_CHUNK):
                total += conn.execute(delete(RECORDING).where(RECORDING.c.id.in_(ids[k:k + _FETCH_CHUNK]))).rowcount
        return total

    def load_into(self, index: RecordingIndex) -> int:
        """Rebuild: add every stored recording to `index` as one segment; the number added.

        Rows are read in (start, id) order, so the segment is built without sorting."""
        cols = Columns()
        c = RECORDING.c
        # tags as their JSON text: most recordings have none, and decoding "[]" per row costs
        # more than the rest of the row
        stmt = select(c.start, c.id, c.duration, c.qa_score, c.agent, c.queue, c.team, c.direction, c.disposition,
                      c.voicemail, c.caller, c.called, type_coerce(c.tags, Text)).order_by(c.start, c.id)
        add = index.append_row
        n = 0
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=_LOAD_BATCH).execute(stmt)
            for row in result:
                try:
                    tags = json.loads(row[12]) if row[12] and row[12] not in ("[]", "null") else ()
                    add(cols, *row[:12], tags)
                except (ValueError, TypeError) as exc:  # one bad row must not keep the rest out of the index
                    log.error("recording not indexed", extra={"ctx": {"id": row[1], "error": str(exc)}})
                    continue
                n += 1
        index.add_columns(cols)
        return n

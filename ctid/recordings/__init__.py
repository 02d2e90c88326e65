"""Call recordings: the recording index (compiled in `_fast/recindex.pyx`), fed by the daemon,
searched with access control, imported from disk, exported and expired. docs/recordings.md.

- `model`: `Recording`, the `recording` table; `columns`: what a segment stores per recording;
- `pyindex`: one index segment in pure Python, the specification of `ctid._fast.recindex`;
- `index`: `RecordingIndex`, segments + name codes, every query as a principal;
- `query`: `Query` and `parse_query`; `access`: `Principal` and `allowed`;
- `store`: the table's reads and writes; `feed`: events -> recordings; `service`: all together;
- `scan`, `export`: the archive in and out; `cli`, `plugin`: the command and the daemon's plugin.
"""

from __future__ import annotations

from ctid.recordings.access import ADMIN, Principal
from ctid.recordings.index import COMPILED, Page, RecordingIndex
from ctid.recordings.model import Recording
from ctid.recordings.query import Query, QueryError, parse_query

__all__ = ["ADMIN", "COMPILED", "Page", "Principal", "Query", "QueryError", "Recording", "RecordingIndex",
           "parse_query"]

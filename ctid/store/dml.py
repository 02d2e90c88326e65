"""Writing a batch: one transaction, one DB-API executemany per table, then acw updates.

The inserts are plain SQL in the driver's own parameter style, run with
`Connection.exec_driver_sql` on the rows `mapping.Rows` made: SQLAlchemy still owns the
connection, the transaction and the error wrapping (so `OperationalError` means the same
as everywhere), but no row goes through its per-row compilation and type processing.
The row-by-row retry of a failed batch (`commit_one`) is the rare path and may be slow.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Sequence

from sqlalchemy import Connection, Dialect, Engine, update
from sqlalchemy.exc import IntegrityError

from ctid.store.mapping import ACW_PARAMS, COLUMNS, Op, Rows
from ctid.store.models import CDR

log = logging.getLogger("ctid.store")


class Statements:
    """The store's insert and acw-update SQL for one dialect, with positional parameters."""

    def __init__(self, dialect: Dialect) -> None:
        style = dialect.paramstyle
        if style not in ("qmark", "format", "pyformat", "numeric", "named"):
            raise ValueError(f"unsupported DB-API paramstyle {style!r}")
        self.named = style == "named"
        quote = dialect.identifier_preparer.quote

        def marks(names: Sequence[str]) -> list[str]:
            if style == "qmark":
                return ["?"] * len(names)
            if style == "numeric":
                return [f":{i}" for i in range(1, len(names) + 1)]
            if style == "named":
                return [f":p{i}" for i in range(len(names))]
            return ["%s"] * len(names)  # format, and pyformat drivers take %s too

        self.insert: dict[str, str] = {}
        for table, columns in COLUMNS.items():
            cols = ", ".join(quote(c) for c in columns)
            self.insert[table] = f"INSERT INTO {quote(table)} ({cols}) VALUES ({', '.join(marks(columns))})"
        acw, site, call_id = (quote(c) for c in ACW_PARAMS)
        m = marks(ACW_PARAMS)
        self.acw = f"UPDATE {quote('cdr')} SET {acw} = {m[0]} WHERE {site} = {m[1]} AND {call_id} = {m[2]}"

    def params(self, rows: list[Any]) -> list[Any]:
        """Rows as the driver takes them: tuples, or dicts for a `named` driver."""
        if self.named:
            return [{f"p{i}": v for i, v in enumerate(row)} for row in rows]
        return rows


def commit(conn_source: Engine, sql: Statements, rows: Rows) -> tuple[int, list[tuple[Any, str, str]]]:
    """Write a batch in one transaction: (rows written, acw updates that found no cdr)."""
    written = 0
    unmatched: list[tuple[Any, str, str]] = []
    with conn_source.begin() as conn:
        for table, data in (("cdr", [tuple(r) for r in rows.cdr]), ("call_event", rows.call_event),
                            ("agent_state", rows.agent_state)):
            if data:
                conn.exec_driver_sql(sql.insert[table], sql.params(data))
                written += len(data)
        for update_ in rows.acw:
            if _update_acw(conn, sql, update_):
                written += 1
            else:
                unmatched.append(update_)
    return written, unmatched


def _update_acw(conn: Connection, sql: Statements, params: tuple[Any, str, str]) -> bool:
    return bool(conn.exec_driver_sql(sql.acw, sql.params([params])[0]).rowcount)


def commit_one(engine: Engine, sql: Statements, op: Op) -> tuple[int, list[tuple[Any, str, str]]]:
    """Write one row; a cdr for a call already stored replaces it (keeping a stored acw)."""
    try:
        with engine.begin() as conn:
            if op.kind == "acw":
                return (1, []) if _update_acw(conn, sql, op.row) else (0, [op.row])  # type: ignore[arg-type]
            conn.exec_driver_sql(sql.insert[op.kind], sql.params([op.row])[0])
            return 1, []
    except IntegrityError:
        if op.kind != "cdr":
            raise
        values = {k: v for k, v in op.values().items() if k not in ("site", "call_id")}
        if values.get("acw") is None:
            values.pop("acw", None)
        if values.get("x") is not None:
            values["x"] = json.loads(values["x"])  # back to a value: the JSON column type encodes it
        site, call_id = op.key
        with engine.begin() as conn:
            if not conn.execute(update(CDR).where(CDR.c.site == site, CDR.c.call_id == call_id).values(values)).rowcount:
                raise
        log.info("cdr replaced: the call was cleared again", extra={"ctx": {"site": site, "call_id": call_id}})
        return 1, []

"""The store against a real SQLite file: CDRs, acw, batching, draining, poisoned rows, restart."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.exc import OperationalError
from sqlalchemy.schema import CreateIndex, CreateTable

from ctid.store import StoreWriter, agent_states, call_events, cdrs, metadata
from ctid.store.models import CALL_EVENT, CDR

T0 = 1_700_000_000.25

CLEARED: dict[str, Any] = {
    "v": 1,
    "seq": 41,
    "epoch": 3,
    "ts": T0 + 60.5,
    "site": "hq",
    "source": "asterisk",
    "type": "call.cleared",
    "call_id": "1700000000.17",
    "caller": "+12025550101",
    "caller_name": "Zoë Ærøskøbing 张伟",
    "called": "5000",
    "queue": "sales",
    "agent": "1001",
    "device": "Local/1001@agents",
    "direction": "inbound",
    "t_offered": T0,
    "t_queued": T0 + 0.5,
    "t_answered": T0 + 12.75,
    "t_ended": T0 + 60.5,
    "wait": 12.25,
    "talk": 40.0,
    "hold": 7.75,
    "disposition": "answered",
    "recording": "/var/spool/asterisk/monitor/1700000000.17.wav",
    "transfers": 1,
    "x": {"linkedid": "1700000000.17", "uniqueids": ["a", "b"]},
}


def cleared(call_id: str, **fields: Any) -> dict[str, Any]:
    return {**CLEARED, "call_id": call_id, **fields}


def acw(call_id: str, duration: float, **fields: Any) -> dict[str, Any]:
    ev = {"type": "agent.acw", "site": "hq", "ts": T0 + 61, "seq": 42, "agent": "1001"}
    return {**ev, "call_id": call_id, "duration": duration, **fields}


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'var' / 'sub' / 'ctid.db'}"


@pytest.fixture
def writer(url: str) -> Iterator[StoreWriter]:
    w = StoreWriter(url, batch_size=100, flush_interval=0.05)
    w.start()
    yield w
    w.close()


def test_cdr_round_trip_with_every_field(writer: StoreWriter, url: str, tmp_path: Path) -> None:
    writer.submit(CLEARED)
    assert writer.flush(5)
    assert (tmp_path / "var" / "sub" / "ctid.db").exists()
    with writer.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    (row,) = cdrs(url)
    for field in (
        "site", "call_id", "caller", "caller_name", "called", "queue", "agent", "direction",
        "t_offered", "t_queued", "t_answered", "t_ended", "wait", "talk", "hold",
        "disposition", "recording", "transfers", "x",
    ):  # fmt: skip
        assert row[field] == CLEARED[field], field
    assert row["acw"] is None
    (journal,) = call_events(url, CLEARED["call_id"])
    assert journal["type"] == "call.cleared" and journal["seq"] == 41 and journal["epoch"] == 3
    assert journal["payload"] == CLEARED


def test_absent_fields_are_null(writer: StoreWriter) -> None:
    writer.submit({"type": "call.cleared", "site": "hq", "ts": T0, "call_id": "bare"})
    assert writer.flush(5)
    (row,) = cdrs(writer.engine)
    assert row["call_id"] == "bare" and row["site"] == "hq"
    assert all(row[k] is None for k in ("caller", "t_offered", "talk", "transfers", "x", "acw"))


def test_acw_after_the_cdr_is_written(writer: StoreWriter) -> None:
    writer.submit(cleared("c1"))
    assert writer.flush(5)
    writer.submit(acw("c1", 9.5))
    assert writer.flush(5)
    assert cdrs(writer.engine)[0]["acw"] == 9.5
    assert writer.stats()["acw_waiting"] == 0


def test_acw_before_the_cdr_is_written_waits_for_it(writer: StoreWriter) -> None:
    writer.submit(acw("c2", 4.0))
    assert writer.flush(5)
    assert cdrs(writer.engine) == [] and writer.stats()["acw_waiting"] == 1
    writer.submit(cleared("c2"))
    assert writer.flush(5)
    assert cdrs(writer.engine)[0]["acw"] == 4.0
    assert writer.stats()["acw_waiting"] == 0
    (state,) = agent_states(writer.engine, agent="1001")
    assert state["state"] == "acw" and state["call_id"] == "c2" and state["duration"] == 4.0


def test_acw_in_the_same_batch_either_order_last_wins(writer: StoreWriter) -> None:
    for ev in (acw("a", 1.0), cleared("a"), cleared("b"), acw("b", 2.0), acw("b", 3.0)):
        writer.submit(ev)
    assert writer.flush(5)
    assert {r["call_id"]: r["acw"] for r in cdrs(writer.engine)} == {"a": 1.0, "b": 3.0}


def test_acw_waiting_is_bounded(url: str) -> None:
    with StoreWriter(url, flush_interval=0.05, acw_max=2) as w:
        for n in range(5):
            w.submit(acw(f"never-{n}", 1.0))
        assert w.flush(5)
        assert w.stats()["acw_waiting"] == 2


def test_20000_events_are_batched_and_flushed(url: str) -> None:
    w = StoreWriter(url, batch_size=500, flush_interval=0.5)
    events = []
    for n in range(5000):
        cid = f"call-{n}"
        base = {"site": "hq", "seq": n, "call_id": cid, "queue": "sales", "agent": "1001"}
        events += [
            {**base, "type": "call.offered", "ts": T0 + n},
            {**base, "type": "call.established", "ts": T0 + n + 1},
            cleared(cid, seq=n, t_offered=T0 + n),
            {**base, "type": "agent.ready", "ts": T0 + n + 2, "call_id": None},
        ]
    for ev in events[:10]:  # submit never needs the database: not even started yet
        w.submit(ev)
    assert w.pending == 10 and w.written == 0
    w.start()
    for ev in events[10:]:
        w.submit(ev)
    assert w.flush(60)
    assert w.pending == 0 and w.errors == 0
    assert w.written == 5000 * 3 + 5000 + 5000  # journal, cdr, agent_state
    assert 40 <= w.batches < 20_000 // 10  # batched, not row by row
    with w.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(CALL_EVENT)).scalar() == 15_000
        assert conn.execute(select(func.count()).select_from(CDR)).scalar() == 5000
    assert len(cdrs(w.engine, since=T0 + 100, until=T0 + 200, queue="sales")) == 100
    assert cdrs(w.engine, agent="nobody") == []
    w.close()


def test_close_drains_and_then_refuses(url: str) -> None:
    w = StoreWriter(url, batch_size=10_000, flush_interval=30)  # nothing would flush by itself
    w.start()
    for n in range(1234):
        w.submit(cleared(f"c{n}"))
    w.close()
    assert len(cdrs(url)) == 1234 and w.dropped == 0
    w.submit(cleared("late"))
    assert w.rejected == 1
    w.close()  # idempotent


def test_poisoned_rows_are_logged_counted_and_the_rest_written(
    writer: StoreWriter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ctid.store")
    good = [cleared(f"ok{n}") for n in range(5)]
    batch = [
        good[0],
        cleared("bad-type", caller=object()),  # the driver cannot bind it
        good[1],
        cleared("bad-int", transfers=2**70),  # too large for the column
        good[2],
        cleared("odd-x", x={"raw": b"\x00\xff", "set": {1}}),  # JSON can't: stored as text
        {"no": "type"},  # not an event at all
        good[3],
        good[4],
    ]
    for ev in batch:
        writer.submit(ev)
    assert writer.flush(5)
    stored = {r["call_id"]: r for r in cdrs(writer.engine)}
    assert set(stored) == {f"ok{n}" for n in range(5)} | {"odd-x"}
    assert stored["odd-x"]["x"]["raw"] == str(b"\x00\xff")
    assert writer.dropped == 3 and writer.errors >= 4 and writer.pending == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    ctxs = [getattr(r, "ctx", {}) for r in errors]
    assert {"table": "cdr", "call_id": "bad-type", "seq": 41, "site": "hq"}.items() <= next(
        c for c in ctxs if c.get("call_id") == "bad-type"
    ).items()
    assert any(c.get("call_id") == "bad-int" and "Overflow" in c["error"] for c in ctxs), ctxs
    assert any(r.getMessage().startswith("event dropped") for r in errors)
    # the journal rows of the bad cdrs are not lost
    assert len(call_events(writer.engine, "bad-type")) == 1
    # and the thread is still alive and writing
    writer.submit(cleared("after"))
    assert writer.flush(5)
    assert "after" in {r["call_id"] for r in cdrs(writer.engine)}


def test_connection_errors_retry_the_batch(
    writer: StoreWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = writer._commit
    failures = iter([True, True])

    def flaky(ops: Any, **kw: Any) -> Any:
        if next(failures, False):
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return real(ops, **kw)

    monkeypatch.setattr(writer, "_commit", flaky)
    writer.submit(cleared("retry-me"))
    assert writer.flush(10)
    assert [r["call_id"] for r in cdrs(writer.engine)] == ["retry-me"]
    assert writer.errors == 2 and writer.dropped == 0


@pytest.mark.timeout(30)  # close() must give up and return: a hang fails here
def test_close_gives_up_on_a_dead_database(writer: StoreWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(ops: Any, **kw: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("connection refused"))

    monkeypatch.setattr(writer, "_commit", down)
    for n in range(3):
        writer.submit(cleared(f"lost{n}"))
    assert not writer.flush(0.3)
    writer.close(timeout=0.5)
    assert writer.dropped == 3 and writer.pending == 0


def test_restart_keeps_data_and_a_second_clear_replaces_the_cdr(url: str) -> None:
    with StoreWriter(url, flush_interval=0.05) as w:
        w.submit(cleared("r1", disposition="lost"))
        w.submit(acw("r1", 6.0))
        w.submit({"type": "agent.logged_on", "site": "hq", "ts": T0, "agent": "1001",
                  "name": "Alice Adams", "queue": "sales"})  # fmt: skip
    with StoreWriter(url, flush_interval=0.05) as w:
        assert [r["disposition"] for r in cdrs(w.engine)] == ["lost"]
        w.submit(cleared("r1", disposition="answered"))
        w.submit(cleared("r2"))
    rows = {r["call_id"]: r for r in cdrs(url)}
    assert rows["r1"]["disposition"] == "answered" and rows["r1"]["acw"] == 6.0
    assert set(rows) == {"r1", "r2"}
    states = agent_states(url, agent="1001")
    assert [s["state"] for s in states] == ["logged_on", "acw"]
    assert states[0]["name"] == "Alice Adams" and states[0]["queue"] == "sales"


def test_clear_without_call_id_is_journaled_but_gives_no_cdr(writer: StoreWriter) -> None:
    writer.submit({"type": "call.cleared", "site": "hq", "ts": T0, "seq": 9})
    assert writer.flush(5)
    assert cdrs(writer.engine) == [] and writer.errors == 1 and writer.dropped == 1
    with writer.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(CALL_EVENT)).scalar() == 1


def test_max_pending_rejects_instead_of_growing(url: str) -> None:
    w = StoreWriter(url, max_pending=3)
    for n in range(5):
        w.submit(cleared(f"m{n}"))
    assert (w.pending, w.rejected) == (3, 2)
    w.start()
    w.close()
    assert len(cdrs(url)) == 3


def test_in_memory_database_is_shared_with_readers() -> None:
    with StoreWriter("sqlite://", flush_interval=0.05) as w:
        w.submit(CLEARED)
        assert w.flush(5)
        assert len(cdrs(w.engine)) == 1


def test_other_categories_are_not_stored(writer: StoreWriter) -> None:
    writer.submit({"type": "system.driver_up", "site": "hq", "ts": T0, "source": "asterisk"})
    writer.submit({"type": "queue.stats", "site": "hq", "ts": T0, "queue": "sales"})
    assert writer.flush(5)
    assert writer.written == 0 and writer.errors == 0


@pytest.mark.parametrize("dialect", [postgresql.dialect(), mysql.dialect()], ids=["pg", "mysql"])
def test_schema_compiles_for_other_backends(dialect: Any) -> None:
    for table in metadata.sorted_tables:
        ddl = str(CreateTable(table).compile(dialect=dialect))
        assert "DOUBLE" in ddl.upper()
        for index in table.indexes:
            str(CreateIndex(index).compile(dialect=dialect))

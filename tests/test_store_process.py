"""The store writer process against a real SQLite file and real ipc sockets: the flush
barrier, a killed process, a locked database, close draining everything, bad bytes."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import msgpack
import pytest
from sqlalchemy import func, select

from helpers import wait_until
from ctid.store import StoreProcess, StoreWriter, call_events, cdrs, open_writer
from ctid.store.cpuclass import may_lift, threads
from ctid.store.models import CALL_EVENT

T0 = 1_700_000_000.25


def cleared(call_id: str, **fields: Any) -> dict[str, Any]:
    return {"v": 1, "seq": 7, "epoch": 3, "site": "hq", "type": "call.cleared", "ts": T0 + 60, "call_id": call_id,
            "caller": "+12025550101", "queue": "sales", "agent": "1001", "t_offered": T0, "talk": 40.5,
            "disposition": "answered", "x": {"linkedid": call_id}, **fields}


def offered(call_id: str) -> dict[str, Any]:
    return {"v": 1, "seq": 5, "epoch": 3, "site": "hq", "type": "call.offered", "ts": T0, "call_id": call_id,
            "queue": "sales"}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "ctid.db"


@pytest.fixture
def url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def store(url: str) -> Iterator[StoreProcess]:
    w = StoreProcess(url, batch_size=200, flush_interval=0.05)
    w.start()
    yield w
    w.close()


def journal_rows(w: StoreProcess) -> int:
    with w.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(CALL_EVENT)).scalar()


def test_events_go_through_the_process_as_the_bus_packed_them(store: StoreProcess) -> None:
    for n in range(450):
        event = cleared(f"c{n}")
        store.submit(event, msgpack.packb(event))  # what Daemon.dispatch hands over
    store.submit(offered("c0"))  # no body given: the writer packs it
    assert store.flush(20)  # the barrier: everything before it is committed
    assert len(cdrs(store.engine)) == 450 and journal_rows(store) == 451
    (row,) = [r for r in cdrs(store.engine) if r["call_id"] == "c7"]
    assert row["talk"] == 40.5 and row["x"] == {"linkedid": "c7"} and row["site"] == "hq"
    assert call_events(store.engine, "c0")[0]["payload"] == offered("c0")
    stats = store.stats()
    assert stats["written"] == 901 and stats["pending"] == 0 and stats["dropped"] == 0 and stats["restarts"] == 0
    assert stats["batches"] >= 3  # batch_size 200: batched, not row by row


def test_a_killed_process_is_replaced_and_nothing_unacked_is_lost(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ctid.store")
    with StoreProcess(url, batch_size=100, flush_interval=0.05) as w:
        for n in range(300):
            w.submit(cleared(f"a{n}"))
        assert w.flush(20)  # acked: these are committed
        w._proc.send_signal(signal.SIGSTOP)  # frozen: what comes next is only in flight
        for n in range(700):
            w.submit(cleared(f"b{n}"))
        w._proc.kill()  # SIGKILL: no goodbye, its socket's queue is gone
        assert w.flush(30)
        assert w.restarts == 1 and w.pending == 0 and w.dropped == 0
        assert len(cdrs(w.engine)) == 1000  # the 700 in flight were sent again to the new process
        assert journal_rows(w) == 1000  # nothing had been committed twice
        w.submit(cleared("after"))
        assert w.flush(20)
    assert len(cdrs(url)) == 1001
    died = [r for r in caplog.records if r.getMessage().startswith("writer process died")]
    assert len(died) == 1 and died[0].ctx["exit"] == -signal.SIGKILL and died[0].ctx["pending"] == 700


def test_a_locked_database_is_retried_without_loss(path: Path, url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ctid.store")
    with StoreProcess(url, batch_size=100, flush_interval=0.05) as w:
        w.submit(cleared("first"))
        assert w.flush(20)
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")  # another program holds the database (beyond the 5 s busy timeout)
        for n in range(50):
            w.submit(cleared(f"l{n}"))
        assert not w.flush(0.5)  # the barrier waits for the database, it does not lie
        threading.Timer(5.5, holder.rollback).start()
        assert w.flush(30)
        holder.close()
        assert len(cdrs(w.engine)) == 51 and w.dropped == 0 and w.errors >= 1 and w.restarts == 0
    retried = [r for r in caplog.records if r.getMessage() == "database unavailable; retrying"]
    assert retried and retried[0].ctx["writer"] == "process" and "locked" in retried[0].ctx["error"]


def test_close_drains_everything_then_refuses(url: str) -> None:
    w = StoreProcess(url, batch_size=10_000, flush_interval=30)  # nothing would be written by itself
    for n in range(10):  # before start: kept, sent when the process is up
        w.submit(offered(f"early{n}"))
    w.start()
    for n in range(3000):
        w.submit(cleared(f"c{n}"))
    w.close()
    assert len(cdrs(url)) == 3000 and w.dropped == 0 and w.pending == 0
    assert w._proc.returncode == 0
    w.submit(cleared("late"))
    assert w.rejected == 1
    w.close()  # idempotent


@pytest.mark.timeout(60)  # close() must give up and return: a hang fails here
def test_close_gives_up_on_a_locked_database_and_counts_the_loss(path: Path, url: str) -> None:
    w = StoreProcess(url, flush_interval=0.05)
    w.start()
    w.submit(cleared("ok"))
    assert w.flush(20)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        for n in range(5):
            w.submit(cleared(f"lost{n}"))
        w.close(timeout=0.5)
    finally:
        holder.rollback()
        holder.close()
    assert w.dropped == 5 and w.pending == 0
    assert w._proc.returncode == -signal.SIGKILL
    assert [r["call_id"] for r in cdrs(url)] == ["ok"]


def test_bad_input_is_counted_and_loses_nothing_else(store: StoreProcess, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ctid.store")
    store.submit(cleared("g1"))
    store.submit({"type": "call.offered"}, b"\xc1 not msgpack")
    store.submit({"type": "x"}, msgpack.packb([1, 2]))  # msgpack, but not an event
    store.submit({"no": "type"})
    loop = cleared("loop")
    loop["x"] = loop
    store.submit(loop)  # cannot even be packed: refused at submit
    store.submit(cleared("g2", caller=object()))  # packed as its str()
    assert store.flush(20)
    stored = {r["call_id"]: r for r in cdrs(store.engine)}
    assert set(stored) == {"g1", "g2"} and stored["g2"]["caller"].startswith("<object object")
    assert store.dropped == 3 and store.rejected == 1 and store.pending == 0
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert messages.count("event dropped: undecodable") == 2
    assert "event dropped: it cannot be stored" in messages and "event refused: it cannot be encoded" in messages


def test_open_writer_keeps_an_in_memory_database_in_process(url: str) -> None:
    assert isinstance(open_writer("sqlite://"), StoreWriter)
    assert isinstance(open_writer(url), StoreProcess)


def policy(w: StoreProcess) -> int:
    return os.sched_getscheduler(w._proc.pid)


liftable = pytest.mark.skipif(not may_lift(), reason="needs the right to lift a process out of the idle class")


def behind_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "store writer behind: continuing at normal CPU priority"]


@liftable
def test_an_idle_writer_that_falls_behind_is_lifted_in_place_and_writes_everything_once(
        url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ctid.store")
    with StoreProcess(url, batch_size=100, flush_interval=0.05, backlog_limit=500, relax_after=0) as w:
        wait_until(lambda: w._gen_up and policy(w) == os.SCHED_IDLE, 20)  # publishing first: the spare CPU
        first = w._proc.pid
        w._proc.send_signal(signal.SIGSTOP)  # as starved as an idle-class process on a saturated machine
        for n in range(2000):
            w.submit(cleared(f"e{n}"))
        wait_until(lambda: w.escalations == 1, 20)  # the monitor saw the backlog
        assert all(os.sched_getscheduler(tid) == os.SCHED_OTHER for tid in threads(first))
        w._proc.send_signal(signal.SIGCONT)
        assert w.flush(20)
        assert journal_rows(w) == 2000 and len(cdrs(w.engine)) == 2000 and w._proc.pid == first
        assert w.stats()["written"] == 4000 and w.restarts == 0 and w.dropped == 0
        # caught up: back to the idle class
        wait_until(lambda: policy(w) == os.SCHED_IDLE, 20)
    logged = behind_logs(caplog)
    assert len(logged) == 1 and logged[0].ctx["backlog_limit"] == 500
    assert logged[0].ctx["why"] == "backlog" and logged[0].ctx["lifted"] is True
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@liftable
def test_a_writer_that_makes_no_progress_is_lifted(url: str, caplog: pytest.LogCaptureFixture) -> None:
    with StoreProcess(url, batch_size=100, flush_interval=0.05, starve_after=0.3) as w:
        wait_until(lambda: w._gen_up and policy(w) == os.SCHED_IDLE, 20)
        w._proc.send_signal(signal.SIGSTOP)
        for n in range(10):  # far below the backlog limit: only the time without progress tells
            w.submit(cleared(f"e{n}"))
        wait_until(lambda: w.escalations == 1, 20)
        assert policy(w) == os.SCHED_OTHER
        w._proc.send_signal(signal.SIGCONT)
        assert w.flush(20) and journal_rows(w) == 10
    logged = behind_logs(caplog)
    assert len(logged) == 1 and logged[0].ctx["why"] == "no progress" and logged[0].ctx["lifted"] is True


@liftable
def test_close_lifts_a_starved_idle_writer_and_loses_nothing(url: str, caplog: pytest.LogCaptureFixture) -> None:
    w = StoreProcess(url, batch_size=100, flush_interval=0.05)
    w.start()
    wait_until(lambda: w._gen_up and policy(w) == os.SCHED_IDLE, 20)
    # Every core busy at normal class: an idle-class writer gets next to no CPU.
    hogs = [subprocess.Popen([sys.executable, "-c", "print(flush=True)\nwhile True: pass"], stdout=subprocess.PIPE)
            for _ in range(os.cpu_count() or 2)]
    try:
        for hog in hogs:
            hog.stdout.readline()  # spinning now
        for n in range(250):
            w.submit(cleared(f"e{n}"))
        w.close(timeout=20)  # without the lift it gives up here and counts the loss
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert w.stats()["written"] == 500 and w.dropped == 0 and w.escalations == 0
    with w.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(CALL_EVENT)).scalar() == 250
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_where_the_idle_class_cannot_be_undone_the_writer_stays_normal(
        url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ctid.store.process.may_lift", lambda: False)  # as an unprivileged user
    caplog.set_level(logging.INFO, logger="ctid.store")
    with StoreProcess(url, batch_size=100, flush_interval=0.05) as w:
        wait_until(lambda: w._gen_up, 20)
        w.submit(cleared("e1"))
        assert w.flush(20)
        assert all(os.sched_getscheduler(tid) == os.SCHED_OTHER for tid in threads(w._proc.pid))
    assert any(r.getMessage().startswith("store writer at normal CPU priority") for r in caplog.records)

"""The store writer in its own process: the daemon's thread only sends bytes.

`StoreProcess` has `StoreWriter`'s API (submit, flush, close, stats, counters). `submit`
sends the event's msgpack body — the one `Bus.publish` already encoded, when given — on
a ZeroMQ PUSH socket (ipc) to a writer process (`child.py`), which decodes, maps and
writes it in batches. Decoding, mapping, JSON and SQLAlchemy then hold *that* process's
GIL: the daemon's loop never waits for the writer.

Nothing the process has not acked is forgotten: every body sent stays in `_unacked` until
the process reports it done (written, or given up on and logged). A monitor thread reads
the acks and watches the process; when it dies (killed, crashed) the monitor logs and
counts it (`restarts`), starts a new one (backoff 0.1 s doubling to 30 s while it keeps
dying) and sends it everything unacked, in order. So a death loses nothing, and may write
twice what the dead process had committed but not yet acked (at most one batch): journal
rows (`call_event`, `agent_state`) appear twice, a cdr is replaced by the same values.
The acw values it kept waiting for their cdr are lost, as at a restart (they stay
journaled in `agent_state`).

Where this process may lift it back (`cpuclass.may_lift`), the writer runs in the idle
CPU class (SCHED_IDLE) once it has said hello (it starts at normal priority, so a busy
machine cannot starve its start-up): it gets the CPU the daemon and everything else
leave, so its write bursts never delay publishing. On a machine with no spare CPU that
class starves it outright, so the monitor lifts it back to the normal class when it falls
`backlog_limit` events behind or makes no progress for `starve_after` seconds (half a
second while a `flush` waits on it): counted as `escalations`, logged. Caught up (a tenth
of the limit) and at least `relax_after` seconds later, it goes back to the idle class.
`close` lifts it too, uncounted: once the daemon stops, publishing no longer comes first.
Where it may not be lifted (an unprivileged user without CAP_SYS_NICE or RLIMIT_NICE), it
stays at normal priority: an idle-class writer nobody can lift would be starved for good.
Every change of class is made here, from outside the process, under one lock.

The process is started with `subprocess` (a fresh interpreter, as multiprocessing's spawn
does, without re-importing the caller's `__main__`): the daemon has threads and a ZeroMQ
context, which a fork would copy in an undefined state.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Mapping

import msgpack
import zmq
from sqlalchemy import Engine

import ctid
from ctid.store.batch import MAX_BACKOFF, check_batching
from ctid.store.cpuclass import may_lift, to_idle, to_normal
from ctid.store.engine import make_engine
from ctid.store.models import metadata

log = logging.getLogger("ctid.store")

#: Control messages in line with the events (an event is a msgpack map: never equal to these).
FLUSH = b"FLUSH"  # write what you have now, then ack
CLOSE = b"CLOSE"  # write what you have, ack, exit
URGENT_GRACE = 0.5  # seconds without progress, while a flush waits, before lifting the writer

_COUNTS = ("written", "batches", "errors", "dropped")
_POLL = 0.1  # seconds: how soon the monitor sees a dead process


def _as_text(value: Any) -> str:
    log.warning("non-msgpack value stored as text", extra={"ctx": {"value": repr(value)[:200]}})
    return str(value)


class StoreProcess:
    """Writes normalized events to the store in batches, in a separate process."""

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        max_pending: int | None = None,
        acw_ttl: float = 3600.0,
        acw_max: int = 10_000,
        backlog_limit: int = 100_000,
        starve_after: float = 5.0,
        relax_after: float = 10.0,
    ) -> None:
        check_batching(batch_size, flush_interval)
        self.url = url
        self.max_pending = max_pending
        #: Unacked events beyond which the idle-class writer is lifted back to the normal class.
        self.backlog_limit = backlog_limit
        #: Seconds without any progress (while events wait) after which the idle writer is
        #: escalated; `relax_after`: how long it stays at normal class after that, at least.
        self.starve_after = starve_after
        self.relax_after = relax_after
        #: Times the writer fell behind (the machine had no spare CPU for it) and was lifted.
        self.escalations = 0
        self._may_idle = may_lift()  # the idle class only where it can be undone
        self._idle = False  # the class the current process runs in
        self._escalated_at = -math.inf
        self._progress_at = time.monotonic()  # last ack that finished something, or nothing pending
        self._waiters = 0  # flush() calls waiting
        self._opts = {"url": url, "batch_size": batch_size, "flush_interval": flush_interval, "acw_ttl": acw_ttl,
                      "acw_max": acw_max, "log_level": logging.getLogger("ctid.store").getEffectiveLevel()}
        #: Events refused by submit(): writer closed, or max_pending reached.
        self.rejected = 0
        #: Writer processes that died (or did not start) and were replaced.
        self.restarts = 0
        self._counts = dict.fromkeys(_COUNTS, 0)  # of the processes that ended
        self._live = dict.fromkeys(_COUNTS, 0)  # of the current process
        self._lost = 0  # given up on at close
        self._acw_waiting = 0
        self._acked = 0  # events finished by every process so far
        self._unacked: deque[bytes] = deque()
        self._done = threading.Condition()  # notified on every ack and when the monitor ends
        self._send_lock = threading.Lock()  # the events socket, _unacked appends and resends
        self._closed = False
        self._closing = False
        self._wakeup = threading.Event()  # cuts the monitor's restart backoff short at close
        self._gen_up = False  # the current process said hello
        self._give_up_at = math.inf
        self._engine: Engine | None = None
        self._ctx: zmq.Context | None = None
        self._events: zmq.Socket | None = None
        self._acks: zmq.Socket | None = None
        self._dir = ""
        self._gen = 0
        self._gen_done = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._monitor: threading.Thread | None = None

    # -- caller side -------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """An engine on the same database (after start()), for readers."""
        if self._engine is None:
            raise RuntimeError("StoreProcess not started")
        return self._engine

    @property
    def pending(self) -> int:
        """Events submitted and not yet committed (or given up on)."""
        return len(self._unacked)

    @property
    def written(self) -> int:
        return self._counts["written"] + self._live["written"]

    @property
    def batches(self) -> int:
        return self._counts["batches"] + self._live["batches"]

    @property
    def errors(self) -> int:
        return self._counts["errors"] + self._live["errors"]

    @property
    def dropped(self) -> int:
        return self._counts["dropped"] + self._live["dropped"] + self._lost

    def start(self) -> None:
        """Create missing tables (raises on a bad URL or database), start the process and its monitor."""
        if self._monitor is not None:
            raise RuntimeError("StoreProcess already started")
        if not self._may_idle:
            log.info("store writer at normal CPU priority: this user may not lift a process out of the idle class "
                     "(grant CAP_SYS_NICE, or RLIMIT_NICE of 20: systemd LimitNICE=0)")
        self._engine = make_engine(self.url)
        metadata.create_all(self._engine)
        self._ctx = zmq.Context()
        self._dir = tempfile.mkdtemp(prefix="ctid-store-")
        acks = self._ctx.socket(zmq.PULL)
        acks.setsockopt(zmq.RCVHWM, 0)
        acks.setsockopt(zmq.LINGER, 0)
        acks.bind(f"ipc://{self._dir}/acks")
        self._acks = acks
        with self._send_lock:
            self._spawn()
        self._monitor = threading.Thread(target=self._watch, name="ctid-store-monitor", daemon=True)
        self._monitor.start()

    def submit(self, event: Mapping[str, Any], packed: bytes | None = None) -> None:
        """Queue one event for writing: never blocks, never touches the database.

        `packed`: the event's msgpack body, when the caller has it (the bus's publish does).
        """
        if packed is None:
            try:
                packed = msgpack.packb(event, default=_as_text)
            except Exception as exc:  # e.g. an int beyond 64 bits
                self.rejected += 1
                log.error("event refused: it cannot be encoded", extra={"ctx": {"error": str(exc), "event": repr(event)[:300]}})
                return
        body = packed
        with self._send_lock:
            if self._closed or (self.max_pending is not None and len(self._unacked) >= self.max_pending):
                self.rejected += 1
                return
            self._unacked.append(body)
            if self._events is not None:
                self._events.send(body, zmq.NOBLOCK)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything submitted so far is committed; False on timeout or give-up."""
        if self._monitor is None or not self._monitor.is_alive():
            return self.pending == 0
        with self._done:
            target = self._acked + len(self._unacked)
            self._waiters += 1
        self._send(FLUSH)
        try:
            with self._done:
                return self._done.wait_for(lambda: self._acked >= target or self._monitor_ended(), timeout) \
                    and self._acked >= target
        finally:
            with self._done:
                self._waiters -= 1

    def close(self, timeout: float | None = 10.0) -> None:
        """Refuse new events, let the process write what it has, stop it.

        With the database unreachable, gives up after `timeout` seconds (kills the
        process) and logs how many events were lost.
        """
        if self._closed:
            return
        with self._send_lock:
            self._closed = True
        monitor = self._monitor
        if monitor is not None:
            self._give_up_at = time.monotonic() + (timeout if timeout is not None else math.inf)
            self._closing = True
            self._wakeup.set()
            with self._send_lock:
                if self._idle and self._proc is not None:
                    self._idle = not to_normal(self._proc.pid)  # stopping: publishing no longer comes first
            self._send(CLOSE)
            monitor.join()
        lost = len(self._unacked)
        if lost:
            self._lost += lost
            self._unacked.clear()
            log.error("closed with events not written", extra={"ctx": {"events": lost}})
        with self._done:
            self._done.notify_all()
        for sock in (self._events, self._acks):
            if sock is not None:
                sock.close(linger=0)
        if self._ctx is not None:
            self._ctx.term()
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
        if self._acw_waiting:
            log.info("acw values never found their cdr", extra={"ctx": {"count": self._acw_waiting}})
        if self._engine is not None:
            self._engine.dispose()

    def stats(self) -> dict[str, int]:
        """Counters, for status pages and tests."""
        return {"written": self.written, "batches": self.batches, "errors": self.errors, "dropped": self.dropped,
                "rejected": self.rejected, "pending": self.pending, "acw_waiting": self._acw_waiting,
                "restarts": self.restarts, "escalations": self.escalations}

    def __enter__(self) -> StoreProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------

    def _monitor_ended(self) -> bool:
        return self._monitor is not None and not self._monitor.is_alive()

    def _send(self, msg: bytes) -> None:
        with self._send_lock:
            if self._events is not None:
                self._events.send(msg, zmq.NOBLOCK)

    def _spawn(self) -> None:
        """A new process and a fresh events socket; everything unacked is sent to it.
        Called with _send_lock held. If the process cannot be started, nothing changes."""
        assert self._ctx is not None
        gen = self._gen + 1
        endpoint = f"ipc://{self._dir}/events-{gen}"
        opts = {**self._opts, "events": endpoint, "acks": f"ipc://{self._dir}/acks", "gen": gen,
                "parent": os.getpid()}
        # -P and ctid's own root first on the path: the process runs this very ctid, never a
        # `ctid/` that happens to be in the working directory.
        root = str(Path(ctid.__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        proc = subprocess.Popen([sys.executable, "-P", "-m", "ctid.store.child", json.dumps(opts)],
                                stdin=subprocess.DEVNULL, close_fds=True, env=env)
        if self._events is not None:
            self._events.close(linger=0)  # what it still queues for the dead process is resent below
        self._proc, self._gen, self._gen_done, self._gen_up, self._idle = proc, gen, 0, False, False
        self._live = dict.fromkeys(_COUNTS, 0)
        events = self._ctx.socket(zmq.PUSH)
        events.setsockopt(zmq.SNDHWM, 0)  # never drop, never block: max_pending bounds it
        events.setsockopt(zmq.LINGER, 0)
        events.setsockopt(zmq.RECONNECT_IVL, 10)  # the process binds a moment after it starts
        events.connect(endpoint)  # connect, not bind: messages queue until the process is there
        for body in self._unacked:
            events.send(body, zmq.NOBLOCK)
        if self._closing:
            events.send(CLOSE, zmq.NOBLOCK)
        self._events = events
        self._progress_at = time.monotonic()  # a new process gets its own time to start

    def _watch(self) -> None:
        """The monitor thread: acks in, dead processes replaced, until the process ends at close."""
        backoff = 0.1
        while True:
            try:
                backoff = self._check(backoff)
                if backoff < 0:
                    return
            except Exception:  # a bug here must not leave flush() and close() waiting forever
                log.exception("unexpected error in the store monitor")
                if self._closing and time.monotonic() >= self._give_up_at:
                    self._stop_writer()  # close() waits for this thread: it must end
                    return
                self._wakeup.wait(1.0)

    def _check(self, backoff: float) -> float:
        """One turn of the monitor: the next restart backoff, or -1 when the writing is over."""
        acks = self._acks
        proc = self._proc
        assert acks is not None and proc is not None
        if acks.poll(int(_POLL * 1000)):
            self._drain_acks()
        code = proc.poll()
        if code is None and self._idle:
            self._check_starved()
        if code is None:
            if self._closing and time.monotonic() >= self._give_up_at:
                self._stop_writer()
                self._drain_acks()
                return -1
            return backoff
        self._drain_acks()  # its last acks (a clean exit sends one before it ends)
        if code == 0 and self._closing:
            return -1
        ctx = {"exit": code, "pending": len(self._unacked), "restarts": self.restarts + 1}
        if self._closing and time.monotonic() >= self._give_up_at:
            log.error("writer process died while closing", extra={"ctx": ctx})
            return -1
        self.restarts += 1
        if self._gen_up:
            log.error("writer process died; starting a new one", extra={"ctx": ctx})
            backoff = 0.1
        else:  # it died before it was even up (cannot open the store?): do not spin
            log.error("writer process did not start; trying again", extra={"ctx": {**ctx, "retry_in": backoff}})
            self._wakeup.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
        self._merge_counts()
        with self._send_lock:
            self._spawn()
        return backoff

    def _stop_writer(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            log.error("writer process did not finish in time: stopping it", extra={"ctx": {"pending": len(self._unacked)}})
            proc.kill()
            proc.wait()

    def _merge_counts(self) -> None:
        """The ended process's counters join those of the processes before it."""
        for name in _COUNTS:
            self._counts[name] += self._live[name]
        self._live = dict.fromkeys(_COUNTS, 0)

    def _check_starved(self) -> None:
        """Lift the idle-class writer if the machine has had no spare CPU for it."""
        now = time.monotonic()
        if not self._unacked:
            self._progress_at = now
            return
        stalled = now - self._progress_at
        if len(self._unacked) > self.backlog_limit:
            self._escalate("backlog", stalled)
        elif stalled > self.starve_after or (stalled > URGENT_GRACE and self._waiters):
            self._escalate("no progress", stalled)

    def _escalate(self, why: str, stalled: float) -> None:
        """Back to the normal class, in place."""
        assert self._proc is not None
        with self._send_lock:
            if not self._idle or self._closing:  # close lifted it meanwhile
                return
            self._idle = not to_normal(self._proc.pid)
        self.escalations += 1
        self._escalated_at = time.monotonic()
        log.warning("store writer behind: continuing at normal CPU priority",
                    extra={"ctx": {"why": why, "pending": len(self._unacked), "stalled_s": round(stalled, 2),
                                   "backlog_limit": self.backlog_limit, "lifted": not self._idle}})

    def _drain_acks(self) -> None:
        acks = self._acks
        assert acks is not None
        while acks.poll(0):
            self._on_message(msgpack.unpackb(acks.recv()))

    def _on_message(self, msg: dict[str, Any]) -> None:
        if "log" in msg:
            level, text, ctx = msg["log"]
            log.log(level, text, extra={"ctx": {**ctx, "writer": "process"}})
            return
        if msg["gen"] != self._gen:
            return  # a dead process's late ack: what it acked is being written again anyway
        self._gen_up = True
        finished = msg["done"] - self._gen_done
        if finished:
            self._progress_at = time.monotonic()
        with self._done:
            for _ in range(finished):
                self._unacked.popleft()
            self._gen_done = msg["done"]
            self._acked += finished
            self._live = {name: msg[name] for name in _COUNTS}
            self._acw_waiting = msg["acw_waiting"]
            self._done.notify_all()
        if self._may_idle and not self._idle and len(self._unacked) < self.backlog_limit // 10 \
                and time.monotonic() - self._escalated_at >= self.relax_after:
            # Up (this may be its hello) and caught up: publishing gets the CPU first (again).
            with self._send_lock:
                if not self._closing:
                    self._idle = True
                    to_idle(self._proc.pid)

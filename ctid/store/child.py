"""The store's writer process: `python -m ctid.store.child '<json options>'`, started by
`process.StoreProcess`, never by hand.

It binds a PULL socket for the events (the msgpack bodies the bus already encoded, one
per message, or a `FLUSH`/`CLOSE` control message), decodes them and writes them in
batches with `batch.BatchWriter` (at `batch_size` events, `flush_interval` seconds after
the first event of a batch, or at once on `FLUSH`/`CLOSE`). After every batch it sends
the parent an ack on a PUSH socket: how many events it has finished (written or given up
on, each logged) since it started, and its counters. Its log records go the same way, so
they come out of the parent's logging as if written there.

It stops on `CLOSE` (after writing everything), or by itself when its parent is gone. Its
CPU class is the parent's business (`process`, `cpuclass`).
SIGINT and SIGTERM are ignored: a Ctrl-C or a service manager's SIGTERM reaches the whole
process group, and the parent, still draining into it, decides when it ends.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from typing import Any

import msgpack
import zmq

from ctid.store.batch import BatchWriter
from ctid.store.process import CLOSE, FLUSH

PARENT_CHECK = 1.0  # seconds between checks that the parent still lives, when idle

log = logging.getLogger("ctid.store")


class _ToParent(logging.Handler):
    """Sends each log record to the parent: {"log": [level, message, ctx]}."""

    def __init__(self, send: Any) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            ctx = {k: v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)
                   for k, v in (getattr(record, "ctx", None) or {}).items()}
            if record.exc_info:
                ctx["exc"] = logging.Formatter().formatException(record.exc_info)
            self._send(msgpack.packb({"log": [record.levelno, record.getMessage(), ctx]}))
        except Exception:  # never let logging take the writer down
            self.handleError(record)


def serve(opts: dict[str, Any]) -> int:
    ctx = zmq.Context()
    events = ctx.socket(zmq.PULL)
    events.setsockopt(zmq.LINGER, 0)
    events.setsockopt(zmq.RCVHWM, 0)  # the parent bounds what is in flight (max_pending)
    events.bind(opts["events"])
    acks = ctx.socket(zmq.PUSH)
    acks.setsockopt(zmq.LINGER, 10_000)  # the last ack must reach the parent after we exit
    acks.setsockopt(zmq.SNDHWM, 0)
    acks.connect(opts["acks"])
    root = logging.getLogger()
    root.handlers[:] = [_ToParent(acks.send)]
    root.setLevel(opts.get("log_level", logging.INFO))

    writer = BatchWriter(opts["url"], acw_ttl=opts["acw_ttl"], acw_max=opts["acw_max"])
    gen, parent = opts["gen"], opts["parent"]  # the daemon may be gone before this line
    done = 0

    def ack() -> None:
        acks.send(msgpack.packb({"gen": gen, "done": done, **writer.counts()}))

    try:
        writer.open()
    except Exception as exc:
        log.error("writer process cannot open the store", extra={"ctx": {"error": str(exc)}})
        return 2
    ack()  # hello: the parent knows this generation is up
    batch_size, interval = opts["batch_size"], opts["flush_interval"]
    unpackb = msgpack.unpackb
    batch: list[dict[str, Any]] = []
    bad = 0  # messages that were not events (counted as done, like events the writer drops)
    due = 0.0
    try:
        while True:
            wait = PARENT_CHECK if not (batch or bad) else max(due - time.monotonic(), 0.0)
            control = None
            if events.poll(int(wait * 1000)):
                msg = events.recv()
                if msg == FLUSH or msg == CLOSE:
                    control = msg
                else:
                    if not (batch or bad):
                        due = time.monotonic() + interval
                    try:
                        event = unpackb(msg)
                        if not isinstance(event, dict):
                            raise ValueError(f"not a map: {type(event).__name__}")
                    except Exception as exc:
                        bad += 1
                        writer.errors += 1
                        writer.dropped += 1
                        log.error("event dropped: undecodable", extra={"ctx": {"error": str(exc), "bytes": msg[:80]}})
                    else:
                        batch.append(event)
                    if len(batch) < batch_size:
                        continue
            elif not (batch or bad):
                if os.getppid() != parent:
                    acks.setsockopt(zmq.LINGER, 0)  # nobody will read them
                    return 1
                continue
            if batch:
                writer.write(batch)
            done += len(batch) + bad
            batch, bad = [], 0
            ack()
            if control == CLOSE:
                return 0
    finally:
        writer.dispose()
        root.handlers[:] = []
        acks.close()
        events.close()
        ctx.term()


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return serve(json.loads(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""A bus subscriber in its own process, as a CRM would write one: SUB to everything,
msgpack-decode every event. It counts, and optionally measures publish latency.

    python subscriber_proc.py <endpoint> count|latency [<server key> <public key> <secret key>]

With the three keys (Z85) it connects with CURVE, as a client of a secure bus does.

Every event's `seq` is kept, with the wall-clock time (CLOCK_REALTIME, time.time_ns) of
the receive batch that held it, so the parent can ask afterwards when a given seq arrived.
In `latency` mode each event's receive time minus its `x.t_send` (set by the sender just
before publishing, same machine clock) is kept too.

Parent -> child (stdin, JSON lines):
  {"until_seq": s1, "after_seq": s0, "timeout": sec, "warmup": n}
      answer once an event with seq >= s1 arrived (or on timeout): events with seq in
      (s0, s1] received, missing ones, arrival time of s1; latency mode: percentiles of
      those events' latencies, skipping the first `warmup`.
  EOF: exit.
Child -> parent: {"ready": true} once connected, then one answer per command.
"""

from __future__ import annotations

import json
import os
import sys
import time
from array import array
from bisect import bisect_left

import msgpack
import zmq

from benchlib import percentiles, reply


def _next_command(inbuf: bytes) -> tuple[dict | None, bytes]:
    while b"\n" in inbuf:
        line, _, inbuf = inbuf.partition(b"\n")
        if line.strip():
            return json.loads(line), inbuf
    return None, inbuf


def main() -> None:
    endpoint, mode = sys.argv[1], sys.argv[2]
    latency = mode == "latency"
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 0)  # never drop here: a loss would be the publisher's
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    if len(sys.argv) > 5:
        sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = (k.encode() for k in sys.argv[3:6])
    sock.connect(endpoint)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(0, zmq.POLLIN)
    reply(ready=True)

    seqs = array("q")  # seq of every event, in arrival order
    lats = array("q")  # latency mode: ns, same order
    batch_seq = array("q")  # highest seq after each receive batch ...
    batch_t = array("q")  # ... and when that batch ended
    recv, unpackb, now_ns, again = sock.recv, msgpack.unpackb, time.time_ns, zmq.Again
    noblock = zmq.NOBLOCK
    inbuf = b""
    pending: dict | None = None
    pending_deadline = 0.0
    top = 0

    while True:
        ready = dict(poller.poll(50))
        if sock in ready:
            while True:
                try:
                    recv(noblock)  # topic
                except again:
                    break
                body = recv()
                if latency:
                    t = now_ns()
                    event = unpackb(body)
                    lats.append(t - event["x"]["t_send"])
                else:
                    event = unpackb(body)
                seqs.append(event["seq"])
            if seqs and seqs[-1] > top:
                top = seqs[-1]
                batch_seq.append(top)
                batch_t.append(now_ns())
        if 0 in ready:
            data = os.read(0, 65536)
            if not data:
                return
            inbuf += data
        if pending is None:
            pending, inbuf = _next_command(inbuf)
            if pending is not None:
                pending_deadline = time.monotonic() + float(pending.get("timeout", 60))
        if pending is not None:
            s1, s0 = int(pending["until_seq"]), int(pending.get("after_seq", 0))
            timed_out = time.monotonic() > pending_deadline
            if top >= s1 or timed_out:
                lo = bisect_left(seqs, s0 + 1)
                hi = bisect_left(seqs, s1 + 1)
                n_window = hi - lo
                i = bisect_left(batch_seq, s1)
                answer = {
                    "n_window": n_window,
                    "missing": (s1 - s0) - n_window,
                    "n_total": len(seqs),
                    "t_last": batch_t[i] if i < len(batch_t) else None,
                    "timed_out": timed_out and top < s1,
                }
                if latency:
                    warm = int(pending.get("warmup", 0))
                    answer["latency_us"] = percentiles(lats[lo + warm : hi])
                    answer["n_latency"] = max(0, n_window - warm)
                reply(**answer)
                pending = None


if __name__ == "__main__":
    main()

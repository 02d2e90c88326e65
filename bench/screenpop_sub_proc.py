"""A desktop-side subscriber in its own process, for the screen pop bench: SUB to
`screenpop.`, and for every pop the time from the `call.delivered` publish to its arrival.

    python screenpop_sub_proc.py <endpoint>

The bench stamps each call.delivered with `x.t_send = time.time_ns()` just before
`Daemon.dispatch`; the pop carries the call's `x`, so arrival minus `x.t_send` is the whole
path: plugin queue, lookups, pop, bus (CLOCK_REALTIME: the same clock in both processes).

Parent -> child: {"until": n, "warmup": w, "timeout": s}: answer once n pops arrived since
the last answer (or on timeout): percentiles of their latencies after the first w, and how
many were partial. EOF: exit.
"""

from __future__ import annotations

import json
import os
import sys
import time

import msgpack
import zmq

from benchlib import percentiles, reply


def main() -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"screenpop.")
    sock.connect(sys.argv[1])
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(0, zmq.POLLIN)
    reply(ready=True)
    lats: list[int] = []
    partial = 0
    inbuf = b""
    pending = None
    deadline = 0.0
    while True:
        ready = dict(poller.poll(50))
        if sock in ready:
            while True:
                try:
                    sock.recv(zmq.NOBLOCK)  # topic
                except zmq.Again:
                    break
                body = sock.recv()
                t = time.time_ns()
                pop = msgpack.unpackb(body)
                lats.append(t - pop["x"]["t_send"])
                partial += bool(pop["partial"])
        if 0 in ready:
            data = os.read(0, 65536)
            if not data:
                return
            inbuf += data
        if pending is None and b"\n" in inbuf:
            line, _, inbuf = inbuf.partition(b"\n")
            pending = json.loads(line)
            deadline = time.monotonic() + float(pending.get("timeout", 60))
        if pending is not None and (len(lats) >= pending["until"] or time.monotonic() > deadline):
            warm = int(pending.get("warmup", 0))
            reply(n=len(lats), partial=partial, latency_us=percentiles(lats[warm:]), timed_out=len(lats) < pending["until"])
            lats, partial, pending = [], 0, None


if __name__ == "__main__":
    main()

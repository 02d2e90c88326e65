"""A CRM sending control requests in its own process, paced, timing each round trip.

    python control_client_proc.py <request endpoint> [<server key> <public key> <secret key>]

Parent -> child (stdin, JSON lines):
  {"requests": [{...}, ...], "rate": n, "warmup": k}
      send the requests (cycling through the list) at `rate` per second for `count`
      requests on a DEALER socket, each with a fresh `id` and `request_id`; time each
      reply (time.perf_counter_ns, send to reply) and answer the percentiles of all but
      the first `warmup`, with the errors seen.
  EOF: exit.
Child -> parent: {"ready": true}, then one answer per command.

Sends and receives are interleaved on one thread: between two due sends the child waits
for replies (zmq poll), so a slow reply never delays the next send.
"""

from __future__ import annotations

import sys
import time
from collections import Counter

import msgpack
import zmq

from benchlib import percentiles, reply, stdin_lines


def main() -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if len(sys.argv) > 4:
        sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = (k.encode() for k in sys.argv[2:5])
    sock.connect(sys.argv[1])
    reply(ready=True)
    run = 0
    for command in stdin_lines():
        if command is None:
            break
        run += 1
        templates, rate, count, warmup = command["requests"], command["rate"], command["count"], command["warmup"]
        interval_ns = int(1e9 / rate)
        sent: dict[int, int] = {}
        rtts: list[int] = []
        errors: Counter[str] = Counter()
        perf = time.perf_counter_ns
        start = perf()
        i = 0
        deadline = start + int(count * interval_ns + 10e9)
        while (i < count or sent) and perf() < deadline:
            now = perf()
            if i < count and now >= start + i * interval_ns:
                body = {**templates[i % len(templates)], "id": i, "request_id": f"r{run}-{i}"}
                sent[i] = perf()
                sock.send(msgpack.packb(body))
                i += 1
                continue
            due = start + i * interval_ns if i < count else deadline
            if sock.poll(max(0, (due - now) // 1_000_000)):
                while True:
                    try:
                        answer = msgpack.unpackb(sock.recv(zmq.NOBLOCK))
                    except zmq.Again:
                        break
                    t0 = sent.pop(answer["id"], None)
                    if t0 is not None and answer["id"] >= warmup:
                        rtts.append(perf() - t0)
                    if not answer["ok"]:
                        errors[answer["error"]["code"]] += 1
        elapsed = (perf() - start) / 1e9
        reply(rtt_us=percentiles(rtts), measured=len(rtts), lost=len(sent), errors=dict(errors),
              rate=count / elapsed)


if __name__ == "__main__":
    main()

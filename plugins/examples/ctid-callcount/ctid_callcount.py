"""ctid-callcount: counts finished calls per queue and disposition.

The example of docs/plugins.md: one module, four hooks.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import msgpack
import zmq

from ctid.hookspecs import hookimpl


class CallCount:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.min_talk = 0.0

    @hookimpl
    def ctid_config_check(self, options):
        min_talk = options.get("min_talk", 0)
        if not isinstance(min_talk, (int, float)) or min_talk < 0:
            return [f"min_talk: expected a number of seconds >= 0, got {min_talk!r}"]
        return None

    @hookimpl
    def ctid_startup(self, ctx):
        self.min_talk = float(ctx.options.get("min_talk", 0))

    @hookimpl
    def ctid_event_types(self):
        return {"call.cleared"}

    @hookimpl
    def ctid_event(self, event, ctx):
        if event["disposition"] == "answered" and event["talk"] < self.min_talk:
            ctx.count("short_calls")
            return
        self.counts[(event["queue"] or "-", event["disposition"])] += 1

    @hookimpl
    def ctid_request_ops(self, ctx):
        def get(request):
            """finished calls per queue and disposition"""
            queue = request.get("queue")
            return {f"{q}/{d}": n for (q, d), n in sorted(self.counts.items()) if queue in (None, q)}

        return {"callcount.get": get}

    @hookimpl
    def ctid_cli(self, subparsers):
        p = subparsers.add_parser("callcount", help="ask a running daemon for its call counts")
        p.add_argument("--req", default="tcp://127.0.0.1:5561", help="the daemon's request endpoint")
        p.add_argument("--queue", default=None)
        p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.connect(args.req)
    sock.send(msgpack.packb({"op": "callcount.get", "queue": args.queue}))
    if not sock.poll(5000):
        print("no answer from the daemon", flush=True)
        return 1
    reply = msgpack.unpackb(sock.recv())
    print(json.dumps(reply.get("result", reply), indent=2))
    return 0 if reply.get("ok") else 1


plugin = CallCount()

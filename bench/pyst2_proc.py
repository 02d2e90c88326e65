"""The baseline AMI client: pyst2's `asterisk.manager.Manager` in its own process.

    python pyst2_proc.py <port> <events> <timeout>

Connects to the feeder, logs in (pyst2 takes the first `Response` after its Login as
the answer; it does not match ActionIDs), registers one handler for every event ('*')
that counts, and reports when it has dispatched `events` events or when `timeout`
seconds have passed since the first event.

Child -> parent (stdout, JSON lines): {"login": true}, then
{"n": events dispatched, "t_first": ns, "t_last": ns (when the n-th was), "timed_out": bool}.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings

from benchlib import reply


def main() -> None:
    warnings.simplefilter("ignore")  # pyst2 uses threading APIs deprecated since 3.10
    from asterisk.manager import Manager

    port, expected, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    done = threading.Event()
    first = threading.Event()
    seen = {"n": 0, "t_first": None, "t_last": None, "t_done": None}

    def on_event(event, manager) -> None:
        seen["n"] += 1
        seen["t_last"] = time.time_ns()
        if seen["n"] == 1:
            seen["t_first"] = seen["t_last"]
            first.set()
        if seen["n"] == expected:
            seen["t_done"] = seen["t_last"]
            done.set()

    manager = Manager()
    manager.connect("127.0.0.1", port)
    manager.login("cti", "ctisecret")
    manager.register_event("*", on_event)
    reply(login=True)
    first.wait(60)
    timed_out = not done.wait(timeout)
    if timed_out:
        n, t_last = seen["n"], seen["t_last"]
    else:
        n, t_last = expected, seen["t_done"]
    reply(n=n, t_first=seen["t_first"], t_last=t_last, timed_out=timed_out)
    sys.stdin.read()  # the parent closes our stdin when it has the answer
    os._exit(0)  # Manager.close() would send Logoff and wait for an answer that never comes


if __name__ == "__main__":
    main()

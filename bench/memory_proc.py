"""The live state of a busy site in a fresh process, and what it costs in RSS.

    python memory_proc.py <calls> <agents> <queues>

Prints one JSON line: VmRSS after the daemon's imports, after the agents logged on, after the calls
(after a gc.collect() each time), and the model's sizes.
"""

from __future__ import annotations

import gc
import sys

from benchlib import reply, rss_bytes, state_events


def main() -> None:
    calls, agents, queues = (int(a) for a in sys.argv[1:4])
    import ctid.daemon  # noqa: F401  everything a daemon process imports (zmq, sqlalchemy, ...)
    from ctid.state import State

    state = State()
    gc.collect()
    rss_start = rss_bytes()
    events = state_events(calls, agents, queues)
    logons = 2 * agents
    for _ in range(logons):
        state.apply(next(events))
    gc.collect()
    rss_agents = rss_bytes()
    for event in events:
        state.apply(event)
    gc.collect()
    rss_calls = rss_bytes()
    snapshot_calls = len(state.snapshot()["calls"])  # the model answers a snapshot request
    reply(rss_start=rss_start, rss_agents=rss_agents, rss_calls=rss_calls, calls=len(state.calls),
          agents=len(state.agents), queues=len(state.queues), snapshot_calls=snapshot_calls,
          busy=sum(a.state == "busy" for a in state.agents.values()),
          waiting=sum(len(q.waiting) for q in state.queues.values()))


if __name__ == "__main__":
    main()

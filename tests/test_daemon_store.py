"""The daemon and its store writer process: the store gets exactly what the bus published,
and a killed writer process is replaced without losing events (real SQLite file, real
sockets, the real writer process)."""

from __future__ import annotations

import signal
from typing import Any

from helpers import Subscriber, free_port, request, site_config, store_flushed, wait_for
from ctid.daemon import Daemon
from ctid.store import StoreProcess, call_events, cdrs

T0 = 1_700_000_000.0


def call(call_id: str) -> list[dict[str, Any]]:
    base = {"source": "asterisk", "call_id": call_id, "queue": "sales", "caller": "+12025550101"}
    return [{**base, "type": "call.offered", "ts": T0},
            {**base, "type": "call.delivered", "ts": T0 + 1, "agent": "1001"},
            {**base, "type": "call.established", "ts": T0 + 2, "agent": "1001"},
            {**base, "type": "call.cleared", "ts": T0 + 30, "agent": "1001", "cause": "normal"}]


async def test_the_store_journals_the_published_bytes_and_survives_a_killed_writer(tmp_path) -> None:
    config = site_config(tmp_path, free_port())
    daemon = Daemon(config)
    daemon.drivers.clear()  # no PBX: the test dispatches
    await daemon.start()
    sub = Subscriber(config.bus.pub, "call.")
    try:
        assert isinstance(daemon.store, StoreProcess)
        await wait_for(lambda: daemon.counters.get("bus.subscribe") > 0)  # the subscription reached the daemon
        for event in call("c1"):
            daemon.dispatch(event)
        published = [await sub.recv() for _ in range(4)]
        assert await store_flushed(daemon)
        journal = call_events(daemon.store.engine, "c1")
        assert [row["payload"] for row in journal] == [body for _, body in published]  # seq, epoch, site and all
        (cdr,) = cdrs(daemon.store.engine)
        assert cdr["call_id"] == "c1" and cdr["disposition"] == published[-1][1]["disposition"]

        daemon.store._proc.send_signal(signal.SIGSTOP)  # what comes next stays in flight ...
        for n in range(50):
            for event in call(f"k{n}"):
                daemon.dispatch(event)
        daemon.store._proc.kill()  # ... and dies with the process
        assert await store_flushed(daemon)
        assert len(cdrs(daemon.store.engine)) == 51
        stats = (await request(config.bus.req, {"op": "stats"}))["result"]
        assert stats["store.restarts"] == 1 and stats["store.pending"] == 0 and stats["store.written"] == 51 * 5
    finally:
        sub.close()
        await daemon.stop()
    assert daemon.store._proc.returncode == 0  # stopped by close(), not killed

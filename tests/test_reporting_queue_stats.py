"""queue.stats in the daemon takes each queue's service-level seconds from its `[[queue]]` table
(as `ctid report -c` does), not the plugin's one default."""

from __future__ import annotations

import time

from ctid import config as ctid_config
from ctid.daemon import Daemon
from ctid.drivers.asterisk.sim import AmiSimulator
from ctid_plugins.reporting.config import Options
from ctid_plugins.reporting.plugin import Reporting
from ctid_plugins.reporting.realtime import midnight
from helpers import Subscriber, free_port
from reporting_support import cdr, database


async def test_queue_stats_use_each_queues_service_level(tmp_path):
    sim = AmiSimulator(seed=3, speed=1.0, paused=True)  # the PBX, idle: the figures come from the store
    _, ami_port = await sim.start()
    now = time.time()
    t0 = max(midnight(now, Options()), now - 600)  # today (UTC), whatever the hour the test runs
    offset = t0 - cdr("x", 0)["t_offered"]  # cdr() offsets are from tests/reporting_support.T0
    # vip ([[queue]] servicelevel 15): answered after 18 s, out of its SL (in it by the default 20 s)
    # sales (servicelevel 30): answered after 25 s, in its SL (out of it by the default 20 s)
    # billing (no table): answered after 19 s, in the default 20 s
    _, engine = database(tmp_path, [
        cdr("v1", offset, queue="vip", agent="a1", caller="1", wait=18, talk=5),
        cdr("s1", offset + 1, queue="sales", agent="a2", caller="2", wait=25, talk=5),
        cdr("b1", offset + 2, queue="billing", agent="a3", caller="3", wait=19, talk=5),
    ], [])
    engine.dispose()
    cfg = ctid_config.parse({
        "site": "hq",
        "bus": {"pub": f"tcp://127.0.0.1:{free_port()}", "req": f"tcp://127.0.0.1:{free_port()}", "security": "plain"},
        "database": {"url": f"sqlite:///{tmp_path}/ctid.db", "flush_interval": 0.05},
        "log": {"stats_interval": 0},
        "driver": [{"kind": "asterisk", "host": "127.0.0.1", "port": ami_port, "username": "cti", "secret": "ctisecret"}],
        "queue": [{"name": "vip", "servicelevel": 15}, {"name": "sales", "servicelevel": 30}],
        "plugins": {"enabled": ["reporting"], "reporting": {"stats_interval": 0.2}},
    }, "test")
    daemon = Daemon(cfg, extra_plugins={"reporting": Reporting()})
    sub = Subscriber(cfg.bus.pub, "queue.")
    await daemon.start()
    try:
        seen: dict[str, dict] = {}
        while set(seen) < {"vip", "sales", "billing"}:
            _, event = await sub.recv(timeout=10)
            if event.get("offered"):
                seen[event["queue"]] = event
        assert {q: e["service_level"] for q, e in seen.items()} == {"vip": 0.0, "sales": 1.0, "billing": 1.0}
        assert daemon.counters.get("plugins.reporting.stats_failures") == 0
    finally:
        sub.close()
        await daemon.stop()
        await sim.stop()

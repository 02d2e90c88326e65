"""Control requests and the price of CURVE, each compared with its baseline in the same run.

- `test_control_round_trip`: a client process sends `agent.not_ready` / `agent.ready`
  (alternating, for agent 1001) at CTID_BENCH_CONTROL_RATE (default 500) requests/s for
  CTID_BENCH_CONTROL_SECONDS (default 5); each is checked, becomes a `QueuePause` AMI action
  to the simulator (`ctid sim asterisk`, its own process), whose response completes the
  reply. Round trip = client send to client receive. Baseline, same run, same path without
  the PBX: `ping`. Target: p99 < 5 ms.
- `test_event_throughput[plain|curve]`: the mapper's events for the c-mixed-day transcript
  go into `Daemon.dispatch` as fast as it takes them; a subscriber process counts them (the
  `dispatch only` bench of test_pipeline.py), on a plain bus and on a CURVE bus with an
  admin key. Target: CURVE costs < 30% (curve / plain >= 0.7).
"""

from __future__ import annotations

import dataclasses
import gc
import math
import socket
import statistics
import subprocess
import sys
from typing import Any

import pytest

from benchlib import DaemonThread, daemon_config, dispatch_rounds, env_float, env_int, free_port, map_events, wait_until

RATE = env_int("CTID_BENCH_CONTROL_RATE", 500)
SECONDS = env_float("CTID_BENCH_CONTROL_SECONDS", 5.0)
ROUNDS = env_int("CTID_BENCH_CONTROL_ROUNDS", 3)
N_EVENTS = env_int("CTID_BENCH_CURVE_EVENTS", 60_000)
PAUSE = [{"op": "agent.not_ready", "agent": "1001", "reason": "bench"}, {"op": "agent.ready", "agent": "1001"}]


@pytest.fixture(scope="module")
def simulator():
    """`ctid sim asterisk` in its own process, quiet (only what it is asked), on a free port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ctid", "sim", "asterisk", "--port", str(port), "--no-traffic"],
                            stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: _listening(port), 30, "the simulator's AMI port")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _rounds(benchmark, children, config_of, requests) -> list[dict[str, Any]]:
    rounds: list[dict[str, Any]] = []
    live: list[DaemonThread] = []

    def setup():
        # The daemon shares this process with pytest: keep pytest's own objects out of the
        # daemon's garbage collections, as they would be in a daemon process of its own.
        gc.collect()
        gc.freeze()
        dt = DaemonThread(config_of())
        live.append(dt)
        wait_until(lambda: dt.daemon.counters.get("driver.asterisk.resyncs") >= 1, 30, "the driver's resync")
        client = children("control_client_proc.py", dt.daemon.config.bus.req)
        client.recv(timeout=30)
        return ({"dt": dt, "client": client},), {}

    def run(ctx) -> None:
        ctx["client"].send(requests=requests, rate=RATE, count=int(RATE * SECONDS), warmup=RATE // 2)
        ctx["result"] = ctx["client"].recv(timeout=SECONDS * 4 + 30)

    def teardown(ctx) -> None:
        ctx["dt"].stop()
        live.remove(ctx["dt"])
        ctx["client"].close()
        rounds.append(ctx["result"])

    try:
        benchmark.pedantic(run, setup=setup, teardown=teardown, rounds=ROUNDS, iterations=1)
    finally:
        for dt in live:
            dt.stop()
    return rounds


@pytest.mark.parametrize("op", ["ping", "agent-pause"])
def test_control_round_trip(benchmark, op, simulator, children, report, tmp_path_factory) -> None:
    requests = [{"op": "ping"}] if op == "ping" else PAUSE
    rounds = _rounds(benchmark, children, lambda: daemon_config(tmp_path_factory.mktemp("ctid"), simulator), requests)
    for r in rounds:
        assert r["errors"] == {} and r["lost"] == 0, r
    med = {k: statistics.median(r["rtt_us"][k] for r in rounds) for k in ("p50", "p99", "max")}
    benchmark.extra_info.update({"rate": RATE, "seconds": SECONDS, "rounds": rounds, "rtt_us_median_of_rounds": med})
    key, who = ("ping", "ping (no PBX)") if op == "ping" else ("pause", "agent.not_ready/ready via AMI")
    report.add(f"control.{key}_rate", f"{who}: achieved requests/s (slowest round)", min(r["rate"] for r in rounds), "req/s")
    report.add(f"control.{key}_p50_us", f"{who}: round trip p50", med["p50"], "us", ",.0f")
    report.add(f"control.{key}_p99_us", f"{who}: round trip p99", med["p99"], "us", ",.0f")
    report.add(f"control.{key}_p99_worst_us", f"{who}: round trip p99, worst round",
               max(r["rtt_us"]["p99"] for r in rounds), "us", ",.0f")


@pytest.fixture(scope="module")
def mapped(mixed_day: bytes, mixed_day_stats) -> list[dict[str, Any]]:
    reps = math.ceil(N_EVENTS / (0.9 * mixed_day_stats.out))
    return map_events(mixed_day, reps)[:N_EVENTS]


@pytest.mark.parametrize("security", ["plain", "curve"])
def test_event_throughput(benchmark, security, mapped, children, report, tmp_path_factory) -> None:
    from ctid.security.keys import KeyStore, server_keys

    def start():
        tmp = tmp_path_factory.mktemp("ctid")
        config = daemon_config(tmp, free_port())
        args: list[str] = []
        if security == "curve":
            key_file = tmp / "keys" / "server.key_secret"
            config = dataclasses.replace(config, bus=dataclasses.replace(config.bus, security="curve",
                                                                         server_key=str(key_file)))
            info, secret = KeyStore(config.database.url).new("admin", "bench")
            args = [server_keys(key_file)[0].decode(), info.key, secret]
        return config, children("subscriber_proc.py", config.bus.pub, "count", *args)

    results = dispatch_rounds(benchmark, mapped, max(ROUNDS, 5), start)
    assert all(r["missing"] == 0 for r in results), results
    rounds = [r["events_s"] for r in results]
    events_s = statistics.median(rounds)
    benchmark.extra_info.update({"events": len(mapped), "events_s_rounds": rounds, "events_s_median": events_s})
    report.add(f"control.{security}_events_s", f"events/s dispatch -> subscriber, {security} bus (median)",
               events_s, "events/s")

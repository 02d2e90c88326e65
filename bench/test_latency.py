"""Publish latency at a steady 10,000 events/s, ctid and raw pyzmq side by side.

Real normalized events (the mapper's output for the c-mixed-day transcript, ids unique
per repetition) are sent at a paced CTID_BENCH_RATE (default 10,000/s) for
CTID_BENCH_LATENCY_SECONDS (default 5). Just before each send the sender stamps the event
with `x.t_send = time.time_ns()`; a subscriber in another process takes `time.time_ns()`
as soon as the body is received (CLOCK_REALTIME: the same clock in both processes) and
keeps the difference. The first half second is warm-up and is left out. Each bench runs
CTID_BENCH_LATENCY_ROUNDS rounds (default 3, a fresh daemon and subscriber each); the
summary gives the median over rounds of each percentile and the worst round's p99.

- `test_ctid_latency`: stamp, then `Daemon.dispatch(event)` (state, bus publish, store
  submit) on the daemon's event loop thread; the store's writer process runs as usual.
- `test_ctid_latency[store-off]`: a diagnostic: the same with `store.submit` a no-op.
- `test_raw_zmq_latency`: stamp, msgpack-pack, two send() calls on an XPUB socket.

Pacing: each event is due at start + i / rate; the sender sleeps (time.sleep, GIL
released) until it is due, and sends at once when it is late, so the average rate holds
and short bursts happen as they do on a real link.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any, Callable

import msgpack
import pytest
import zmq

from benchlib import DaemonThread, capture_payloads, daemon_config, env_float, env_int, free_port, map_events, wait_until

RATE = env_int("CTID_BENCH_RATE", 10_000)
SECONDS = env_float("CTID_BENCH_LATENCY_SECONDS", 5.0)
N_EVENTS = int(RATE * SECONDS)
WARMUP = RATE // 2
ROUNDS = env_int("CTID_BENCH_LATENCY_ROUNDS", 3)


@pytest.fixture(scope="module")
def events(mixed_day: bytes, mixed_day_stats) -> list[dict[str, Any]]:
    """N_EVENTS real events, each with its own `x` dict to stamp."""
    reps = math.ceil(N_EVENTS / (0.9 * mixed_day_stats.out))  # later repetitions make a few less
    out = map_events(mixed_day, reps)[:N_EVENTS]
    assert len(out) == N_EVENTS
    for event in out:
        event["x"] = dict(event.get("x") or {})
    return out


def paced(send: Callable[[dict[str, Any]], None], events: list[dict[str, Any]], rate: int) -> dict[str, float]:
    """Send `events` at `rate` per second; stamp each one just before its send."""
    perf, sleep, now_ns = time.perf_counter, time.sleep, time.time_ns
    interval = 1.0 / rate
    start = perf()
    late = 0
    for i, event in enumerate(events):
        delay = start + i * interval - perf()
        if delay > 0:
            sleep(delay)
        else:
            late += 1
        event["x"]["t_send"] = now_ns()
        send(event)
    elapsed = perf() - start
    return {"rate": len(events) / elapsed, "late_sends": late}


def _record(benchmark, report, who: str, key: str, rounds: list[dict[str, Any]]) -> None:
    """Median over rounds of each percentile (the machine is shared: one round can be unlucky),
    and the worst round's p99."""
    med = {k: statistics.median(r["latency_us"][k] for r in rounds) for k in ("p50", "p99", "p99.9", "max")}
    benchmark.extra_info.update({"rate_target": RATE, "events": N_EVENTS, "warmup_events": WARMUP,
                                 "latency_us_median_of_rounds": med, "rounds": rounds})
    report.add(f"latency.{key}_rate", f"{who}: achieved rate (slowest round)", min(r["rate"] for r in rounds), "events/s")
    report.add(f"latency.{key}_p50_us", f"{who}: p50", med["p50"], "us", ",.1f")
    report.add(f"latency.{key}_p99_us", f"{who}: p99", med["p99"], "us", ",.1f")
    report.add(f"latency.{key}_p99_worst_us", f"{who}: p99, worst round", max(r["latency_us"]["p99"] for r in rounds), "us", ",.1f")
    report.add(f"latency.{key}_p999_us", f"{who}: p99.9", med["p99.9"], "us", ",.1f")
    report.add(f"latency.{key}_max_us", f"{who}: max", med["max"], "us", ",.1f")


def _round(res: dict[str, Any], pace: dict[str, float]) -> dict[str, Any]:
    assert res["missing"] == 0, res
    return {"rate": pace["rate"], "late_sends": pace["late_sends"], "measured": res["n_latency"],
            "latency_us": res["latency_us"]}


@pytest.mark.parametrize("store", ["store-on", "store-off"])
def test_ctid_latency(benchmark, store, events, children, report, tmp_path_factory) -> None:
    """`store-off` (diagnostic): the same with `store.submit` a no-op, to show in the same run
    what the store's writer thread, which shares the GIL, does to the tail."""
    rounds: list[dict[str, Any]] = []
    live: list[DaemonThread] = []

    async def pace_on_loop(dispatch, batch):
        return paced(dispatch, batch, RATE)

    def setup():
        config = daemon_config(tmp_path_factory.mktemp("ctid"), free_port())
        sub = children("subscriber_proc.py", config.bus.pub, "latency")
        dt = DaemonThread(config, drivers=False)  # no PBX: the bench dispatches
        live.append(dt)
        if store == "store-off":
            dt.daemon.store.submit = lambda event, packed=None: None
        sub.recv(timeout=30)
        wait_until(lambda: dt.daemon.counters.get("bus.subscribe") >= 1, 30, "the subscription")
        batch = [{**e, "x": dict(e["x"])} for e in events]  # dispatch mutates its events
        return ({"dt": dt, "sub": sub, "batch": batch, "s0": dt.daemon.bus.seq},), {}

    def run(ctx) -> None:
        dt = ctx["dt"]
        ctx["pace"] = dt.call(pace_on_loop(dt.daemon.dispatch, ctx["batch"]), SECONDS * 3 + 30)
        ctx["sub"].send(until_seq=dt.daemon.bus.seq, after_seq=ctx["s0"], warmup=WARMUP, timeout=30)
        ctx["result"] = ctx["sub"].recv(timeout=60)

    def teardown(ctx) -> None:
        ctx["dt"].stop()
        live.remove(ctx["dt"])
        ctx["sub"].close()
        rounds.append(_round(ctx["result"], ctx["pace"]))

    try:
        benchmark.pedantic(run, setup=setup, teardown=teardown, rounds=ROUNDS, iterations=1)
    finally:
        for dt in live:
            dt.stop()
    if store == "store-on":
        _record(benchmark, report, "ctid Daemon.dispatch", "ctid", rounds)
    else:
        _record(benchmark, report, "ctid, store off", "ctid_nostore", rounds)


def test_raw_zmq_latency(benchmark, events, children, report) -> None:
    # Same events, with the envelope the bus would add, packed at send time (the stamp is inside).
    envelope = {"v": 1, "epoch": 1, "site": "hq"}
    topics = [topic for topic, _ in capture_payloads(events)]
    rounds: list[dict[str, Any]] = []

    def setup():
        ctx = zmq.Context()
        pub = ctx.socket(zmq.XPUB)
        pub.setsockopt(zmq.SNDHWM, 100_000)
        pub.setsockopt(zmq.LINGER, 1000)
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        pub.bind(endpoint)
        state = {"ctx": ctx, "pub": pub}
        try:
            state["sub"] = sub = children("subscriber_proc.py", endpoint, "latency")
            sub.recv(timeout=30)
            pub.setsockopt(zmq.RCVTIMEO, 30_000)
            assert pub.recv()[:1] == b"\x01"  # the subscription has arrived
        except BaseException:
            pub.close(0)
            ctx.term()
            raise
        state["batch"] = [{**e, **envelope, "seq": i + 1, "x": dict(e["x"])} for i, e in enumerate(events)]
        return (state,), {}

    def run(state) -> None:
        send, more, pack = state["pub"].send, zmq.SNDMORE, msgpack.Packer().pack
        topic_of = iter(topics).__next__

        def publish(event: dict[str, Any]) -> None:
            send(topic_of(), more)
            send(pack(event))

        state["pace"] = paced(publish, state["batch"], RATE)
        state["sub"].send(until_seq=len(state["batch"]), after_seq=0, warmup=WARMUP, timeout=30)
        state["result"] = state["sub"].recv(timeout=60)

    def teardown(state) -> None:
        state["sub"].close()
        state["pub"].close(0)
        state["ctx"].term()
        rounds.append(_round(state["result"], state["pace"]))

    benchmark.pedantic(run, setup=setup, teardown=teardown, rounds=ROUNDS, iterations=1)
    _record(benchmark, report, "raw pyzmq", "zmq", rounds)

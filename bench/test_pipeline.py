"""End-to-end throughput: AMI bytes on TCP -> the real Daemon -> ZeroMQ -> another process.

Benches on the same data, side by side in one run:

- `test_ctid_pipeline[store-on]`: the feeder process streams the c-mixed-day transcript,
  repeated CTID_BENCH_REPS times with unique ids, to a real `Daemon` (driver, parser,
  mapper, state, bus publish, store submit; the store's writer process writes to SQLite
  meanwhile). A subscriber process decodes every event. The window runs from the feeder's
  first byte after the login to the subscriber's receipt of the last event. CPU used per
  thread in the window is recorded (where the time goes, without a profiler).
- `test_ctid_pipeline[store-off]`: a diagnostic: the same with `store.submit` a no-op.
- `test_ctid_dispatch_only[store-on|store-off]`: the mapper's events for the same stream
  straight into `Daemon.dispatch` as fast as it takes them: ctid's bus side without the
  AMI input.
- `test_raw_zmq_baseline`: the same (topic, msgpack) payloads the daemon publishes,
  pre-packed, sent with the same two send() calls on an XPUB socket with the same HWM, to
  the same subscriber: what the transport alone costs.
- `test_pyst2_baseline`: pyst2's Manager (threads, one handler for '*') on the same feeder
  and stream, for the first repetition only (it is slow); per-second rates compare.

pytest-benchmark's own time for a round is go -> last event (the daemon is started and
the subscriber connected in `setup`, outside the timed part). The figures that matter are
printed in the summary and kept in extra_info.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest
import zmq

from benchlib import (DaemonThread, capture_payloads, cpu_by_thread, cpu_delta, daemon_config, dispatch_rounds, env_int,
                      free_port, map_events, transcript_path, wait_until)

REPS = env_int("CTID_BENCH_REPS", 100)
ROUNDS = env_int("CTID_BENCH_ROUNDS", 3)
PYST2_TIMEOUT = 60.0


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def feeder(mixed_day: bytes):
    """One feeder process for the module: the stream is built once, served per connection."""
    from benchlib import Child

    child = Child("ami_feeder.py", str(transcript_path("c-mixed-day")), str(REPS))
    info = child.recv(timeout=120)
    yield child, info["port"], info["bytes"]
    child.close(timeout=10)


@pytest.fixture(scope="module")
def mapped(mixed_day: bytes) -> list[dict]:
    """The normalized events the mapper makes of the whole stream (what drivers dispatch)."""
    return map_events(mixed_day, REPS)


@pytest.fixture(scope="module")
def payloads(mapped: list[dict]) -> list[tuple[bytes, bytes]]:
    """What the daemon publishes for them, captured through the real State and Bus.publish."""
    return capture_payloads(mapped)


def _cpu(daemon) -> dict[str, float]:
    """CPU seconds by thread of this process, plus the store's writer process under the name
    its thread had (`ctid-store`) when the writer ran in the daemon's process."""
    import os

    out = cpu_by_thread()
    proc = getattr(daemon.store, "_proc", None)
    if proc is not None:
        try:
            with open(f"/proc/{proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out["ctid-store"] = out.get("ctid-store", 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:  # it was replaced meanwhile
            pass
    return out


def _median(rounds: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rounds)


# -- ctid ----------------------------------------------------------------------------------


@pytest.mark.parametrize("store", ["store-on", "store-off"])
def test_ctid_pipeline(benchmark, store, feeder, children, mixed_day_stats, report, tmp_path_factory) -> None:
    """`store-off` is a diagnostic, not the product: the same run with `store.submit` made a
    no-op, to show in the same run what the store's writer thread costs the hot path (it
    shares the GIL, and pyzmq releases the GIL on every send)."""
    feed, port, stream_bytes = feeder
    frames_after_go = REPS * mixed_day_stats.frames - 1  # the login frame goes before go
    rounds: list[dict[str, float]] = []
    live: list[DaemonThread] = []

    def setup():
        config = daemon_config(tmp_path_factory.mktemp("ctid"), port)
        sub = children("subscriber_proc.py", config.bus.pub, "count")
        dt = DaemonThread(config)
        live.append(dt)
        if store == "store-off":
            dt.daemon.store.submit = lambda event, packed=None: None
        sub.recv(timeout=30)
        assert feed.recv(timeout=30) == {"login": True}
        c = dt.daemon.counters
        wait_until(lambda: c.get("bus.subscribe") >= 1 and c.get("driver.asterisk.resyncs") >= 1, 30,
                   "the subscriber's subscription and the driver's resync")
        ctx = {"dt": dt, "sub": sub, "s0": dt.daemon.bus.seq, "f0": c.get("driver.asterisk.frames_in")}
        return (ctx,), {}

    def run(ctx) -> None:
        daemon, sub = ctx["dt"].daemon, ctx["sub"]
        c = daemon.counters
        ctx["cpu0"] = _cpu(daemon)
        feed.send(go=True)
        ctx["t0"] = feed.recv(timeout=30)["t0"]
        wait_until(lambda: c.get("driver.asterisk.frames_in") - ctx["f0"] >= frames_after_go, 110,
                   "the daemon to read every frame")
        ctx["s1"] = daemon.bus.seq
        sub.send(until_seq=ctx["s1"], after_seq=ctx["s0"], timeout=60)
        ctx["sub_result"] = sub.recv(timeout=90)
        ctx["cpu"] = cpu_delta(ctx["cpu0"], _cpu(daemon))
        ctx["store"] = (daemon.store.written, daemon.store.pending)
        ctx["feed_result"] = feed.recv(timeout=30)

    def teardown(ctx) -> None:
        dt = ctx["dt"]
        daemon = dt.daemon
        dt.stop()
        live.remove(dt)
        res = ctx["sub_result"]
        window = (res["t_last"] - ctx["t0"]) / 1e9
        frames = daemon.counters.get("driver.asterisk.frames_in") - ctx["f0"]
        events = ctx["s1"] - ctx["s0"]
        rounds.append({
            "window_s": window,
            "frames": frames,
            "events": events,
            "frames_s": frames / window,
            "events_s": res["n_window"] / window,
            "missing": res["missing"],
            "store_written_at_end": ctx["store"][0],
            "store_pending_at_end": ctx["store"][1],
            "store_written_total": daemon.store.written,
            "unmapped": daemon.counters.snapshot().get("driver.asterisk.unmapped", 0),
            "cpu_s": ctx["cpu"],
        })
        ctx["sub"].close()

    try:
        benchmark.pedantic(run, setup=setup, teardown=teardown, rounds=ROUNDS, iterations=1)
    finally:
        for dt in live:
            dt.stop()

    assert all(r["frames"] == frames_after_go for r in rounds), rounds
    frames_s, events_s = _median(rounds, "frames_s"), _median(rounds, "events_s")
    benchmark.extra_info.update({
        "reps": REPS, "stream_bytes": stream_bytes, "frames_per_round": frames_after_go,
        "events_per_round": rounds[0]["events"], "frames_s_median": frames_s, "events_s_median": events_s,
        "rounds": rounds,
    })
    cpu = {name: statistics.median(r["cpu_s"].get(name, 0.0) for r in rounds)
           for name in ("ctid-daemon", "ctid-store", "ZMQbg/IO/0")}
    if store == "store-on":
        key, who = "pipeline.ctid", "ctid"
        report.add(f"{key}_frames", f"{who}: AMI frames per round ({REPS} reps)", frames_after_go, "")
        report.add(f"{key}_events", f"{who}: events published per round", rounds[0]["events"], "")
    else:
        key, who = "pipeline.ctid_nostore", "ctid, store off"
    report.add(f"{key}_window_s", f"{who}: first byte -> last event (median)", _median(rounds, "window_s"), "s", ",.3f")
    report.add(f"{key}_frames_s", f"{who}: AMI frames/s in (median)", frames_s, "frames/s")
    report.add(f"{key}_frames_s_min", f"{who}: AMI frames/s in (worst round)", min(r["frames_s"] for r in rounds), "frames/s")
    report.add(f"{key}_events_s", f"{who}: events/s out (median)", events_s, "events/s")
    report.add(f"{key}_missing", f"{who}: events lost (all rounds)", sum(r["missing"] for r in rounds), "")
    report.add(f"{key}_cpu_loop", f"{who}: CPU in window, event loop thread", cpu["ctid-daemon"], "s", ",.3f")
    report.add(f"{key}_cpu_store", f"{who}: CPU in window, store writer process", cpu["ctid-store"], "s", ",.3f")
    report.add(f"{key}_cpu_zmq", f"{who}: CPU in window, ZeroMQ I/O thread", cpu["ZMQbg/IO/0"], "s", ",.3f")
    if store == "store-on":
        report.add(f"{key}_store_lag", f"{who}: store rows pending at window end",
                   max(r["store_pending_at_end"] for r in rounds), "events")
    assert all(r["missing"] == 0 for r in rounds), "the subscriber lost events"


@pytest.mark.parametrize("store", ["store-on", "store-off"])
def test_ctid_dispatch_only(benchmark, store, mapped, children, report, tmp_path_factory) -> None:
    """The daemon's bus side alone: the mapper's events for the same stream go straight into
    `Daemon.dispatch` (state, bus publish, store submit) as fast as it takes them; the same
    subscriber process. Compare with the raw pyzmq baseline's events/s. `store-off`: the
    same diagnostic as above."""
    def start():
        config = daemon_config(tmp_path_factory.mktemp("ctid"), free_port())
        sub = children("subscriber_proc.py", config.bus.pub, "count")
        if store == "store-off":
            return config, sub, lambda dt: setattr(dt.daemon.store, "submit", lambda event, packed=None: None)
        return config, sub

    rounds = dispatch_rounds(benchmark, mapped, max(ROUNDS, 5), start)
    events_s = _median(rounds, "events_s")
    benchmark.extra_info.update({"events": len(mapped), "events_s_median": events_s, "rounds": rounds})
    if store == "store-on":
        report.add("pipeline.dispatch_events_s", "ctid dispatch only: events/s -> subscriber (median)", events_s, "events/s")
    else:
        report.add("pipeline.dispatch_nostore_events_s", "ctid dispatch only, store off: events/s (median)", events_s, "events/s")
    assert all(r["missing"] == 0 for r in rounds)


# -- raw pyzmq -----------------------------------------------------------------------------


def test_raw_zmq_baseline(benchmark, payloads, children, report) -> None:
    rounds: list[dict[str, float]] = []
    n = len(payloads)

    def setup():
        ctx = zmq.Context()
        pub = ctx.socket(zmq.XPUB)  # the bus's socket type and options
        pub.setsockopt(zmq.SNDHWM, 100_000)
        pub.setsockopt(zmq.LINGER, 1000)
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        pub.bind(endpoint)
        sub = children("subscriber_proc.py", endpoint, "count")
        sub.recv(timeout=30)
        pub.setsockopt(zmq.RCVTIMEO, 30_000)
        assert pub.recv()[:1] == b"\x01"  # the subscription has arrived
        return ({"ctx": ctx, "pub": pub, "sub": sub},), {}

    def run(state) -> None:
        send, more = state["pub"].send, zmq.SNDMORE
        state["t0"] = time.time_ns()
        for topic, body in payloads:
            send(topic, more)
            send(body)
        state["t_sent"] = time.time_ns()
        state["sub"].send(until_seq=n, after_seq=0, timeout=60)
        state["result"] = state["sub"].recv(timeout=90)

    def teardown(state) -> None:
        res = state["result"]
        window = (res["t_last"] - state["t0"]) / 1e9
        rounds.append({"window_s": window, "events_s": res["n_window"] / window, "missing": res["missing"],
                       "send_only_events_s": n / ((state["t_sent"] - state["t0"]) / 1e9)})
        state["sub"].close()
        state["pub"].close(0)
        state["ctx"].term()

    benchmark.pedantic(run, setup=setup, teardown=teardown, rounds=max(ROUNDS, 5), iterations=1)
    events_s = _median(rounds, "events_s")
    benchmark.extra_info.update({"events": n, "events_s_median": events_s, "rounds": rounds})
    report.add("pipeline.zmq_events", "raw pyzmq: events per round (same payloads)", n, "")
    report.add("pipeline.zmq_events_s", "raw pyzmq: events/s, send -> subscriber (median)", events_s, "events/s")
    report.add("pipeline.zmq_send_events_s", "raw pyzmq: events/s, send loop alone", _median(rounds, "send_only_events_s"), "events/s")
    assert all(r["missing"] == 0 for r in rounds)


# -- pyst2 ---------------------------------------------------------------------------------


def test_pyst2_baseline(benchmark, feeder, children, mixed_day_stats, report) -> None:
    feed, port, _ = feeder
    expected = mixed_day_stats.events  # the events of the first repetition
    rounds: list[dict[str, float]] = []

    def setup():
        client = children("pyst2_proc.py", str(port), str(expected), str(PYST2_TIMEOUT))
        assert feed.recv(timeout=30) == {"login": True}
        assert client.recv(timeout=30) == {"login": True}
        return ({"client": client},), {}

    def run(state) -> None:
        feed.send(go=True)
        state["t0"] = feed.recv(timeout=30)["t0"]
        state["result"] = state["client"].recv(timeout=PYST2_TIMEOUT + 60)

    def teardown(state) -> None:
        state["client"].close(timeout=5)  # its socket closes: the feeder stops sending
        feed.recv(timeout=30)  # {"done": ..., "ok": false}
        res = state["result"]
        window = (res["t_last"] - state["t0"]) / 1e9
        # Frames handled up to that event: the frames of the repetition, in proportion.
        frames = res["n"] * (mixed_day_stats.frames - 1) / expected
        rounds.append({"window_s": window, "events": res["n"], "events_s": res["n"] / window,
                       "frames_s": frames / window, "timed_out": res["timed_out"]})

    benchmark.pedantic(run, setup=setup, teardown=teardown, rounds=1, iterations=1)
    r = rounds[0]
    benchmark.extra_info.update(r)
    report.add("pipeline.pyst2_events", "pyst2: events dispatched (first repetition)", r["events"], "")
    report.add("pipeline.pyst2_events_s", "pyst2: events/s dispatched", r["events_s"], "events/s")
    report.add("pipeline.pyst2_frames_s", "pyst2: AMI frames/s", r["frames_s"], "frames/s")

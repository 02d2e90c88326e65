"""Shared pieces of the bench suite: the AMI stream, child processes, captured payloads.

Imported by the bench modules (conftest.py puts bench/ on sys.path) and by the child
scripts (`ami_feeder.py`, `subscriber_proc.py`, `pyst2_proc.py`, `memory_proc.py`), which
run as separate processes so a measured side never shares a GIL with what it measures.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
AMI = REPO.parent / "shared" / "ami"

#: Every Uniqueid/Linkedid/DestUniqueid/... value of the transcripts starts with this.
ID_PREFIX = b": 17953"
READ_SIZE = 256 * 1024  # what AmiLink reads per call (LinkOptions.read_size)


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def transcript_path(name: str) -> Path:
    return AMI / f"{name}.raw"


# -- the AMI stream ------------------------------------------------------------------------


def split_banner(raw: bytes) -> tuple[bytes, bytes]:
    nl = raw.find(b"\r\n")
    return raw[: nl + 2], raw[nl + 2 :]


def unique_rep(body: bytes, rep: int) -> bytes:
    """One repetition of the transcript body as new calls: every id gets a fixed-width prefix.

    `: 17953...` -> `: 00717953...` (rep 7). The width is fixed so two repetitions can never
    produce the same id. Numeric fields that share the prefix (LoginTime, LastCall) grow too,
    which the mapper does not mind.
    """
    return body.replace(ID_PREFIX, b": %03d17953" % rep)


def build_stream(raw: bytes, reps: int) -> tuple[bytes, bytes, list[bytes]]:
    """(banner, login frame, rest as one bytes object per repetition).

    The login frame is the first frame of the transcript (`Response: Success`, ActionID
    login-001): a replay sends it as soon as the client's Login arrives, the rest on `go`.
    Later repetitions keep their own copy of that frame; clients see it as an unsolicited
    response (ctid counts it as `unexpected_responses`).
    """
    banner, body = split_banner(raw)
    parts = [unique_rep(body, r) for r in range(reps)]
    end = parts[0].find(b"\r\n\r\n") + 4
    login, parts[0] = parts[0][:end], parts[0][end:]
    return banner, login, parts


@dataclass(frozen=True)
class StreamStats:
    """What one repetition of a transcript body holds."""

    frames: int  # every frame (what the driver's frames_in counts)
    events: int  # frames with an Event header (what pyst2 dispatches)
    wanted: int  # frames ctid's parser keeps (not noise)
    out: int  # normalized events the mapper makes of them


def stream_stats(raw: bytes) -> StreamStats:
    from ctid.drivers.asterisk.mapper import AsteriskMapper
    from ctid.drivers.asterisk.protocol import PyFrameParser

    _, body = split_banner(raw)
    everything = PyFrameParser(drop=())
    every = everything.feed(body)
    keep = PyFrameParser()
    wanted = keep.feed(body)
    mapper = AsteriskMapper()
    out = sum(len(mapper.handle(f, 1.0)) for f in wanted if "Event" in f)
    return StreamStats(everything.frames, sum("Event" in f for f in every), len(wanted), out)


def map_events(raw: bytes, reps: int, ts: float | None = None) -> list[dict[str, Any]]:
    """The normalized events the Asterisk mapper makes of `reps` unique repetitions."""
    from ctid.drivers.asterisk.mapper import AsteriskMapper
    from ctid.drivers.asterisk.protocol import FrameParser

    _, body = split_banner(raw)
    parser, mapper = FrameParser(), AsteriskMapper()
    ts = time.time() if ts is None else ts
    events: list[dict[str, Any]] = []
    for r in range(reps):
        data = unique_rep(body, r)
        for i in range(0, len(data), READ_SIZE):
            for frame in parser.feed(data[i : i + READ_SIZE]):
                if "Event" in frame:
                    events.extend(mapper.handle(frame, ts))
    return events


class _Recorder:
    """Stands in for the bus's XPUB socket: keeps what `Bus.publish` sends, frame by frame."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, data: bytes, flags: int = 0) -> None:
        self.frames.append(data)


def capture_payloads(events: list[dict[str, Any]], site: str = "hq") -> list[tuple[bytes, bytes]]:
    """(topic, msgpack body) exactly as the daemon publishes `events`: State.apply, then the
    real Bus.publish with its socket replaced by a recorder."""
    from ctid.bus import Bus
    from ctid.metrics import Counters
    from ctid.state import State

    bus = Bus(site, "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", Counters())
    recorder = _Recorder()
    bus._pub = recorder  # type: ignore[assignment]
    state = State()
    try:
        for event in events:
            event = dict(event)
            state.apply(event)
            bus.publish(event)
    finally:
        bus._pub = None
        bus._ctx.term()
    frames = recorder.frames
    return list(zip(frames[0::2], frames[1::2]))


# -- a big live state -----------------------------------------------------------------------


def state_events(calls: int, agents: int, queues: int):
    """Normalized events for a busy site, in order: every agent logs on to two of `queues`
    queues, then `calls` calls are offered and queued; the first `agents` of them are
    delivered to and answered by one agent each (all agents busy), the rest keep waiting.
    Field values are distinct per call and agent, as real ones are."""
    ts = 1_795_342_000.0
    names = [f"queue-{q:02d}" for q in range(queues)]
    for a in range(agents):
        agent = str(10_000 + a)
        for queue in (names[a % queues], names[(a + 1) % queues]):
            yield {"type": "agent.logged_on", "ts": ts, "source": "asterisk", "agent": agent,
                   "name": f"Agent {a:05d} Surname", "queue": queue, "device": f"PJSIP/{agent}"}
    for c in range(calls):
        ts += 0.001
        call = {"source": "asterisk", "call_id": f"{1_795_342_000 + c}.{c * 7}", "caller": f"+4420794{c:05d}",
                "caller_name": f"Caller {c:05d}", "called": "02079460000", "queue": names[c % queues],
                "agent": None, "device": None, "direction": "inbound"}
        yield {**call, "type": "call.offered", "ts": ts}
        yield {**call, "type": "call.queued", "ts": ts, "position": 1 + c // queues}
        if c < agents:
            agent = str(10_000 + c)
            yield {**call, "type": "call.delivered", "ts": ts + 2, "agent": agent, "device": agent}
            yield {**call, "type": "call.established", "ts": ts + 5, "agent": agent, "device": agent, "wait": 5.0, "ring": 3.0}


def build_state(calls: int, agents: int, queues: int):
    from ctid.state import State

    state = State()
    apply = state.apply
    for event in state_events(calls, agents, queues):
        apply(event)
    return state


# -- ports, config -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def daemon_config(tmp_path: Path, ami_port: int, **driver_options: Any):
    """A one-driver site with the daemon's default store batching (500 events / 0.5 s)."""
    from ctid import config as ctid_config

    raw = {
        "site": "hq",
        "bus": {"pub": f"tcp://127.0.0.1:{free_port()}", "req": f"tcp://127.0.0.1:{free_port()}",
                "security": "plain"},
        "database": {"url": f"sqlite:///{tmp_path}/ctid.db"},
        "log": {"stats_interval": 0},
        "driver": [{"kind": "asterisk", "host": "127.0.0.1", "port": ami_port, "username": "cti",
                    "secret": "ctisecret", "ping_interval": 3600, **driver_options}],
    }
    return ctid_config.parse(raw, "bench")


# -- the daemon on its own event loop thread ----------------------------------------------


class DaemonThread:
    """A `Daemon` running on uvloop in a background thread, so the main thread can wait on
    child processes (GIL released) while the daemon works.

    With `drivers=False` no driver runs (no PBX): the bench calls `daemon.dispatch` itself,
    on the loop thread, through `call()`.
    """

    def __init__(self, config: Any, drivers: bool = True) -> None:
        try:
            import uvloop

            self.loop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover
            self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ctid-daemon", daemon=True)
        self.thread.start()
        self.daemon = self.call(self._start(config, drivers))

    @staticmethod
    async def _start(config: Any, drivers: bool):
        from ctid.daemon import Daemon

        daemon = Daemon(config)
        if not drivers:
            daemon.drivers.clear()
        await daemon.start()
        return daemon

    def call(self, coro, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self.call(self.daemon.stop(), 60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


def dispatch_rounds(benchmark: Any, events: list[dict[str, Any]], rounds: int, start: Any) -> list[dict[str, float]]:
    """Rounds of `Daemon.dispatch` flooded with `events` (a fresh copy each round: dispatch
    mutates them) on the daemon's loop, timed to a subscriber process's receipt of the last.

    `start()` returns (config, subscriber Child) for a fresh daemon with that subscriber
    connected; it may also return a third item, a function applied to the DaemonThread
    before the round (e.g. to switch the store off). One dict per round: window_s, events_s,
    missing."""
    out: list[dict[str, float]] = []
    live: list[DaemonThread] = []

    async def flood(dispatch, batch) -> int:
        t0 = time.time_ns()
        for event in batch:
            dispatch(event)
        return t0

    def setup():
        config, sub, *prepare = start()
        dt = DaemonThread(config, drivers=False)
        live.append(dt)
        for fn in prepare:
            fn(dt)
        sub.recv(timeout=30)
        wait_until(lambda: dt.daemon.counters.get("bus.subscribe") >= 1, 30, "the subscription")
        return ({"dt": dt, "sub": sub, "events": [dict(e) for e in events]},), {}

    def run(ctx) -> None:
        dt = ctx["dt"]
        ctx["t0"] = dt.call(flood(dt.daemon.dispatch, ctx["events"]), 60)
        ctx["sub"].send(until_seq=len(ctx["events"]), after_seq=0, timeout=60)
        ctx["result"] = ctx["sub"].recv(timeout=90)

    def teardown(ctx) -> None:
        ctx["dt"].stop()
        live.remove(ctx["dt"])
        res = ctx["result"]
        window = (res["t_last"] - ctx["t0"]) / 1e9
        out.append({"window_s": window, "events_s": res["n_window"] / window, "missing": res["missing"]})
        ctx["sub"].close()

    try:
        benchmark.pedantic(run, setup=setup, teardown=teardown, rounds=rounds, iterations=1)
    finally:
        for dt in live:
            dt.stop()
    return out


def wait_until(predicate, timeout: float, what: str, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


# -- child processes -----------------------------------------------------------------------


class ChildError(RuntimeError):
    pass


class Child:
    """A bench helper script in its own Python process, spoken to in JSON lines.

    The parent writes one JSON object per line to the child's stdin; the child answers
    one JSON object per line on stdout. stderr is inherited (pytest shows it on failure).
    """

    def __init__(self, script: str, *args: str) -> None:
        self.name = script
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / script), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=str(HERE),
        )
        self._buf = b""

    def send(self, **message: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def recv(self, timeout: float = 30.0) -> dict[str, Any]:
        """The child's next line; blocks (GIL released) up to `timeout` seconds."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChildError(f"{self.name}: no answer within {timeout:g}s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise ChildError(f"{self.name} exited (code {self.proc.wait()}) without answering")
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)

    def close(self, timeout: float = 10.0) -> None:
        """Close stdin (the children exit on EOF), then wait; kill this child if it hangs."""
        try:
            if self.proc.stdin is not None and not self.proc.stdin.closed:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def stdin_lines():
    """In a child: a generator of decoded JSON commands read from stdin (None at EOF)."""
    for line in sys.stdin.buffer:
        if line.strip():
            yield json.loads(line)
    yield None


def reply(**message: Any) -> None:
    """In a child: one JSON line to the parent."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def percentiles(values: list[int] | Any, points: tuple[float, ...] = (50, 90, 99, 99.9)) -> dict[str, float]:
    """Nearest-rank percentiles of integer nanoseconds, returned in microseconds."""
    data = sorted(values)
    if not data:
        return {}
    out = {}
    for p in points:
        rank = max(0, min(len(data) - 1, int(round(p / 100.0 * len(data) + 0.5)) - 1))
        out[f"p{p:g}"] = data[rank] / 1000.0
    out["max"] = data[-1] / 1000.0
    out["mean"] = sum(data) / len(data) / 1000.0
    return out


def cpu_by_thread() -> dict[str, float]:
    """CPU seconds (user + system) used so far by each thread of this process, by name:
    Python threads by their `threading` name, native ones (ZeroMQ's I/O thread) by comm."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/self/task/{tid}/comm") as f:
                comm = f.read().strip()
        except OSError:  # the thread ended meanwhile
            continue
        name = names.get(int(tid), comm)
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(v - before.get(k, 0.0), 3) for k, v in after.items() if v - before.get(k, 0.0) > 0}


def rss_bytes() -> int:
    """This process's resident set size (VmRSS from /proc/self/status)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")

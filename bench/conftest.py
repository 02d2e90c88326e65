"""Fixtures of the bench suite and the summary printed at the end of a run.

Every bench records its figures with `report.add(...)` (and in `benchmark.extra_info`, so
`--benchmark-json` carries them). After pytest-benchmark's own table, the terminal summary
prints them all, then the ratios measured side by side in this run and the targets.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import Child, stream_stats, transcript_path  # noqa: E402


@dataclass
class Report:
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    values: dict[str, float] = field(default_factory=dict)

    def add(self, key: str, label: str, value: float, unit: str, fmt: str = ",.0f") -> None:
        self.values[key] = value
        self.rows.append((key.split(".", 1)[0], label, f"{value:{fmt}} {unit}".rstrip()))


REPORT_KEY = pytest.StashKey[Report]()
SECTIONS = ("pipeline", "latency", "memory", "parser", "screenpop", "acd", "recordings", "reporting", "control", "csta")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[REPORT_KEY] = Report()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # the unit tests' per-test timeout (pyproject.toml) is not for benchmarks that run for minutes
    for item in items:
        item.add_marker(pytest.mark.timeout(0))


@pytest.fixture(scope="session")
def report(pytestconfig: pytest.Config) -> Report:
    return pytestconfig.stash[REPORT_KEY]


@pytest.fixture(scope="session")
def mixed_day() -> bytes:
    path = transcript_path("c-mixed-day")
    if not path.exists():
        pytest.skip(f"AMI transcript {path} is not here (shared/ami sits beside the repo)")
    return path.read_bytes()


@pytest.fixture(scope="session")
def mixed_day_stats(mixed_day: bytes):
    return stream_stats(mixed_day)


@pytest.fixture
def children():
    """Child processes of one test; whatever is still running at its end is closed (or killed)."""
    started: list[Child] = []

    def start(script: str, *args: str) -> Child:
        child = Child(script, *args)
        started.append(child)
        return child

    yield start
    for child in reversed(started):
        child.close(timeout=5)


def _ratio(values: dict[str, float], a: str, b: str) -> float | None:
    if a in values and b in values and values[b]:
        return values[a] / values[b]
    return None


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    report = config.stash.get(REPORT_KEY, None)
    if report is None or not report.rows:
        return
    tr = terminalreporter
    width = max(len(label) for _, label, _ in report.rows) + 2
    tr.write_sep("=", "ctid bench: measurements")
    section = None
    order = {name: i for i, name in enumerate(SECTIONS)}
    rows = sorted(report.rows, key=lambda row: order.get(row[0], len(order)))  # stable within a section
    for sec, label, text in rows:
        if sec != section:
            tr.write_line(f"[{sec}]")
            section = sec
        tr.write_line(f"  {label:<{width}}{text:>22}")

    v = report.values
    checks = [
        ("ctid / pyst2, AMI frames/s", _ratio(v, "pipeline.ctid_frames_s", "pipeline.pyst2_frames_s"), "x"),
        ("ctid / raw pyzmq, events/s (same payloads)", _ratio(v, "pipeline.ctid_events_s", "pipeline.zmq_events_s"), "x"),
        ("AMI parser + mapper, Newexten kept / dropped, frames/s", _ratio(v, "parser.driver_side_driver_frames_s", "parser.driver_side_noise_frames_s"), "x"),
        ("ctid store off / ctid, AMI frames/s (diagnostic)", _ratio(v, "pipeline.ctid_nostore_frames_s", "pipeline.ctid_frames_s"), "x"),
        ("ctid dispatch only / raw pyzmq, events/s", _ratio(v, "pipeline.dispatch_events_s", "pipeline.zmq_events_s"), "x"),
        ("ctid dispatch, store off / raw pyzmq (diagnostic)", _ratio(v, "pipeline.dispatch_nostore_events_s", "pipeline.zmq_events_s"), "x"),
        ("ctid p99 / raw pyzmq p99 at 10k events/s", _ratio(v, "latency.ctid_p99_us", "latency.zmq_p99_us"), "x"),
        ("ctid p99 / ctid store-off p99 (diagnostic)", _ratio(v, "latency.ctid_p99_us", "latency.ctid_nostore_p99_us"), "x"),
        ("compiled / pure-Python parser, frames/s", _ratio(v, "parser.compiled_frames_s", "parser.python_frames_s"), "x"),
        ("ACD pure / compiled, median µs, call arrives", _ratio(v, "acd.pure_offer_median_us", "acd.compiled_offer_median_us"), "x"),
        ("ACD pure / compiled, median µs, agent ready",
         _ratio(v, "acd.pure_agent_ready_median_us", "acd.compiled_agent_ready_median_us"), "x"),
        ("ACD SQL / compiled, median µs, call arrives", _ratio(v, "acd.sql_offer_median_us", "acd.compiled_offer_median_us"), "x"),
        ("ACD SQL / compiled, median µs, agent ready",
         _ratio(v, "acd.sql_agent_ready_median_us", "acd.compiled_agent_ready_median_us"), "x"),
        ("ACD SQL / compiled, same simple model, call arrives",
         _ratio(v, "acd.sql_offer_median_us", "acd.compiled_simple_offer_median_us"), "x"),
        ("ACD SQL / compiled, same simple model, agent ready",
         _ratio(v, "acd.sql_agent_ready_median_us", "acd.compiled_simple_agent_ready_median_us"), "x"),
        ("CSTA / Asterisk driver -> bus, normalized events/s", _ratio(v, "csta.csta_events_s", "csta.asterisk_events_s"), "x"),
        ("CSTA reader compiled / pure-Python, messages/s", _ratio(v, "csta.compiled_read_messages_s", "csta.pure_read_messages_s"), "x"),
        ("ctid report / plain SQL, month by queue and 30 min", _ratio(v, "reporting.ctid_s", "reporting.sql_s"), "x"),
        ("CURVE / plain bus, events/s (target >= 0.70)", _ratio(v, "control.curve_events_s", "control.plain_events_s"), "x"),
        ("control via AMI / ping, round trip p99", _ratio(v, "control.pause_p99_us", "control.ping_p99_us"), "x"),
    ]
    targets = [
        ("pipeline.ctid_frames_s", "end-to-end AMI frames/s >= 150,000", lambda x: x >= 150_000, ",.0f"),
        ("latency.ctid_p99_us", "publish p99 < 2 ms at 10k/s (us, median round)", lambda x: x < 2000, ",.0f"),
        ("latency.ctid_p99_worst_us", "publish p99 < 2 ms at 10k/s (us, worst round)", lambda x: x < 2000, ",.0f"),
        ("memory.rss_mb", "RSS with 10k calls + 5k agents < 300 MB", lambda x: x < 300, ",.1f"),
        ("screenpop.store_p99_us", "screen pop p99 < 10 ms at 200 calls/s, contact store (us)", lambda x: x < 10_000, ",.0f"),
        ("screenpop.http_cached_p99_us", "screen pop p99 < 10 ms at 200 calls/s, HTTP cache hit (us)",
         lambda x: x < 10_000, ",.0f"),
        ("screenpop.http_hanging_max_us", "screen pop with a stuck CRM: max <= deadline + 10 ms (us)",
         lambda x: x <= 310_000, ",.0f"),
        ("acd.compiled_offer_median_us", "ACD compiled median < 2 µs, call arrives", lambda x: x < 2, ",.2f"),
        ("acd.compiled_agent_ready_median_us", "ACD compiled median < 2 µs, agent ready", lambda x: x < 2, ",.2f"),
        ("acd.compiled_offer_p99_us", "ACD compiled p99 < 20 µs, call arrives", lambda x: x < 20, ",.2f"),
        ("acd.compiled_agent_ready_p99_us", "ACD compiled p99 < 20 µs, agent ready", lambda x: x < 20, ",.2f"),
        ("recordings.build_per_s", "recording index build > 1 M recordings/s", lambda x: x > 1e6, ",.0f"),
        ("recordings.bytes_per_rec", "recording index < 100 bytes per recording", lambda x: x < 100, ",.1f"),
        ("recordings.q1_speedup", "recordings q1 (agent, day, > 60 s): SQLite / index median >= 20x", lambda x: x >= 20, ",.1f"),
        ("recordings.q2_speedup", "recordings q2 (suffix, 7 days): SQLite / index median >= 20x", lambda x: x >= 20, ",.1f"),
        ("recordings.q3_speedup", "recordings q3 (per queue per hour): SQLite / index median >= 20x", lambda x: x >= 20, ",.1f"),
        ("recordings.q4_speedup", "recordings q4 (q1 as the agent): SQLite / index median >= 20x", lambda x: x >= 20, ",.1f"),
        ("csta.csta_messages_s", "CSTA XML events/s through the driver to the bus >= 30,000", lambda x: x >= 30_000,
         ",.0f"),
        ("reporting.ctid_s", "month of CDRs (500 seats) by queue and 30 min < 5 s", lambda x: x < 5, ",.2f"),
        ("control.pause_p99_us", "control request round trip p99 < 5 ms at 500/s (us, median round)",
         lambda x: x < 5000, ",.0f"),
        ("control.pause_p99_worst_us", "control request round trip p99 < 5 ms at 500/s (us, worst round)",
         lambda x: x < 5000, ",.0f"),
    ]
    shown = [c for c in checks if c[1] is not None]
    met = [t for t in targets if t[0] in v]
    if not shown and not met:
        return
    width = max(len(label) for label in [c[0] for c in shown] + [t[1] for t in met]) + 2
    tr.write_sep("=", "ctid bench: ratios (same run) and targets")
    for label, value, unit in shown:
        tr.write_line(f"  {label:<{width}}{value:>12.2f} {unit}")
    for key, label, ok, fmt in met:
        tr.write_line(f"  {label:<{width}}{v[key]:>12{fmt}}  {'met' if ok(v[key]) else 'NOT MET'}")

"""The AMI parser and the mapper alone, in process, on the real transcripts.

- `test_parser[<impl>-<transcript>]`: a fresh parser is fed the whole transcript in the
  256 KiB reads AmiLink makes; `compiled` is `ctid._fast.amiframes.FrameParser`,
  `python` is `ctid.drivers.asterisk.protocol.PyFrameParser` (the specification). Both drop
  the same noise (VarSet, Newexten, ...) unparsed. Frames/s counts every frame.
- `test_mapper[<transcript>]`: a fresh `AsteriskMapper` handles the frames the parser kept
  (pre-parsed), as the link does: cost per frame handed to it, and per frame on the wire.
- `test_driver_side[noise|driver]`: the parser (compiled when built) and the mapper together on
  c-mixed-day, as the link runs them: `driver` with the link's drop list (`DRIVER_DROP`: Newexten
  kept, to tell a queue timeout from a Redirect), `noise` with every noise event dropped (the
  link before that); the ratio is in the summary.
"""

from __future__ import annotations

import pytest

from benchlib import READ_SIZE, transcript_path
from ctid.drivers.asterisk.mapper import AsteriskMapper
from ctid.drivers.asterisk.protocol import COMPILED, DRIVER_DROP, NOISE_EVENTS, PyFrameParser
from ctid.drivers.asterisk.protocol import FrameParser as CompiledFrameParser

TRANSCRIPTS = ("c-mixed-day", "a-busy-queue")
SHORT = {"c-mixed-day": "mixed", "a-busy-queue": "queue"}


def _load(name: str) -> bytes:
    path = transcript_path(name)
    if not path.exists():
        pytest.skip(f"AMI transcript {path} is not here")
    return path.read_bytes()


def _chunks(data: bytes) -> list[bytes]:
    return [data[i : i + READ_SIZE] for i in range(0, len(data), READ_SIZE)]


def _parse_all(parser_class, chunks: list[bytes]):
    parser = parser_class()
    kept = 0
    for chunk in chunks:
        kept += len(parser.feed(chunk))
    return parser.frames, kept


@pytest.mark.parametrize("name", TRANSCRIPTS)
@pytest.mark.parametrize("impl", ["compiled", "python"])
def test_parser(benchmark, impl: str, name: str, report) -> None:
    if impl == "compiled" and not COMPILED:
        pytest.skip("the compiled parser (ctid._fast.amiframes) is not built")
    parser_class = CompiledFrameParser if impl == "compiled" else PyFrameParser
    chunks = _chunks(_load(name))
    frames, kept = benchmark(_parse_all, parser_class, chunks)
    assert (frames, kept) == _parse_all(PyFrameParser, chunks)  # both twins agree
    median = benchmark.stats.stats.median
    rate = frames / median
    benchmark.extra_info.update({"frames": frames, "kept": kept, "frames_s": rate, "ns_per_frame": median / frames * 1e9})
    suffix = "" if name == "c-mixed-day" else "_queue"
    report.add(f"parser.{impl}_frames_s{suffix}", f"{impl} parser, {name} ({frames:,} frames)", rate, "frames/s")


@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_mapper(benchmark, name: str, report) -> None:
    chunks = _chunks(_load(name))
    parser = PyFrameParser()
    frames = [f for chunk in chunks for f in parser.feed(chunk) if "Event" in f]
    total = parser.frames

    def map_all() -> int:
        mapper = AsteriskMapper()
        handle = mapper.handle
        return sum(len(handle(frame, 1.0)) for frame in frames)

    events = benchmark(map_all)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update({"frames_in": len(frames), "events_out": events,
                                 "ns_per_frame": median / len(frames) * 1e9, "ns_per_wire_frame": median / total * 1e9})
    short = SHORT[name]
    report.add(f"parser.mapper_ns_{short}", f"mapper, {name}: per frame handled ({len(frames):,} -> {events:,} events)",
               median / len(frames) * 1e9, "ns", ",.0f")
    report.add(f"parser.mapper_wire_ns_{short}", f"mapper, {name}: per frame on the wire ({total:,})",
               median / total * 1e9, "ns", ",.0f")


@pytest.mark.parametrize("drop", ["noise", "driver"])
def test_driver_side(benchmark, drop: str, report) -> None:
    chunks = _chunks(_load("c-mixed-day"))
    names = DRIVER_DROP if drop == "driver" else NOISE_EVENTS

    def run() -> tuple[int, int]:
        parser, mapper = CompiledFrameParser(drop=names), AsteriskMapper()
        handle, events = mapper.handle, 0
        for chunk in chunks:
            for frame in parser.feed(chunk):
                if "Event" in frame:
                    events += len(handle(frame, 1.0))
        return parser.frames, events

    frames, events = benchmark(run)
    assert events == run()[1] and events > 0
    rate = frames / benchmark.stats.stats.median
    benchmark.extra_info.update({"frames": frames, "events": events, "frames_s": rate})
    report.add(f"parser.driver_side_{drop}_frames_s", f"parser + mapper, c-mixed-day, drop list '{drop}'", rate, "frames/s")

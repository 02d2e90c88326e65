"""Recordings from events joined with the call's end, on a real SQLite database: the rebuild
from the database equals the live index; bad events are refused and counted, nothing is lost;
retention lists before it deletes."""

from __future__ import annotations

import logging
import random


from recordings_support import cleared, event
from ctid.recordings import ADMIN, Principal, parse_query
from ctid.recordings.index import CompiledSegment
from ctid.recordings.pyindex import PySegment
from ctid.recordings.service import RecordingService


def day_of_events(n_calls: int, seed: int = 7) -> list[dict]:
    """Calls with 0-2 recordings each, in time order, as the Asterisk driver would say them."""
    rnd = random.Random(seed)
    out: list[dict] = []
    t = 1_700_000_000.0
    for k in range(n_calls):
        t += rnd.uniform(1, 30)
        cid = f"c{k}"
        agent = rnd.choice(["1001", "1002", "2001", None])
        queue = "sales" if agent in ("1001", "1002") else "support"
        parts = rnd.choice([0, 1, 1, 2])
        for j in range(parts):
            path = f"/rec/{cid}-{j}.wav" if rnd.random() < 0.8 else None
            out.append(event("recording.started", cid, t + j * 5, path=path, queue=queue, agent=agent))
            if rnd.random() < 0.7:
                out.append(event("recording.stopped", cid, t + j * 5 + 3, path=path, duration=3.0))
        out.append(cleared(cid, t + 12, agent=agent, queue=queue, caller=f"0161555{rnd.randint(0, 9999):04d}",
                           disposition=rnd.choice(["answered", "abandoned"]), transfers=rnd.choice([0, 0, 1]),
                           x={"team": queue, "tags": ["vip"] if k % 5 == 0 else [], "qa_score": 80 if k % 4 == 0 else None}))
    return out


QUERIES = [{}, {"agent": "1001"}, {"queue": "support", "order": "oldest"}, {"suffix": "12"}, {"min_duration": 4},
           {"disposition": "transferred"}, {"tag": "vip"}, {"min_qa": 50}, {"caller": "0161*", "limit": 7, "offset": 3}]
ROLES = ["admin", "agent:1001", "supervisor:support"]


def test_rebuild_from_the_database_matches_the_live_index(tmp_path):
    url = f"sqlite:///{tmp_path}/rec.db"
    live = RecordingService(url).start()
    for ev in day_of_events(400):
        live.observe(ev)
    assert len(live.index) > 300
    for segment in (CompiledSegment, PySegment):
        rebuilt = RecordingService(url, segment=segment).start()
        assert len(rebuilt.index) == len(live.index)
        for spec in QUERIES:
            for role in ROLES:
                p, q = Principal.parse(role), parse_query({**spec, "limit": spec.get("limit", 10_000)})
                assert rebuilt.search(p, q) == live.search(p, q), (spec, role)
        rebuilt.close()
    live.close()


def test_recordings_are_joined_with_the_call_end(tmp_path):
    svc = RecordingService(f"sqlite:///{tmp_path}/rec.db").start()
    assert svc.observe(event("recording.started", "c1", 100.0, path="/rec/a.wav")) == []
    assert svc.observe(event("recording.stopped", "c1", 160.0, path="/rec/a.wav", duration=60.0)) == []
    svc.observe(event("recording.started", "c1", 170.0, path="/rec/b.wav"))  # never stopped: ends with the call
    got = svc.observe(cleared("c1", 200.0, transfers=1, x={"team": "t1", "tags": ["legal"], "qa_score": 75}))
    assert [(r.recording_id, r.start, r.duration) for r in got] == [("a.wav", 100.0, 60.0), ("b.wav", 170.0, 30.0)]
    row = svc.search(ADMIN, parse_query({"order": "oldest"}))[0][0].as_json()
    assert row == {"recording_id": "a.wav", "call_id": "c1", "path": "/rec/a.wav", "start": 100.0, "duration": 60.0,
                   "direction": "inbound", "caller": "01615550123", "called": "8000", "queue": "sales",
                   "agent": "1001", "team": "t1", "disposition": "transferred", "voicemail": False,
                   "tags": ["legal"], "qa_score": 75.0}
    # a call without recordings adds nothing; the same call again adds nothing twice
    assert svc.observe(cleared("c2", 210.0)) == []
    svc.observe(event("recording.started", "c1", 100.0, path="/rec/a.wav"))
    assert svc.observe(cleared("c1", 300.0)) == []
    assert len(svc.index) == 2


def test_bad_events_are_refused_counted_and_nothing_is_lost(tmp_path, caplog):
    svc = RecordingService(f"sqlite:///{tmp_path}/rec.db").start()
    svc.observe(event("recording.started", "ok", 1.0, path="/rec/ok.wav"))
    svc.observe(cleared("ok", 5.0))
    caplog.set_level(logging.ERROR, logger="ctid.recordings")
    bad = [event("recording.started", None, 2.0, path="/rec/x.wav"),
           event("recording.stopped", "", 3.0, path="/rec/x.wav", duration=1.0),
           event("recording.stopped", "c9", 3.0, path="/rec/x.wav", duration=-4),
           event("recording.started", "c9", None, path="/rec/y.wav")]
    for ev in bad:
        assert svc.observe(ev) == []
    assert svc.counters.snapshot()["recordings.errors"] == 4
    assert "without a call_id" in caplog.text and "bad duration" in caplog.text
    assert any(getattr(r, "ctx", {}).get("path") == "/rec/x.wav" for r in caplog.records)
    svc.observe(event("recording.started", "c10", 6.0, path="/rec/c10.wav"))
    svc.observe(cleared("c10", 9.0))
    assert [r.recording_id for r in svc.search(ADMIN, parse_query({}))[0]] == ["c10.wav", "ok.wav"]


def test_a_stop_without_its_start_still_makes_a_recording(tmp_path):
    svc = RecordingService(f"sqlite:///{tmp_path}/rec.db").start()
    svc.observe(event("recording.stopped", "c1", 50.0, path="/rec/late.wav", duration=20.0))
    (r,) = svc.observe(cleared("c1", 60.0))
    assert (r.start, r.duration) == (30.0, 20.0)


def test_retention_lists_then_deletes_files_rows_and_index(tmp_path):
    url = f"sqlite:///{tmp_path}/rec.db"
    svc = RecordingService(url).start()
    files = []
    for k, t in enumerate([10.0, 20.0, 30.0, 1000.0]):
        path = tmp_path / f"r{k}.wav"
        path.write_bytes(b"x")
        files.append(path)
        svc.observe(event("recording.started", f"c{k}", t, path=str(path)))
        svc.observe(cleared(f"c{k}", t + 5))
    files[1].unlink()  # vanished before retention ran
    old = svc.expired(ADMIN, max_age=900.0, now=1000.0)
    assert [r.recording_id for r in old] == ["r0.wav", "r1.wav", "r2.wav"]
    assert all(f.exists() for f in (files[0], files[2])) and len(svc.index) == 4  # listing deletes nothing
    n, problems = svc.delete(old)
    assert n == 3 and problems == [f"r1.wav: file {files[1]} was already gone"]
    assert not files[0].exists() and files[3].exists()
    assert [r.recording_id for r in svc.search(ADMIN, parse_query({}))[0]] == ["r3.wav"]
    assert len(RecordingService(url).start().index) == 1
    # an agent's retention run can only ever touch its own recordings
    assert svc.expired(Principal.parse("agent:9999"), max_age=0.0, now=1e12) == []


def test_a_live_recording_after_a_search_is_indexed(tmp_path, caplog):
    # a search makes a segment over the live tail; the next recording grows the tail's arrays,
    # which the compiled segment's buffers once pinned (BufferError: stored, never indexed)
    service = RecordingService(f"sqlite:///{tmp_path}/r.db", segment=CompiledSegment).start()
    found = []
    for k in range(3):
        service.observe(event("recording.started", f"c{k}", 100.0 + k, path=f"/r/c{k}.wav"))
        assert [r.call_id for r in service.observe(cleared(f"c{k}", 110.0 + k))] == [f"c{k}"]
        found.append(sorted(r.call_id for r in service.search(ADMIN, parse_query({}))[0]))
    assert found == [["c0"], ["c0", "c1"], ["c0", "c1", "c2"]]
    assert service.counters.get("recordings.errors") == 0

"""The archive on disk: scan (names -> fields, WAV/MP3 headers -> duration, idempotent, bad
files skipped and reported), export (files + manifest with SHA-256) and the CLI around them."""

from __future__ import annotations

import csv
import hashlib
import json
import wave
from pathlib import Path

import pytest

from recordings_support import cleared, event
from ctid.cli import main
from ctid.recordings.export import export
from ctid.recordings.scan import DEFAULT_PATTERN, ScanError, compile_pattern, duration_of, scan
from ctid.recordings.service import RecordingService


def write_wav(path: Path, seconds: float, rate: int = 8000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))


def write_mp3(path: Path, frames: int) -> None:
    # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz: 417-byte frames of 1152 samples
    path.write_bytes((b"\xff\xfb\x90\x00" + bytes(413)) * frames)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    (root / "2026" / "11").mkdir(parents=True)
    write_wav(root / "2026" / "11" / "sales_1001_01615551234_8000_20261102-093000_c1.wav", 12.5)
    write_wav(root / "sales_1002_01615559999_8000_20261102-100000_c2.wav", 3.0)
    write_mp3(root / "support_2001_07700900123_8001_20261103-120000_c3.mp3", 100)
    (root / "sales_1001_0161_8000_20261102-110000_c4.wav").write_bytes(b"RIFF\x00\x00garbage")  # corrupt header
    write_wav(root / "holiday-greeting.wav", 1.0)  # does not match the pattern
    (root / "notes.txt").write_text("not audio")
    return root


def test_durations_from_headers(archive):
    assert duration_of(next(archive.rglob("*c1.wav"))) == pytest.approx(12.5)
    assert duration_of(next(archive.rglob("*.mp3"))) == pytest.approx(2.61, abs=0.05)
    with pytest.raises(ScanError, match="corrupt WAV header"):
        duration_of(next(archive.rglob("*c4.wav")))
    with pytest.raises(ScanError, match="vanished"):
        duration_of(archive / "gone.wav")
    bad = archive / "bad.mp3"
    bad.write_bytes(b"no frames here" * 50)
    with pytest.raises(ScanError, match="corrupt MP3"):
        duration_of(bad)


def test_scan_reads_fields_and_reports_bad_files(archive):
    report = scan(archive, compile_pattern(DEFAULT_PATTERN))
    got = {r.recording_id: r for r in report.found}
    assert sorted(got) == ["sales_1001_01615551234_8000_20261102-093000_c1.wav",
                           "sales_1002_01615559999_8000_20261102-100000_c2.wav",
                           "support_2001_07700900123_8001_20261103-120000_c3.mp3"]
    c1 = got["sales_1001_01615551234_8000_20261102-093000_c1.wav"]
    assert (c1.queue, c1.agent, c1.team, c1.caller, c1.called, c1.call_id) == ("sales", "1001", "sales", "01615551234", "8000", "c1")
    assert c1.start == 1793611800.0  # 2026-11-02 09:30:00 UTC
    assert len(report.errors) == 2
    assert any("c4.wav: corrupt WAV header" in e for e in report.errors)
    assert any("holiday-greeting.wav: the file name does not match" in e for e in report.errors)
    with pytest.raises(ScanError, match="no \\(\\?P<start>"):
        compile_pattern(r"(?P<agent>\d+)")


def config_file(tmp_path: Path, extra: str = "") -> Path:
    cfg = tmp_path / "ctid.toml"
    cfg.write_text(f'site = "hq"\n[database]\nurl = "sqlite:///{tmp_path}/rec.db"\n[[driver]]\nkind = "asterisk"\n{extra}')
    return cfg


def test_cli_scan_is_idempotent_and_search_prints_rows(archive, tmp_path, capsys):
    cfg = config_file(tmp_path)
    assert main(["recordings", "scan", "-c", str(cfg), str(archive)]) == 1  # done, with 2 files skipped
    out = capsys.readouterr()
    assert "3 recordings read, 3 new, 2 files skipped" in out.out and "corrupt WAV header" in out.err
    assert main(["recordings", "scan", "-c", str(cfg), str(archive)]) == 1
    assert "3 recordings read, 0 new" in capsys.readouterr().out

    assert main(["recordings", "search", "-c", str(cfg), "--json", "--queue", "sales", "--min-duration", "5"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["call_id"] for r in rows] == ["c1"]
    assert {"recording_id", "call_id", "path", "start", "duration", "caller", "called", "queue", "agent",
            "disposition"} <= set(rows[0])
    assert main(["recordings", "search", "-c", str(cfg), "--json", "--suffix", "0123", "--as", "agent:2001"]) == 0
    assert [json.loads(x)["call_id"] for x in capsys.readouterr().out.splitlines()] == ["c3"]
    assert main(["recordings", "search", "-c", str(cfg), "--json", "--agent", "2001", "--as", "agent:1001"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["recordings", "search", "-c", str(cfg), "--csv", "--from", "2026-11-02", "--to", "2026-11-02T10:00:00",
                 "--limit", "5"]) == 0
    assert [r["call_id"] for r in csv.DictReader(capsys.readouterr().out.splitlines())] == ["c1"]
    assert main(["recordings", "search", "-c", str(cfg), "--limit", "1", "--caller", "0161*"]) == 0
    out = capsys.readouterr().out
    assert "c2.wav" in out and "more: --cursor" in out
    assert main(["recordings", "search", "-c", str(cfg), "--from", "2026-11-03", "--to", "2026-11-01"]) == 2
    assert "reversed" in capsys.readouterr().err
    assert main(["recordings", "search", "-c", str(cfg), "--caller", "*"]) == 2


def test_export_writes_files_and_a_manifest_with_sha256(archive, tmp_path, capsys):
    cfg = config_file(tmp_path)
    main(["recordings", "scan", "-c", str(cfg), str(archive)])
    next(archive.rglob("*c2.wav")).unlink()  # vanished from the archive since the scan
    capsys.readouterr()
    dest = tmp_path / "handover"
    assert main(["recordings", "export", "-c", str(cfg), str(dest), "--from", "2026-11-01", "--to", "2026-11-04"]) == 1
    assert "2 of 3 recordings exported" in capsys.readouterr().out
    rows = list(csv.DictReader((dest / "manifest.csv").open(encoding="utf-8")))
    assert [r["call_id"] for r in rows] == ["c1", "c2", "c3"]
    for row in rows:
        if row["call_id"] == "c2":
            assert row["status"].startswith("missing") and row["sha256"] == ""
            continue
        data = (dest / row["file"]).read_bytes()
        assert row["status"] == "ok" and row["sha256"] == hashlib.sha256(data).hexdigest()
        assert int(row["bytes"]) == len(data) == Path(row["path"]).stat().st_size


def test_export_of_two_files_with_one_name_keeps_both(tmp_path):
    from ctid.recordings.model import Recording

    recs = []
    for k, folder in enumerate(["a", "b"]):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "same.wav").write_bytes(folder.encode() * 10)
        recs.append(Recording(f"{folder}/same.wav", 10.0 + k, 1.0, path=str(tmp_path / folder / "same.wav"), id=k + 1))
    report = export(recs, tmp_path / "out")
    rows = list(csv.DictReader((tmp_path / "out" / "manifest.csv").open(encoding="utf-8")))
    assert report.exported == 2 and not report.errors
    assert [r["file"] for r in rows] == ["same.wav", "2-same.wav"]
    assert (tmp_path / "out" / "2-same.wav").read_bytes() == b"b" * 10


def test_cli_retention_is_a_dry_run_unless_applied(tmp_path, capsys):
    cfg = config_file(tmp_path, "[plugins]\nenabled = [\"recordings\"]\n[plugins.recordings]\nretention_days = 30\n")
    svc = RecordingService(f"sqlite:///{tmp_path}/rec.db").start()
    old = tmp_path / "old.wav"
    old.write_bytes(b"x")
    svc.observe(event("recording.started", "c1", 1000.0, path=str(old)))
    svc.observe(cleared("c1", 1010.0))
    assert main(["recordings", "retention", "-c", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "would delete" in out and "old.wav" in out and "dry run" in out and old.exists()
    assert main(["recordings", "retention", "-c", str(cfg), "--apply"]) == 0
    assert "1 recordings deleted" in capsys.readouterr().out and not old.exists()
    assert main(["recordings", "search", "-c", str(cfg), "--json"]) == 0
    assert capsys.readouterr().out == ""


def test_cli_refuses_a_bad_plugin_table(tmp_path, capsys):
    cfg = config_file(tmp_path, "[plugins]\nenabled = [\"recordings\"]\n[plugins.recordings]\nretention_days = -1\npatern = 'x'\n")
    assert main(["recordings", "search", "-c", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "plugins.recordings.retention_days" in err and "plugins.recordings.patern: unknown key" in err

"""`ctid recordings search|export` ask a running daemon's index over the bus (plain, and CURVE
with the client's key, then as that key's role) and build their own index from the database
only when no daemon answers."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import free_port, request, wait_for
from recordings_support import rec
from ctid import config as ctid_config
from ctid.cli import main
from ctid.daemon import Daemon
from ctid.recordings.plugin import RecordingsPlugin
from ctid.recordings.remote import ClientKey
from ctid.recordings.service import RecordingService
from ctid.security.keys import KeyStore, server_keys


def site(tmp_path: Path, security: str = "plain") -> Path:
    """A config file (the CLI's) whose database holds 6 recordings of two agents, with files."""
    db = tmp_path / "ctid.db"
    path = tmp_path / "ctid.toml"
    path.write_text(f'''site = "hq"
[bus]
pub = "tcp://127.0.0.1:{free_port()}"
req = "tcp://127.0.0.1:{free_port()}"
security = "{security}"
server_key = "{tmp_path}/keys/server.key_secret"
[database]
url = "sqlite:///{db}"
[plugins]
enabled = ["recordings"]
[[driver]]
kind = "asterisk"
''')
    (tmp_path / "files").mkdir()
    recs = []
    for i in range(1, 7):
        audio = tmp_path / "files" / f"r{i}.wav"
        audio.write_bytes(b"RIFF" + bytes(40 + i))
        recs.append(rec(i, agent="1001" if i % 2 else "1002", queue="sales", path=str(audio), duration=30.0 * i))
    service = RecordingService(f"sqlite:///{db}")
    service.add(recs)
    service.close()
    return path


async def start_daemon(cfg_file: Path) -> tuple[Daemon, RecordingsPlugin]:
    """The daemon of that config, without a PBX (the recordings are in its database)."""
    plugin = RecordingsPlugin()
    daemon = Daemon(replace(ctid_config.load(str(cfg_file)), drivers=()), extra_plugins={"recordings": plugin})
    await daemon.start()
    await wait_for(lambda: plugin.ready.is_set())
    return daemon, plugin


def cli(*argv: str) -> int:
    return main(["recordings", *argv])


async def test_search_and_export_ask_the_running_daemon_then_fall_back(tmp_path, capsys, monkeypatch):
    cfg = site(tmp_path)
    daemon, plugin = await start_daemon(cfg)
    try:
        with monkeypatch.context() as m:
            m.setattr(RecordingService, "start", lambda self: pytest.fail("the CLI rebuilt the index"))
            # the CLI blocks on its socket: run it beside the daemon's loop
            assert await asyncio.to_thread(cli, "search", "-c", str(cfg), "--json", "--min-duration", "60",
                                           "--as", "agent:1001") == 0
            rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
            assert [r["recording_id"] for r in rows] == ["r5", "r3"]  # agent 1001's, >= 60 s, newest first
            assert await asyncio.to_thread(cli, "search", "-c", str(cfg), "--limit", "2") == 0
            out = capsys.readouterr().out
            assert "r6" in out and "r5" in out and "r4" not in out and "more: --cursor" in out
            # a query the daemon refuses is an error, not a reason to ask the database instead
            assert await asyncio.to_thread(cli, "search", "-c", str(cfg), "--as", "agent:") == 2
            assert "principal" in capsys.readouterr().err

            dest = tmp_path / "out"
            assert await asyncio.to_thread(cli, "export", "-c", str(cfg), str(dest), "--agent", "1002") == 0
            assert "3 of 3 recordings exported" in capsys.readouterr().out
            assert sorted(p.name for p in dest.iterdir() if p.suffix == ".wav") == ["r2.wav", "r4.wav", "r6.wav"]
        # the daemon sees what it indexed since it started, which the CLI then finds
        plugin.service.add([rec(7, agent="1001", queue="sales", duration=90.0)])
        assert await asyncio.to_thread(cli, "search", "-c", str(cfg), "--json", "--agent", "1001") == 0
        assert [json.loads(x)["recording_id"] for x in capsys.readouterr().out.splitlines()] == ["r7", "r5", "r3", "r1"]
    finally:
        await daemon.stop()

    # no daemon: the same answer from an index built here, after the timeout
    assert cli("search", "-c", str(cfg), "--json", "--agent", "1001", "--timeout", "0.2") == 0
    captured = capsys.readouterr()
    assert "no daemon answered" in captured.err
    assert [json.loads(x)["recording_id"] for x in captured.out.splitlines()] == ["r7", "r5", "r3", "r1"]
    assert cli("search", "-c", str(cfg), "--local", "--json", "--agent", "1002", "--limit", "1") == 0
    captured = capsys.readouterr()
    assert captured.err == "" and [json.loads(x)["recording_id"] for x in captured.out.splitlines()] == ["r6"]
    assert cli("search", "-c", str(cfg), "--timeout", "0") == 2


async def test_on_a_curve_bus_the_key_decides_who_is_asking(tmp_path, capsys):
    cfg = site(tmp_path, "curve")
    daemon, _ = await start_daemon(cfg)
    url = f"sqlite:///{tmp_path}/ctid.db"
    info, secret = KeyStore(url).new("agent:1002", "desk 12")
    server = server_keys(str(tmp_path / "keys" / "server.key_secret"))[0].decode()
    key = tmp_path / "desk12.toml"
    key.write_text(f'public-key = "{info.key}"\nsecret-key = "{secret}"\nserver-key = "{server}"\n')
    try:
        # asks as admin, but the daemon runs the query as the key's role
        assert await asyncio.to_thread(cli, "search", "-c", str(cfg), "--json", "--key", str(key)) == 0
        captured = capsys.readouterr()
        assert "building the index" not in captured.err
        assert [json.loads(x)["recording_id"] for x in captured.out.splitlines()] == ["r6", "r4", "r2"]
        # no key on a CURVE bus: nothing to ask with, so the index is built here (as --as says)
        assert await asyncio.to_thread(cli, "search", "-c", str(cfg), "--json") == 0
        captured = capsys.readouterr()
        assert "no --key" in captured.err and len(captured.out.splitlines()) == 6
        bad = tmp_path / "bad.toml"
        bad.write_text('public-key = "short"\n')
        assert await asyncio.to_thread(cli, "search", "-c", str(cfg), "--key", str(bad)) == 2
        assert "public-key must be a 40-character" in capsys.readouterr().err
        # deleting is for admin keys: an agent key is refused, and nothing is deleted here instead
        assert await asyncio.to_thread(cli, "retention", "-c", str(cfg), "--days", "1", "--apply", "--key", str(key)) == 2
        assert "forbidden" in capsys.readouterr().err
        assert len(list((tmp_path / "files").iterdir())) == 6
        with pytest.raises(ValueError, match="not a readable key file"):
            ClientKey.load(tmp_path / "missing.toml")
    finally:
        await daemon.stop()


async def test_retention_applied_through_the_daemon_leaves_no_stale_rows_in_its_index(tmp_path, capsys, monkeypatch):
    cfg = site(tmp_path)  # six recordings from 1970: all expired
    url = f"sqlite:///{tmp_path}/ctid.db"
    service = RecordingService(url)
    service.add([rec(i, start=time.time() - 3600.0 * i, agent="1001", queue="sales") for i in (7, 8)])  # recent
    service.close()
    daemon, plugin = await start_daemon(cfg)
    req = ctid_config.load(str(cfg)).bus.req
    try:
        monkeypatch.setattr(RecordingService, "start", lambda self: pytest.fail("the CLI rebuilt the index"))
        assert await asyncio.to_thread(cli, "retention", "-c", str(cfg), "--days", "1") == 0  # a dry run
        out = capsys.readouterr().out
        assert out.count("would delete") == 6 and "6 recordings older than 1 days (dry run" in out
        assert len(list((tmp_path / "files").iterdir())) == 6

        # the op pages (a request stays short), and refuses what it does not understand
        page = (await request(req, {"op": "recordings.retention", "principal": "admin", "days": 1, "limit": 4}))["result"]
        assert [r["recording_id"] for r in page["recordings"]] == ["r1", "r2", "r3", "r4"] and page["deleted"] == 0
        rest = await request(req, {"op": "recordings.retention", "principal": "admin", "days": 1, "limit": 4,
                                   "cursor": page["next_cursor"]})
        assert [r["recording_id"] for r in rest["result"]["recordings"]] == ["r5", "r6"]
        assert rest["result"]["next_cursor"] is None
        for bad, code, text in (({"days": 0}, "bad_request", "days"), ({"days": 1, "apply": "yes"}, "bad_request", "apply"),
                                ({"days": 1, "colour": 1}, "bad_request", "colour"),
                                ({"days": 1, "principal": "agent:1001"}, "forbidden", "admin")):
            reply = await request(req, {"op": "recordings.retention", "principal": "admin", **bad})
            assert reply["ok"] is False and reply["error"]["code"] == code and text in reply["error"]["message"]

        assert await asyncio.to_thread(cli, "retention", "-c", str(cfg), "--days", "1", "--apply") == 0
        assert "6 recordings deleted" in capsys.readouterr().out
        assert list((tmp_path / "files").iterdir()) == []
        # the running daemon's index dropped them at once: no restart, no stale rows
        found = await request(req, {"op": "recordings.search", "principal": "admin"})
        assert [r["recording_id"] for r in found["result"]["rows"]] == ["r7", "r8"]
        assert len(plugin.service.index) == 2
    finally:
        await daemon.stop()
    monkeypatch.undo()
    fresh = RecordingService(url).start()  # and the database agrees
    assert len(fresh.index) == 2
    fresh.close()


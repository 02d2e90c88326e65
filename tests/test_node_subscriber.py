"""A Node.js client written only from docs/protocol.md receives the same events as a Python one.

tests/node/subscriber.mjs uses the `zeromq` and `@msgpack/msgpack` packages, installed here
by `npm ci` from tests/node/package-lock.json the first time the test runs.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import Subscriber, site_config, transcript, wait_for
from ctid.daemon import Daemon
from ctid.drivers.asterisk.replay import ReplayServer

NODE_DIR = Path(__file__).resolve().parent / "node"


@pytest.fixture(scope="module")
def node_client() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed (.ci/run installs them)")
    if not (NODE_DIR / "node_modules" / "zeromq").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=600)
    return NODE_DIR / "subscriber.mjs"


async def test_node_subscriber_matches_python(tmp_path, node_client):
    server = ReplayServer(transcript("c-mixed-day"))
    server.go.clear()
    _, port = await server.start()
    daemon = Daemon(site_config(tmp_path, port, resync_timeout=0.3))
    await daemon.start()
    py = Subscriber(daemon.config.bus.pub, "call.hq.")
    node = await asyncio.create_subprocess_exec(
        "node", str(node_client), daemon.config.bus.pub, daemon.config.bus.req, "call.hq.", "2000",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert json.loads(await asyncio.wait_for(node.stdout.readline(), 30)) == {"ready": True}
        await wait_for(lambda: daemon.counters.get("bus.subscribe") >= 2)
        snap_line = json.loads(await asyncio.wait_for(node.stdout.readline(), 30))
        n = snap_line["snapshot"]["seq"]
        server.go.set()
        out, err = await asyncio.wait_for(node.communicate(), 120)
        assert node.returncode == 0, err.decode()
        await py.drain(quiet=0.5)
        got = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
        expected = [{"topic": t, "event": e} for t, e in py.events if e["seq"] > n]
        assert len(got) == 209  # every call.* event of the transcript
        assert got == json.loads(json.dumps(expected))
        answered = sum(1 for g in got if g["event"]["type"] == "call.established")
        assert answered == 36
    finally:
        if node.returncode is None:
            node.kill()
        py.close()
        await daemon.stop()
        await server.close()

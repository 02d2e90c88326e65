"""`ctid run` as a real process: config file in, events on the bus, SIGTERM drains and flushes."""

from __future__ import annotations

import asyncio
import signal
import sys

from helpers import ScriptedAmi, Subscriber, free_port, frame, request
from ctid.store.query import cdrs


def call_frames(uid: str) -> bytes:
    chan = dict(Channel=f"SIP/trunk-{uid}", ChannelState=6, ChannelStateDesc="Up", CallerIDNum="+12025550111",
                CallerIDName="Ann Lee", Context="inbound", Exten="5551000", Uniqueid=uid, Linkedid=uid)
    return (frame(Event="Newchannel", Privilege="call,all", **chan) + frame(Event="Newstate", Privilege="call,all", **chan)
            + frame(Event="QueueCallerJoin", Privilege="agent,all", **chan, Queue="sales", Position=1, Count=1)
            + frame(Event="AgentConnect", Privilege="agent,all", **chan, Queue="sales", Interface="PJSIP/1001",
                    MemberName="Alice", HoldTime=4, RingTime=1)
            + frame(Event="Hangup", Privilege="call,all", **chan, Cause=16))


async def test_run_publishes_and_sigterm_flushes_the_database(tmp_path):
    pbx = ScriptedAmi()
    port = await pbx.start()
    pub, req = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    db = f"sqlite:///{tmp_path}/var/ctid.db"
    cfg = tmp_path / "ctid.toml"
    cfg.write_text(f'site = "hq"\n[bus]\npub = "{pub}"\nreq = "{req}"\nsecurity = "plain"\n[database]\nurl = "{db}"\nflush_interval = 5\n'
                   f'[log]\nformat = "json"\n[[driver]]\nkind = "asterisk"\nport = {port}\nusername = "cti"\nsecret = "topsecret"\n')
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "ctid", "run", "-c", str(cfg),
                                                stderr=asyncio.subprocess.PIPE)
    sub = Subscriber(pub, "call.")
    try:
        for _ in range(100):  # the daemon is up when it answers
            try:
                if (await request(req, {"op": "ping"}, timeout=0.2))["ok"]:
                    break
            except asyncio.TimeoutError:
                pass
        for _ in range(200):
            if pbx.logins or proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        assert pbx.logins == 1, "the daemon did not log in to the PBX"
        for _ in range(200):  # the SUB subscription reached the daemon (a fixed sleep was too short under load)
            if (await request(req, {"op": "stats"}))["result"].get("bus.subscribe", 0) > 0:
                break
            await asyncio.sleep(0.05)
        pbx.push(call_frames("77.1"))
        cleared = await sub.until(lambda e: e["type"] == "call.cleared")
        assert cleared["disposition"] == "answered" and cleared["wait"] == 4.0 and cleared["agent"] == "1001"
        stats = (await request(req, {"op": "stats"}))["result"]
        assert stats["driver.asterisk.frames_in"] >= 5 and stats["driver.asterisk.events_out"] >= 4
        assert cdrs(db) == []  # flush_interval 5 s: nothing written yet ...
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0
        rows = cdrs(db)  # ... SIGTERM drained the writer before exiting
        assert [(r["call_id"], r["disposition"], r["queue"]) for r in rows] == [("77.1", "answered", "sales")]
        log = err.decode()
        assert '"msg": "ctid stopped"' in log and "topsecret" not in log
        assert any(a.get("Action") == "Logoff" for a in pbx.actions)
    finally:
        if proc.returncode is None:
            proc.kill()
        sub.close()
        await pbx.close()

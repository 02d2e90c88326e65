"""Shared pieces of the screen pop tests: a site config with the plugin, AMI frames of a
queue call, a seeded database, and a real HTTP CRM on 127.0.0.1 whose answers a test picks."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from sqlalchemy import insert

from helpers import frame, site_config
from ctid import config as ctid_config
from ctid.store.engine import make_engine
from ctid.store.models import CDR, metadata
from ctid_plugins.screenpop.contacts.store import ContactStore
from ctid_plugins.screenpop.numbers import NumberPlan

ANN = "+12025550111"


def pop_config(tmp_path: Path, ami_port: int, timeout: float = 5.0, **screenpop: Any) -> ctid_config.Config:
    base = site_config(tmp_path, ami_port, resync_timeout=1)
    plugins = ctid_config.PluginsConfig(enabled=("screenpop",), timeout=timeout, options={"screenpop": screenpop})
    return ctid_config.Config(base.site, base.bus, base.database, base.log, base.drivers, plugins, "test")


def queue_call(uid: str, caller: str, agent: str = "1001", queue: str = "sales", hold: int = 3) -> tuple[bytes, bytes]:
    """(frames up to the agent's phone ringing, the frame of the agent answering)."""
    chan = dict(Channel=f"SIP/trunk-{uid}", ChannelState=4, CallerIDNum=caller, CallerIDName="Caller",
                Context="inbound", Exten="5551000", Uniqueid=uid, Linkedid=uid)
    up = {**chan, "ChannelState": 6}
    member = dict(Queue=queue, Interface=f"PJSIP/{agent}", MemberName=f"Agent {agent}")
    ringing = (frame(Event="Newchannel", **chan) + frame(Event="Newstate", **up)
               + frame(Event="QueueCallerJoin", **up, Queue=queue, Position=1)
               + frame(Event="AgentCalled", **up, **member, DestChannel=f"PJSIP/{agent}-0001"))
    answered = frame(Event="AgentConnect", **up, **member, HoldTime=hold, RingTime=2)
    return ringing, answered


def seed(url: str, plan: NumberPlan = NumberPlan()) -> ContactStore:
    """Ann's contact and three earlier calls of hers (one from another number)."""
    engine = make_engine(url)
    metadata.create_all(engine)
    rows = [
        dict(site="hq", call_id="old.1", caller=ANN, queue="sales", agent="1002", direction="inbound",
             t_offered=1_700_000_000.0, wait=12.0, talk=60.0, disposition="answered", recording="/rec/old.1.wav"),
        dict(site="hq", call_id="old.2", caller=ANN, queue="support", agent=None, direction="inbound",
             t_offered=1_700_100_000.0, wait=40.0, talk=0.0, disposition="abandoned", recording=None),
        dict(site="hq", call_id="old.3", caller=ANN, queue="sales", agent="1001", direction="inbound",
             t_offered=1_700_200_000.0, wait=5.0, talk=30.0, disposition="answered", recording="/rec/old.3.wav"),
        dict(site="hq", call_id="other.1", caller="+12025550999", queue="sales", agent="1001", direction="inbound",
             t_offered=1_700_300_000.0, wait=1.0, talk=10.0, disposition="answered", recording=None),
    ]
    with engine.begin() as conn:
        conn.execute(insert(CDR), rows)
    store = ContactStore(engine, plan)
    store.create_tables()
    store.add({"number": ANN, "name": "Ann Lee", "company": "Acme", "level": "gold", "vip": True,
               "notes": "prefers email", "custom": {"account": "A-17"}})
    return store


class FakeCrm:
    """A real HTTP server in its own threads. `answers[number]` (or `answers["number/phase"]`
    when the URL has a `phase` parameter) is one of ("json", obj), ("status", code),
    ("raw", bytes) or ("hang", None); `hits` counts requests per number."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[str, Any]] = {}
        self.hits: dict[str, int] = {}
        self.release = threading.Event()
        crm = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                query = parse_qs(urlparse(self.path).query)
                number, phase = query.get("number", [""])[0], query.get("phase", [""])[0]
                crm.hits[number] = crm.hits.get(number, 0) + 1
                kind, value = crm.answers.get(f"{number}/{phase}", crm.answers.get(number, ("status", 404)))
                if kind == "hang":
                    crm.release.wait(30)
                    return
                body = json.dumps(value).encode() if kind == "json" else (value if kind == "raw" else b"{}")
                self.send_response(value if kind == "status" else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/lookup?number={{caller}}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
